import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startUpstream, send, type Upstream, freePort } from './helpers/harness.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin/gatehouse.js');
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cli-'));
const children: ChildProcess[] = [];
const upstreams: Upstream[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const u of upstreams) await u.close();
});

function writeConfig(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts the CLI and waits until `ready` appears in its output. */
async function startCli(args: string[], ready: RegExp, env: Record<string, string> = {}): Promise<Started> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const deadline = Date.now() + 15_000;
  while (!ready.test(out)) {
    if (child.exitCode !== null) throw new Error(`exited early (${child.exitCode}): ${out}`);
    if (Date.now() > deadline) throw new Error(`not ready: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => out, exited };
}

test('config validate: exit 0 for a valid file, 1 with every bad field for an invalid one', () => {
  const good = writeConfig('good.yaml', '_format_version: "3.0"\nservices:\n- name: a\n  url: http://127.0.0.1:1\n  routes:\n  - paths: [/a]\n');
  const ok = spawnSync(process.execPath, [BIN, 'config', 'validate', good], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /valid \(1 services, 1 routes/);
  const bad = writeConfig('bad.yaml', '_format_version: "3.0"\nservices:\n- name: a\n  url: http://127.0.0.1:1\n  routes:\n  - paths: [/a, b]\n- name: b\n  url: http://x\n  retries: lots\n');
  const ko = spawnSync(process.execPath, [BIN, 'config', 'validate', bad], { encoding: 'utf8' });
  assert.equal(ko.status, 1);
  assert.match(ko.stderr, /services\[0\]\.routes\[0\]\.paths\[1\]: must start with "\/" or "~"/);
  assert.match(ko.stderr, /services\[1\]\.retries: must be integer/);
});

test('start refuses an invalid config and a non-loopback admin address, and says why', async () => {
  const bad = writeConfig('bad-start.yaml', '_format_version: "3.0"\nplugins:\n- name: nope\n');
  const r1 = spawnSync(process.execPath, [BIN, 'start', '--config', bad, '--proxy-listen', '127.0.0.1:0'], { encoding: 'utf8' });
  assert.equal(r1.status, 1);
  assert.match(r1.stderr, /plugins\[0\]\.name: plugin "nope" is not installed/);
  const good = writeConfig('ok.yaml', '_format_version: "3.0"\n');
  const r2 = spawnSync(process.execPath, [BIN, 'start', '--config', good, '--proxy-listen', '127.0.0.1:0', '--admin-listen', '0.0.0.0:0'], { encoding: 'utf8' });
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /not a loopback address/);
});

test('a non-loopback admin API starts with a token, and every request then needs it', async () => {
  const proxyPort = await freePort();
  const adminPort = await freePort();
  const file = writeConfig('token.yaml', '_format_version: "3.0"\n');
  const gw = await startCli(['start', '--config', file, '--proxy-listen', `127.0.0.1:${proxyPort}`, '--admin-listen', `0.0.0.0:${adminPort}`], /gatehouse started/, {
    GATEHOUSE_ADMIN_TOKEN: 'cli-test-token-0123456789abcdef',
  });
  assert.equal((await send(`http://127.0.0.1:${adminPort}/status`)).status, 401);
  assert.equal((await send(`http://127.0.0.1:${adminPort}/status`, { headers: { 'kong-admin-token': 'cli-test-token-0123456789abcdef' } })).status, 200);
  gw.child.kill('SIGTERM');
  assert.equal(await gw.exited, 0);
});

test('--workers 2 proxies, reloads every worker through the admin API, and drains on SIGTERM (exit 0)', async () => {
  let release: (() => void) | undefined;
  const slow = await startUpstream((req, res) => {
    if (req.url === '/slow') release = () => res.end('slow done');
    else res.end('one');
  });
  const two = await startUpstream((_q, res) => res.end('two'));
  upstreams.push(slow, two);
  const proxyPort = await freePort();
  const adminPort = await freePort();
  const file = writeConfig('workers.yaml', `_format_version: "3.0"\n_gatehouse: { access_log: false }\nservices:\n- name: s\n  url: ${slow.url}\n  routes:\n  - paths: [/]\n`);
  const gw = await startCli(['start', '--config', file, '--workers', '2', '--grace-period', '10'], /gatehouse started/, {
    GATEHOUSE_PROXY_LISTEN: `127.0.0.1:${proxyPort}`,
    GATEHOUSE_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
  });
  assert.equal((await send(`http://127.0.0.1:${proxyPort}/`)).body, 'one');
  const status = (await send(`http://127.0.0.1:${adminPort}/status`)).json();
  assert.equal(status.workers, 2);

  const invalid = await send(`http://127.0.0.1:${adminPort}/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ _format_version: '3.0', services: [{ url: 'bad' }] }) });
  assert.equal(invalid.status, 400);
  assert.match(invalid.json().message, /services\[0\]\.url: invalid URL/);
  assert.equal((await send(`http://127.0.0.1:${proxyPort}/`)).body, 'one', 'invalid config leaves the running one');

  const yaml = `_format_version: "3.0"\n_gatehouse: { access_log: false }\nservices:\n- name: s\n  url: ${two.url}\n  routes:\n  - paths: [/]\n`;
  const applied = await send(`http://127.0.0.1:${adminPort}/config`, { method: 'POST', headers: { 'content-type': 'text/yaml' }, body: yaml });
  assert.equal(applied.status, 201, applied.body);
  for (let i = 0; i < 10; i++) assert.equal((await send(`http://127.0.0.1:${proxyPort}/`)).body, 'two', 'every worker has the new config');

  const back = `_format_version: "3.0"\n_gatehouse: { access_log: false }\nservices:\n- name: s\n  url: ${slow.url}\n  routes:\n  - paths: [/]\n`;
  assert.equal((await send(`http://127.0.0.1:${adminPort}/config`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: back })).status, 201);
  const inFlight = send(`http://127.0.0.1:${proxyPort}/slow`);
  while (!release) await new Promise((r) => setTimeout(r, 20));
  gw.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  await assert.rejects(send(`http://127.0.0.1:${proxyPort}/`), /ECONNREFUSED|ECONNRESET|socket hang up/, 'no new connections while draining');
  release();
  assert.equal((await inFlight).body, 'slow done', 'the in-flight request finished');
  assert.equal(await gw.exited, 0);
});

test('the demo: npm start serves the bundled demo config with its services', async () => {
  const proxyPort = await freePort();
  const adminPort = await freePort();
  const demo = await startCli(['demo'], /Try:/, { GATEHOUSE_PROXY_LISTEN: `127.0.0.1:${proxyPort}`, GATEHOUSE_ADMIN_LISTEN: `127.0.0.1:${adminPort}` });
  assert.match(demo.output(), /curl -i http:\/\/localhost:\d+\/v1\/users/);
  const v1 = (await send(`http://127.0.0.1:${proxyPort}/v1/users`)).json();
  assert.equal(v1.version, 1);
  const v2 = (await send(`http://127.0.0.1:${proxyPort}/v2/users/7`)).json();
  assert.equal(v2.version, 2);
  assert.equal(v2.path, '/api/users/7');
  const orders = await send(`http://127.0.0.1:${proxyPort}/orders`);
  assert.match(String(orders.headers['x-correlation-id']), /#\d+$/);
  // Balanced over the two order instances.
  const instances = new Set([orders.json().instance, (await send(`http://127.0.0.1:${proxyPort}/orders`)).json().instance]);
  assert.deepEqual([...instances].sort(), ['a', 'b']);
  const product = (await send(`http://127.0.0.1:${proxyPort}/products/ABC-123`)).json();
  assert.equal(product.received_headers['x-product-sku'], 'ABC-123');
  assert.equal((await send(`http://127.0.0.1:${proxyPort}/maintenance`)).status, 503);
  assert.equal((await send(`http://127.0.0.1:${proxyPort}/orders`, { method: 'DELETE' })).status, 404);
  demo.child.kill('SIGTERM');
  assert.equal(await demo.exited, 0);
});

test('config validate builds the plugins too: a broken public key is reported before any start', () => {
  const file = writeConfig(
    'badkey.yaml',
    [
      '_format_version: "3.0"',
      'plugins:',
      '- name: jwt',
      'consumers:',
      '- username: svc',
      '  jwt_secrets:',
      '  - key: issuer-1',
      '    algorithm: RS256',
      '    rsa_public_key: "-----BEGIN PUBLIC KEY-----\\nAAAAnotakey\\n-----END PUBLIC KEY-----\\n"',
      '',
    ].join('\n'),
  );
  const r = spawnSync(process.execPath, [BIN, 'config', 'validate', file], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /invalid/);
});
