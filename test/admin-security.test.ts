import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream } from './helpers/harness.js';
import { startTestNode, request, type TestNode } from './helpers/node.js';
import { tokenMatches } from '../src/admin/security.js';
import { ConfigError } from '../src/lib/errors.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const TOKEN = 'a-long-random-admin-token-0123456789';

async function node(options: Parameters<typeof startTestNode>[1] = {}): Promise<TestNode> {
  const up = await startUpstream();
  cleanup.push(up.close);
  const n = await startTestNode({ _format_version: '3.0', services: [{ name: 's', url: up.url, routes: [{ name: 'r', paths: ['/'] }] }] }, options);
  cleanup.push(() => n.stop(0));
  return n;
}

test('a non-loopback admin address needs a token: refused at start, saying why', async () => {
  await assert.rejects(
    startTestNode({ _format_version: '3.0' }, { adminListen: { host: '0.0.0.0', port: 0 } }),
    (err: unknown) => err instanceof ConfigError && /not a loopback address.*--admin-token or GATEHOUSE_ADMIN_TOKEN/.test(err.errors[0]!),
  );
  const n = await node({ adminListen: { host: '0.0.0.0', port: 0 }, adminToken: TOKEN });
  assert.equal((await n.call('GET', '/status', undefined, { 'kong-admin-token': TOKEN })).status, 200);
});

test('with a token: every request needs it (Kong-Admin-Token or Bearer), else 401', async () => {
  const n = await node({ adminToken: TOKEN });
  const missing = await n.call('GET', '/services');
  assert.equal(missing.status, 401);
  assert.deepEqual(missing.body, { message: 'Unauthorized' });
  assert.match(String(missing.headers['www-authenticate']), /^Bearer/);
  assert.equal((await n.call('GET', '/config', undefined, { 'kong-admin-token': `${TOKEN}x` })).status, 401, 'the config holds secrets: reads need the token too');
  assert.equal((await n.call('GET', '/services', undefined, { 'kong-admin-token': TOKEN })).status, 200);
  assert.equal((await n.call('GET', '/services', undefined, { authorization: `Bearer ${TOKEN}` })).status, 200);
  assert.equal((await n.call('GET', '/services', undefined, { authorization: `Basic ${TOKEN}` })).status, 401);
  const created = await n.call('POST', '/consumers', { username: 'x' }, { authorization: `Bearer ${TOKEN}` });
  assert.equal(created.status, 201);
  assert.equal((await n.call('POST', '/consumers', { username: 'y' })).status, 401);
  // With a token the Host header is not restricted (the token is what a rebinding page lacks).
  assert.equal((await n.call('GET', '/', undefined, { 'kong-admin-token': TOKEN, host: 'admin.internal.example' })).status, 200);
  assert.equal(tokenMatches(undefined, TOKEN), false);
  assert.equal(tokenMatches(TOKEN.slice(0, 5), TOKEN), false);
});

test('DNS rebinding: without a token only localhost, IP literals and the listen host are accepted', async () => {
  const n = await node();
  const evil = await n.call('GET', '/config', undefined, { host: 'attacker.example:8001' });
  assert.equal(evil.status, 403);
  assert.match(evil.body.message, /DNS rebinding/);
  assert.equal((await n.call('GET', '/', undefined, { host: `localhost:${n.admin!.port}` })).status, 200);
  assert.equal((await n.call('GET', '/', undefined, { host: `127.0.0.1:${n.admin!.port}` })).status, 200);
  assert.equal((await n.call('GET', '/', undefined, { host: `[::1]:${n.admin!.port}` })).status, 200);
});

test('CSRF: cross-site origins and form or text bodies cannot change anything', async () => {
  const n = await node();
  const form = await n.call('POST', '/consumers', 'username=mallory', { 'content-type': 'application/x-www-form-urlencoded' });
  assert.equal(form.status, 415);
  assert.equal((await n.call('POST', '/consumers', '{"username":"mallory"}', { 'content-type': 'text/plain' })).status, 415, 'text/plain is what a no-preflight fetch sends');
  assert.equal((await n.call('POST', '/config', '_format_version: "3.0"', { 'content-type': 'multipart/form-data; boundary=x' })).status, 415);
  const cross = await n.call('POST', '/consumers', { username: 'mallory' }, { origin: 'https://attacker.example' });
  assert.equal(cross.status, 403);
  assert.equal((await n.call('DELETE', '/routes/r', undefined, { 'sec-fetch-site': 'cross-site' })).status, 403);
  assert.equal((await n.call('OPTIONS', '/consumers', undefined, { origin: 'https://attacker.example', 'access-control-request-method': 'POST' })).status, 405);
  assert.equal((await n.call('GET', '/consumers')).body.data.length, 0, 'nothing was created');
  // Same-origin and non-browser clients are fine; a body-less POST (key generation) needs no type.
  assert.equal((await n.call('POST', '/consumers', { username: 'ok' }, { origin: `http://127.0.0.1:${n.admin!.port}` })).status, 201);
  assert.equal((await request(`${n.adminUrl}/consumers/ok/key-auth`, { method: 'POST' })).status, 201);
  assert.equal((await n.call('POST', '/consumers', 'username: yaml-user\n', { 'content-type': 'application/yaml' })).status, 201);
});
