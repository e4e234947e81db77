import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { startUpstream, send, type Upstream } from './helpers/harness.js';
import { startTestNode, type TestNode } from './helpers/node.js';
import { UUID_PATTERN } from '../src/lib/uuid.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function upstream(): Promise<Upstream> {
  const up = await startUpstream();
  cleanup.push(up.close);
  return up;
}

async function node(config: object | string, options: Parameters<typeof startTestNode>[1] = {}): Promise<TestNode> {
  const n = await startTestNode(config, options);
  cleanup.push(() => n.stop(0));
  return n;
}

const base = (url: string) => ({
  _format_version: '3.0',
  _gatehouse: { access_log: false },
  services: [{ name: 'users', url, routes: [{ name: 'users', paths: ['/users'] }] }],
});

// A self-signed test certificate (CN test.example) and its key; nothing else uses them.
const CERT = `-----BEGIN CERTIFICATE-----
MIIBhTCCASugAwIBAgIULy0edSshij6dE0Xc/jNO62e8tLgwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMdGVzdC5leGFtcGxlMCAXDTI2MTEzMDA5Mzk1OFoYDzIxMjYx
MTA2MDkzOTU4WjAXMRUwEwYDVQQDDAx0ZXN0LmV4YW1wbGUwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAATQskRtKoLLEr9qPucQPafemEzCo/g6IY1088M+OB1GxNUP
oeJgI/idI2itITXJzwYU5/kP72jyIlFv/EtQzGcfo1MwUTAdBgNVHQ4EFgQU+KVd
9vP0Yr7OMqQ+hgokE0adxUUwHwYDVR0jBBgwFoAU+KVd9vP0Yr7OMqQ+hgokE0ad
xUUwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEA5ac0RaN2vrKv
UzzeN95x/Sq0MjERhIZcTYHhx4IneTkCIEiA9ODo7FIXfRcaqkGSMS5DTgvLisp+
oIAY648MPYEE
-----END CERTIFICATE-----
`;
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgE3glPkgQCXDj7VwY
PJFDThuwulQPGlP0cP3H9sM5VruhRANCAATQskRtKoLLEr9qPucQPafemEzCo/g6
IY1088M+OB1GxNUPoeJgI/idI2itITXJzwYU5/kP72jyIlFv/EtQzGcf
-----END PRIVATE KEY-----
`;

test('services and routes: Kong payloads and status codes, and the proxy follows every change', async () => {
  const up = await upstream();
  const n = await node(base(up.url));

  const created = await n.call('POST', '/services', { name: 'orders', url: `${up.url}/api` });
  assert.equal(created.status, 201, created.text);
  const svc = created.body;
  assert.match(svc.id, UUID_PATTERN);
  assert.equal(svc.name, 'orders');
  assert.equal(svc.protocol, 'http');
  assert.equal(svc.host, '127.0.0.1');
  assert.equal(svc.port, up.port);
  assert.equal(svc.path, '/api');
  assert.equal(svc.url, undefined, 'url is shown as its parts, as Kong does');
  assert.equal(svc.retries, 5);
  assert.equal(svc.connect_timeout, 60000);
  assert.equal(svc.tags, null);
  assert.equal(typeof svc.created_at, 'number');
  assert.equal(svc.updated_at, svc.created_at);

  const route = await n.call('POST', '/services/orders/routes', { name: 'orders', paths: ['/orders'], methods: ['GET'] });
  assert.equal(route.status, 201, route.text);
  assert.deepEqual(route.body.service, { id: svc.id });
  assert.equal(route.body.strip_path, true);
  assert.deepEqual(route.body.protocols, ['http', 'https']);
  assert.equal((await send(`${n.proxyUrl}/orders/7`)).json().url, '/api/7', 'the new route serves once the call returned');

  assert.deepEqual((await n.call('GET', `/services/${svc.id}`)).body, svc);
  assert.deepEqual((await n.call('GET', '/services/orders')).body, svc);
  assert.deepEqual((await n.call('GET', '/services/orders/routes')).body.data.map((r: { name: string }) => r.name), ['orders']);
  assert.deepEqual((await n.call('GET', `/routes/${route.body.id}/service`)).body.id, svc.id);
  const all = (await n.call('GET', '/routes')).body;
  assert.deepEqual(all.data.map((r: { name: string }) => r.name).sort(), ['orders', 'users']);
  assert.equal(all.next, null);
  assert.equal('offset' in all, false, 'no offset on the last page');

  const patched = await n.call('PATCH', '/routes/orders', { methods: ['GET', 'POST'], tags: ['v2'] });
  assert.equal(patched.status, 200, patched.text);
  assert.deepEqual(patched.body.methods, ['GET', 'POST']);
  assert.deepEqual(patched.body.paths, ['/orders'], 'PATCH keeps what it does not name');
  assert.equal((await send(`${n.proxyUrl}/orders`, { method: 'POST' })).status, 200);

  // PATCH of a url part on a service given by url; null unsets.
  const moved = await n.call('PATCH', '/services/orders', { path: '/v2', tags: ['x'] });
  assert.equal(moved.status, 200, moved.text);
  assert.equal(moved.body.path, '/v2');
  assert.equal(moved.body.host, '127.0.0.1');
  assert.equal((await send(`${n.proxyUrl}/orders/1`)).json().url, '/v2/1');
  assert.equal((await n.call('PATCH', '/services/orders', { tags: null })).body.tags, null);

  // PUT: upsert by name (created, then replaced whole).
  const put1 = await n.call('PUT', '/services/billing', { url: 'http://127.0.0.1:9/b' });
  assert.equal(put1.status, 200, put1.text);
  assert.equal(put1.body.name, 'billing');
  const put2 = await n.call('PUT', '/services/billing', { host: 'billing.internal', retries: 1 });
  assert.equal(put2.status, 200, put2.text);
  assert.equal(put2.body.id, put1.body.id);
  assert.equal(put2.body.path, null, 'PUT replaces: the old path is gone');
  assert.equal(put2.body.retries, 1);
  assert.equal(put2.body.created_at, put1.body.created_at);

  // Nested route under a service it does not belong to: 404.
  assert.equal((await n.call('GET', `/services/billing/routes/${route.body.id}`)).status, 404);
  assert.equal((await n.call('DELETE', `/services/billing/routes/${route.body.id}`)).status, 404);
  assert.equal((await n.call('DELETE', '/services/orders')).body.code, 4, 'a service with routes is not deleted');
  assert.equal((await n.call('DELETE', `/services/orders/routes/${route.body.id}`)).status, 204);
  assert.equal((await send(`${n.proxyUrl}/orders`)).status, 404);
  assert.equal((await n.call('DELETE', '/services/orders')).status, 204);
  assert.equal((await n.call('DELETE', '/services/orders')).status, 204, 'deleting what is not there is 204, as Kong');
  assert.deepEqual((await n.call('GET', '/services/orders')).body, { message: 'Not found' });
  assert.equal((await n.call('GET', '/services/orders')).status, 404);
  assert.deepEqual((await n.call('PATCH', '/services/nothing', { retries: 1 })).body, { message: 'Not found' });
  assert.equal((await n.call('POST', '/services/billing')).status, 405);
});

test('an invalid change answers 400 with every bad field, Kong-style, and nothing is applied', async () => {
  const up = await upstream();
  const n = await node(base(up.url));
  const before = n.manager.state;

  const bad = await n.call('POST', '/routes', { name: 'x', paths: ['nope', '/ok', '~/(unclosed'], methods: ['get'], service: { name: 'users' } });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 2);
  assert.equal(bad.body.name, 'schema violation');
  assert.deepEqual(bad.body.fields.methods, ['must be an upper-case HTTP method']);
  assert.match(bad.body.message, /^\d+ schema violations \(/);

  const paths = await n.call('POST', '/routes', { name: 'x', paths: ['nope', '/ok', '~/(unclosed'], service: { name: 'users' } });
  assert.equal(paths.status, 400);
  assert.deepEqual(paths.body.fields.paths[0], 'must start with "/" or "~"');
  assert.equal(paths.body.fields.paths[1], null);
  assert.match(paths.body.fields.paths[2], /invalid regex/);
  assert.ok(paths.body.errors.every((e: string) => /^routes\[\d+\]\.paths\[\d\]: /.test(e)), 'the full path of every bad field');

  const plugin = await n.call('POST', '/plugins', { name: 'rate-limiting', config: { minute: 'many', second: -1 } });
  assert.equal(plugin.status, 400);
  assert.ok(plugin.body.fields.config.minute);
  assert.ok(plugin.body.fields.config.second);

  assert.deepEqual((await n.call('POST', '/services', { name: 'x', url: 'http://h', nope: 1 })).body.fields, { nope: 'unknown field' });
  assert.equal((await n.call('POST', '/plugins', { name: 'no-such-plugin' })).body.fields.name.startsWith('plugin "no-such-plugin" is not installed'), true);
  assert.equal((await n.call('POST', '/routes', { paths: ['/x'], service: { name: 'ghost' } })).body.code, 4, 'unknown service: foreign key violation');
  assert.equal((await n.call('POST', '/routes', { name: 'users', paths: ['/x'] })).status, 409);
  assert.equal((await n.call('POST', '/services', { id: 'not-a-uuid', host: 'h' })).body.fields.id, 'expected a valid UUID');
  assert.equal((await n.call('POST', '/services', [1, 2])).status, 400);

  assert.equal(n.manager.state, before, 'no change was applied');
  assert.equal((await send(`${n.proxyUrl}/users`)).status, 200);
  assert.equal((await n.call('GET', '/routes')).body.data.length, 1);
});

test('lists: size and offset pagination, Kong errors for bad ones, tags filters', async () => {
  const up = await upstream();
  const n = await node(base(up.url));
  for (let i = 0; i < 7; i++) {
    const r = await n.call('POST', '/consumers', { username: `user${i}`, tags: i % 2 ? ['odd', 'all'] : ['even', 'all'] });
    assert.equal(r.status, 201, r.text);
  }
  const seen: string[] = [];
  let page = await n.call('GET', '/consumers?size=3');
  assert.equal(page.body.data.length, 3);
  assert.match(page.body.next, /^\/consumers\?offset=[^&]+&size=3$/);
  assert.equal(typeof page.body.offset, 'string');
  for (;;) {
    seen.push(...page.body.data.map((c: { username: string }) => c.username));
    if (!page.body.next) break;
    page = await n.call('GET', page.body.next);
  }
  assert.deepEqual(seen.sort(), ['user0', 'user1', 'user2', 'user3', 'user4', 'user5', 'user6']);
  assert.equal(page.body.offset, undefined);

  assert.deepEqual((await n.call('GET', '/consumers?size=0')).body, { code: 9, name: 'invalid size', message: 'size must be an integer between 1 and 1000' });
  assert.equal((await n.call('GET', '/consumers?size=1001')).status, 400);
  const badOffset = await n.call('GET', '/consumers?offset=%%%');
  assert.equal(badOffset.status, 400);
  assert.equal(badOffset.body.code, 7);

  const odd = (await n.call('GET', '/consumers?tags=odd')).body.data.map((c: { username: string }) => c.username).sort();
  assert.deepEqual(odd, ['user1', 'user3', 'user5']);
  assert.equal((await n.call('GET', '/consumers?tags=odd,even')).body.data.length, 0, 'a,b: all of them');
  assert.equal((await n.call('GET', '/consumers?tags=odd/even')).body.data.length, 7, 'a/b: any of them');
  const tagged = await n.call('GET', '/consumers?tags=all&size=2');
  assert.match(tagged.body.next, /^\/consumers\?offset=.+&tags=all&size=2$/);
  assert.equal((await n.call('GET', '/consumers?tags=a,b/c')).body.code, 11);
});

test('plugins: scoped creation, defaults in the view, PATCH merges config, enabled toggles take effect', async () => {
  const up = await upstream();
  const n = await node(base(up.url));
  const stop = await n.call('POST', '/routes/users/plugins', { name: 'request-termination', config: { status_code: 418, message: 'teapot' } });
  assert.equal(stop.status, 201, stop.text);
  assert.deepEqual(stop.body.route, { id: (await n.call('GET', '/routes/users')).body.id });
  assert.equal(stop.body.service, null);
  assert.equal(stop.body.config.echo, false, 'defaults are filled');
  assert.equal(stop.body.enabled, true);
  assert.equal((await send(`${n.proxyUrl}/users`)).status, 418);

  const off = await n.call('PATCH', `/plugins/${stop.body.id}`, { enabled: false });
  assert.equal(off.status, 200);
  assert.equal((await send(`${n.proxyUrl}/users`)).status, 200);
  const merged = await n.call('PATCH', `/routes/users/plugins/${stop.body.id}`, { enabled: true, config: { status_code: 451 } });
  assert.equal(merged.body.config.message, 'teapot', 'config is merged, not replaced');
  assert.equal(merged.body.config.status_code, 451);
  assert.ok(merged.body.updated_at >= merged.body.created_at);
  assert.equal((await send(`${n.proxyUrl}/users`)).status, 451);

  assert.equal((await n.call('POST', '/routes/users/plugins', { name: 'request-termination' })).status, 409, 'one instance per plugin and scope');
  const global = await n.call('POST', '/plugins', { name: 'correlation-id', config: { echo_downstream: true } });
  assert.equal(global.status, 201);
  assert.equal((await n.call('GET', '/plugins')).body.data.length, 2);
  assert.deepEqual((await n.call('GET', '/plugins/enabled')).body.enabled_plugins.includes('correlation-id'), true);
  assert.equal((await n.call('DELETE', `/plugins/${stop.body.id}`)).status, 204);
  assert.ok((await send(`${n.proxyUrl}/users`)).headers['kong-request-id'], 'the global plugin runs');

  // Deleting a route takes its plugins with it.
  await n.call('POST', '/routes/users/plugins', { name: 'cors' });
  await n.call('POST', '/routes', { name: 'other', paths: ['/o'], service: { name: 'users' } });
  await n.call('DELETE', '/routes/users');
  assert.deepEqual((await n.call('GET', '/plugins')).body.data.map((p: { name: string }) => p.name), ['correlation-id']);
});

test('consumers and credentials: generated keys authenticate, passwords are stored hashed, cascades', async () => {
  const up = await upstream();
  const n = await node({ ...base(up.url), plugins: [{ name: 'key-auth', route: 'users' }] });
  assert.equal((await send(`${n.proxyUrl}/users`)).status, 401);
  const alice = await n.call('POST', '/consumers', { username: 'alice', custom_id: 'a-1' });
  assert.equal(alice.status, 201);
  const key = await n.call('POST', '/consumers/alice/key-auth');
  assert.equal(key.status, 201, key.text);
  assert.match(key.body.key, /^[0-9a-f]{32}$/);
  assert.deepEqual(key.body.consumer, { id: alice.body.id });
  const ok = await send(`${n.proxyUrl}/users`, { headers: { apikey: key.body.key } });
  assert.equal(ok.status, 200);
  assert.equal(ok.json().headers['x-consumer-username'], 'alice');

  const own = await n.call('POST', '/consumers/a-1/key-auth', { key: 'my-own-key' });
  assert.equal(own.status, 201, 'a consumer is also found by custom_id');
  assert.equal((await n.call('POST', '/consumers/alice/key-auth', { key: 'my-own-key' })).status, 409);
  assert.equal((await n.call('GET', '/consumers/alice/key-auth/my-own-key')).body.id, own.body.id);
  assert.equal((await n.call('GET', '/key-auths')).body.data.length, 2);
  assert.equal((await n.call('GET', `/key-auths/${own.body.id}/consumer`)).body.username, 'alice');

  const basic = await n.call('POST', '/consumers/alice/basic-auth', { username: 'alice', password: 'hunter2' });
  assert.equal(basic.status, 201, basic.text);
  assert.match(basic.body.password, /^\$scrypt\$/, 'never stored in clear');
  assert.doesNotMatch(readFileSync(n.file, 'utf8'), /hunter2/);
  const acl = await n.call('POST', '/consumers/alice/acls', { group: 'admins' });
  assert.equal(acl.status, 201);
  assert.equal((await n.call('POST', '/consumers/alice/acls', { group: 'admins' })).status, 409);
  assert.equal((await n.call('GET', '/consumers/alice/acls/admins')).body.id, acl.body.id);
  const jwt = await n.call('POST', '/consumers/alice/jwt', {});
  assert.equal(jwt.status, 201);
  assert.equal(jwt.body.algorithm, 'HS256');
  assert.match(jwt.body.secret, /^[0-9a-f]{32}$/);
  assert.equal((await n.call('POST', '/consumers/alice/hmac-auth', { username: 'alice-hmac' })).status, 201);

  assert.equal((await n.call('DELETE', '/consumers/alice/key-auth/nope')).status, 404);
  assert.equal((await n.call('DELETE', `/consumers/alice/key-auth/${key.body.id}`)).status, 204);
  assert.equal((await send(`${n.proxyUrl}/users`, { headers: { apikey: key.body.key } })).status, 401, 'a removed key stops working');
  assert.equal((await n.call('DELETE', '/consumers/alice')).status, 204);
  for (const path of ['/key-auths', '/basic-auths', '/acls', '/jwts', '/hmac-auths']) assert.equal((await n.call('GET', path)).body.data.length, 0, `${path} cascaded`);
});

test('upstreams and targets, certificates and SNIs', async () => {
  const up = await upstream();
  const n = await node(base(up.url));
  const u = await n.call('POST', '/upstreams', { name: 'backend' });
  assert.equal(u.status, 201, u.text);
  assert.equal(u.body.algorithm, 'round-robin');
  assert.equal((await n.call('POST', '/upstreams', { name: 'not a host' })).status, 400);
  const t = await n.call('POST', '/upstreams/backend/targets', { target: '10.0.0.1' });
  assert.equal(t.status, 201, t.text);
  assert.equal(t.body.target, '10.0.0.1:8000');
  assert.equal(t.body.weight, 100);
  assert.equal((await n.call('POST', '/upstreams/backend/targets', { target: '10.0.0.1:8000' })).status, 409);
  assert.equal((await n.call('GET', '/upstreams/backend/targets/10.0.0.1:8000')).body.id, t.body.id);
  assert.equal((await n.call('PATCH', `/upstreams/backend/targets/${t.body.id}`, { weight: 5 })).body.weight, 5);
  assert.equal((await n.call('GET', '/upstreams/backend/targets')).body.data.length, 1);
  assert.equal((await n.call('DELETE', '/upstreams/backend')).status, 204);
  assert.equal((await n.call('GET', `/upstreams/backend/targets/${t.body.id}`)).status, 404);

  const cert = await n.call('POST', '/certificates', { cert: CERT, key: KEY, snis: ['test.example', 'www.test.example'] });
  assert.equal(cert.status, 201, cert.text);
  assert.deepEqual(cert.body.snis, ['test.example', 'www.test.example']);
  assert.equal((await n.call('GET', '/snis/test.example')).body.certificate.id, cert.body.id);
  assert.equal((await n.call('POST', '/certificates', { cert: 'nope', key: KEY })).body.fields.cert.startsWith('invalid certificate'), true);
  assert.equal((await n.call('POST', `/certificates/${cert.body.id}/snis`, { name: 'api.test.example' })).status, 201);
  assert.equal((await n.call('POST', '/snis', { name: 'test.example', certificate: { id: cert.body.id } })).status, 409);
  assert.equal((await n.call('GET', '/snis')).body.data.length, 3);
  assert.equal((await n.call('DELETE', `/certificates/${cert.body.id}`)).status, 204);
  assert.equal((await n.call('GET', '/snis')).body.data.length, 0);
});

test('GET /config, POST /config (Kong answer and ?check_hash), /status, /, /schemas', async () => {
  const up = await upstream();
  const n = await node(base(up.url));
  const exported = (await n.call('GET', '/config')).body.config;
  assert.equal(exported._format_version, '3.0');
  assert.match(exported.services[0].id, UUID_PATTERN, 'ids are written into the exported document');

  const doc = { _format_version: '3.0', services: [{ name: 'b', url: `${up.url}/b`, routes: [{ name: 'b', paths: ['/b'] }] }] };
  const replaced = await n.call('POST', '/config', doc);
  assert.equal(replaced.status, 201, replaced.text);
  assert.deepEqual(Object.keys(replaced.body).sort(), ['routes', 'services']);
  const [sid] = Object.keys(replaced.body.services);
  assert.equal(replaced.body.services[sid!].name, 'b');
  assert.equal((await send(`${n.proxyUrl}/b/1`)).json().url, '/b/1');
  assert.equal((await send(`${n.proxyUrl}/users`)).status, 404);
  assert.equal((await n.call('POST', '/config?check_hash=1', doc)).status, 304);
  const yaml = `_format_version: "3.0"\nservices:\n- name: c\n  url: ${up.url}\n  routes: [{paths: [/c]}]\n`;
  assert.equal((await n.call('POST', '/config', yaml, { 'content-type': 'application/yaml' })).status, 201);
  const invalid = await n.call('POST', '/config', { _format_version: '3.0', services: [{ name: 'x', url: 'nope' }] });
  assert.equal(invalid.status, 400);
  assert.equal(invalid.body.code, 14);
  assert.deepEqual(invalid.body.fields, { services: [{ url: 'invalid URL' }] });
  assert.equal(invalid.body.flattened_errors, undefined);
  const flat = await n.call('POST', '/config?flatten_errors=1', {
    _format_version: '3.0',
    services: [{ name: 'x', url: 'nope', tags: ['t'], routes: [{ name: 'r', paths: ['bad'] }] }],
  });
  assert.equal(flat.status, 400);
  assert.deepEqual(
    flat.body.flattened_errors.map((f: { entity_type: string; entity_name: string; entity_tags?: string[]; errors: unknown[] }) => [f.entity_type, f.entity_name, f.entity_tags, f.errors]),
    [
      ['service', 'x', ['t'], [{ type: 'field', field: 'url', message: 'invalid URL' }]],
      ['route', 'r', undefined, [{ type: 'field', field: 'paths.0', message: 'must start with "/" or "~"' }]],
    ],
  );

  const status = (await n.call('GET', '/status')).body;
  assert.equal(status.workers, 1);
  assert.equal(typeof status.configuration_hash, 'string');
  assert.ok(status.configuration_version >= 3);
  assert.ok(status.server.connections_accepted >= 1);
  const info = (await n.call('GET', '/')).body;
  assert.ok(info.plugins.available_on_server.includes('key-auth'));
  assert.equal(info.configuration.database, 'off');

  const schema = await n.call('GET', '/schemas/plugins/rate-limiting');
  assert.equal(schema.status, 200);
  assert.equal(schema.body.fields.config.properties.minute.type, 'number');
  assert.equal((await n.call('GET', '/schemas/plugins/nope')).status, 404);
  assert.equal((await n.call('GET', '/schemas/services')).body.properties.retries.default, 5);
});

test('route debugger: the matching route, why the others lose, the plugins in order', async () => {
  const up = await upstream();
  const n = await node({
    _format_version: '3.0',
    services: [
      {
        name: 'api',
        url: `${up.url}/internal`,
        routes: [
          { name: 'get-users', paths: ['/users'], methods: ['GET'], plugins: [{ name: 'rate-limiting', config: { minute: 10 } }] },
          { name: 'admin-users', paths: ['/users'], headers: { 'x-admin': ['yes'] } },
          { name: 'by-host', hosts: ['api.example.com'] },
          { name: 'regex', paths: ['~/users/(?<id>\\d+)$'] },
        ],
        plugins: [{ name: 'key-auth' }],
      },
    ],
    plugins: [{ name: 'correlation-id' }],
  });
  const r = await n.call('GET', '/debug/route?method=POST&path=/users/42&host=other.example');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.matched.route.name, 'regex');
  assert.deepEqual(r.body.matched.captures, { id: '42', 1: '42' });
  assert.equal(r.body.matched.upstream_url, `http://127.0.0.1:${up.port}/internal`);
  assert.deepEqual(
    r.body.plugins.map((p: { name: string }) => p.name),
    ['correlation-id', 'key-auth'],
    'by priority: correlation-id 100001, key-auth 1250',
  );
  assert.equal(r.body.plugins[1].scope, 'service');
  const why = Object.fromEntries(r.body.candidates.map((c: { route: { name: string }; reasons: string[] }) => [c.route.name, c.reasons.join('; ')]));
  assert.match(why['get-users']!, /method POST is not one of \["GET"\]/);
  assert.match(why['admin-users']!, /header x-admin is missing/);
  assert.match(why['by-host']!, /host "other.example" is not one of/);

  const get = (await n.call('GET', '/debug/route?path=/users&header=X-Admin:yes')).body;
  assert.equal(get.matched.route.name, 'admin-users', 'more matching fields (headers) win');
  assert.equal(get.candidates.find((c: { route: { name: string } }) => c.route.name === 'get-users').result, 'matches, but a route with higher precedence wins');
  const limited = (await n.call('GET', '/debug/route?path=/users')).body;
  assert.deepEqual(
    limited.plugins.map((p: { name: string }) => p.name),
    ['correlation-id', 'key-auth', 'rate-limiting'],
  );
  assert.equal((await n.call('GET', '/debug/route?path=/nothing')).body.matched, null);
  assert.equal((await n.call('GET', '/debug/route?header=bad')).status, 400);
});

test('persistence: every change is written back to the file, and a restart serves the same config', async () => {
  const up = await upstream();
  const n = await node(base(up.url));
  const svc = (await n.call('POST', '/services', { name: 'saved', url: `${up.url}/s` })).body;
  const route = (await n.call('POST', '/services/saved/routes', { paths: ['/saved'] })).body;
  await n.call('POST', '/plugins', { name: 'correlation-id' });
  const text = readFileSync(n.file, 'utf8');
  assert.match(text, /^# written by the gatehouse admin API/);
  assert.deepEqual(parseYaml(text), n.manager.state.doc, 'the YAML written reads back to the same document');
  await n.stop(0);

  const again = await startTestNode(text);
  cleanup.push(() => again.stop(0));
  assert.equal((await again.call('GET', `/services/${svc.id}`)).body.name, 'saved');
  assert.equal((await again.call('GET', `/routes/${route.id}`)).body.paths[0], '/saved');
  assert.equal((await send(`${again.proxyUrl}/saved/x`)).json().url, '/s/x');
});

test('--read-only-admin: the file is the only source; writes answer 405 like Kong DB-less', async () => {
  const up = await upstream();
  const n = await node(base(up.url), { readOnlyAdmin: true });
  const r = await n.call('POST', '/services', { name: 'x', host: 'h' });
  assert.equal(r.status, 405);
  assert.equal(r.body.code, 12);
  assert.equal(r.body.name, 'operation unsupported');
  assert.match(r.body.message, /^cannot create 'services' entities/);
  assert.match((await n.call('PATCH', '/services/users', { retries: 1 })).body.message, /^cannot update 'services' entities by 'name'/);
  assert.equal((await n.call('DELETE', '/routes/users')).status, 405);
  assert.equal((await n.call('POST', '/config', base(up.url))).status, 405);
  assert.equal((await n.call('GET', '/services/users')).status, 200);
});

test('nested entities: a PATCH that changes the parent moves the entity; ids survive the move', async () => {
  const up = await upstream();
  const n = await node({
    _format_version: '3.0',
    services: [
      { name: 'one', url: `${up.url}/one`, routes: [{ name: 'r', paths: ['/r'], plugins: [{ name: 'correlation-id' }] }] },
      { name: 'two', url: `${up.url}/two` },
    ],
    consumers: [{ username: 'x', keyauth_credentials: [{ key: 'kx' }] }, { username: 'y' }],
  });
  const before = (await n.call('GET', '/routes/r')).body;
  const moved = await n.call('PATCH', '/routes/r', { service: { name: 'two' } });
  assert.equal(moved.status, 200, moved.text);
  assert.equal(moved.body.id, before.id);
  assert.equal((await send(`${n.proxyUrl}/r/1`)).json().url, '/two/1');
  assert.equal((await n.call('GET', '/services/two/routes')).body.data[0].id, before.id);
  assert.equal((await n.call('GET', '/routes/r/plugins')).body.data.length, 1, 'its plugins went with it');
  assert.equal((await n.call('DELETE', '/services/one')).status, 204, 'the old parent has no route left');

  const key = (await n.call('GET', '/consumers/x/key-auth')).body.data[0];
  assert.equal((await n.call('PATCH', `/key-auths/${key.id}`, { consumer: { username: 'y' } })).status, 200);
  assert.equal((await n.call('GET', '/consumers/y/key-auth/kx')).body.id, key.id);
  assert.equal((await n.call('GET', '/consumers/x/key-auth')).body.data.length, 0);
  // A PATCH through the nested form keeps the parent it names.
  assert.equal((await n.call('PATCH', `/consumers/y/key-auth/${key.id}`, { tags: ['t'] })).body.consumer.id, (await n.call('GET', '/consumers/y')).body.id);
});
