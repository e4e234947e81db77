import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeConfig } from '../src/config/normalize.js';
import { parseConfigText } from '../src/config/load.js';
import { PLUGINS } from '../src/plugins/registry.js';
import { ConfigError } from '../src/lib/errors.js';
import { declarativeId } from '../src/lib/uuid.js';

function errorsOf(doc: unknown): string[] {
  try {
    normalizeConfig(doc, PLUGINS);
  } catch (err) {
    if (err instanceof ConfigError) return err.errors;
    throw err;
  }
  return [];
}

test("a Kong kong.yml with supported features loads unchanged, with Kong's defaults", () => {
  const doc = parseConfigText(`
_format_version: "3.0"
_transform: true
services:
- name: my-service
  url: https://example.com:8443/base
  tags: [a]
  routes:
  - name: my-route
    paths: [/api]
plugins:
- name: correlation-id
`);
  const normal = normalizeConfig(doc, PLUGINS);
  const svc = normal.services[0]!;
  assert.equal(svc.protocol, 'https');
  assert.equal(svc.host, 'example.com');
  assert.equal(svc.port, 8443);
  assert.equal(svc.path, '/base');
  assert.equal(svc.entity.retries, 5);
  assert.equal(svc.entity.connect_timeout, 60000);
  assert.equal(svc.entity.read_timeout, 60000);
  assert.equal(svc.entity.write_timeout, 60000);
  const route = normal.routes[0]!;
  assert.equal(route.entity.strip_path, true);
  assert.equal(route.entity.preserve_host, false);
  assert.equal(route.entity.regex_priority, 0);
  assert.equal(route.entity.path_handling, 'v0');
  assert.equal(route.entity.https_redirect_status_code, 426);
  assert.deepEqual(route.entity.protocols, ['http', 'https']);
  assert.equal(route.serviceId, svc.id);
  assert.equal(normal.plugins[0]!.entity.config.header_name, 'Kong-Request-ID', 'plugin defaults filled');
});

test("entities without an id get Kong's deterministic ids", () => {
  assert.equal(declarativeId('services', 'my-service'), '0855b320-0dd2-547d-891d-601e9b38647f');
  assert.equal(declarativeId('routes', 'my-route'), '481a9539-f49c-51b6-b2e2-fe99ee68866c');
  assert.equal(declarativeId('consumers', 'my-user'), '4b1b701d-de2b-5588-9aa2-3b97061d9f52');
  const normal = normalizeConfig({ _format_version: '3.0', services: [{ name: 'my-service', url: 'http://a' }] }, PLUGINS);
  assert.equal(normal.services[0]!.id, '0855b320-0dd2-547d-891d-601e9b38647f');
});

test('every bad field is named by its path', () => {
  const errors = errorsOf({
    _format_version: '3.0',
    services: [
      { name: 'a', url: 'http://a' },
      { name: 'b', url: 'http://b', port: 70000 },
      {
        name: 'c',
        url: 'http://c',
        retries: -1,
        routes: [{ paths: ['/ok', 'nope'], methods: ['get'], hosts: ['a*b.com'] }],
      },
    ],
    routes: [{ name: 'top', paths: ['/x'], service: 'missing' }],
  });
  assert.ok(errors.includes('services[1].port: must be <= 65535'), errors.join('\n'));
  assert.ok(errors.includes('services[2].retries: must be >= 0'), errors.join('\n'));
  assert.ok(errors.includes('services[2].routes[0].methods[0]: must be an upper-case HTTP method'), errors.join('\n'));
  assert.equal(errorsOf({ _format_version: '3.0', services: [{ url: 'http://c', routes: [{ paths: ['/ok', 'nope'] }] }] })[0], 'services[0].routes[0].paths[1]: must start with "/" or "~"');
  assert.deepEqual(errorsOf({ _format_version: '3.0', services: [{ url: 'http://c', routes: [{ hosts: ['a*b.com'] }] }] }), [
    'services[0].routes[0].hosts[0]: invalid wildcard: only one "*" at the start or end of the host',
  ]);
  assert.deepEqual(errorsOf({ _format_version: '3.0', routes: [{ name: 'top', paths: ['/x'], service: 'missing' }] }), ['routes[0].service: no service named "missing"']);
});

test('unknown fields, unknown plugins and wrong format versions are errors, not ignored', () => {
  assert.deepEqual(errorsOf({ _format_version: '3.0', services: [{ url: 'http://a', colour: 'red' }] }), ['services[0].colour: unknown field']);
  assert.deepEqual(errorsOf({ _format_version: '2.1' }), ['_format_version: must be "3.0"']);
  const unknown = errorsOf({ _format_version: '3.0', plugins: [{ name: 'no-such-plugin' }] });
  assert.equal(unknown.length, 1);
  assert.match(unknown[0]!, /^plugins\[0\]\.name: plugin "no-such-plugin" is not installed/);
  const bad = errorsOf({ _format_version: '3.0', plugins: [{ name: 'correlation-id', config: { generator: 'dice' } }] });
  assert.equal(bad.length, 1);
  assert.match(bad[0]!, /^plugins\[0\]\.config\.generator: must be one of:? uuid, uuid#counter, tracker$/);
});

test('regex paths must compile; names must be unique; a route needs something to match on', () => {
  assert.match(errorsOf({ _format_version: '3.0', services: [{ url: 'http://a', routes: [{ paths: ['~/(unclosed'] }] }] })[0]!, /^services\[0\]\.routes\[0\]\.paths\[0\]: invalid regex/);
  assert.deepEqual(errorsOf({ _format_version: '3.0', services: [{ name: 'x', url: 'http://a' }, { name: 'x', url: 'http://b' }] }), [
    'services[1].name: UNIQUE violation: "x" is already used',
  ]);
  assert.deepEqual(errorsOf({ _format_version: '3.0', services: [{ url: 'http://a', routes: [{ name: 'empty' }] }] }), [
    'services[0].routes[0]: must set one of "methods", "hosts", "headers", "paths", "snis"',
  ]);
});

test('service url and its parts are exclusive; unsupported protocols are named', () => {
  assert.deepEqual(errorsOf({ _format_version: '3.0', services: [{ url: 'http://a', host: 'b' }] }), ['services[0].url: cannot be set together with protocol, host, port or path']);
  assert.deepEqual(errorsOf({ _format_version: '3.0', services: [{ url: 'grpc://a:50051' }] }), ['services[0].url: protocol "grpc" is not supported yet (http and https are)']);
  assert.deepEqual(errorsOf({ _format_version: '3.0', services: [{ name: 's' }] }), ['services[0].host: required field missing (set url, or protocol/host/port/path)']);
  const parts = normalizeConfig({ _format_version: '3.0', services: [{ protocol: 'https', host: 'api.example.com' }] }, PLUGINS);
  assert.equal(parts.services[0]!.port, 443);
});

test('consumers, upstreams and targets are accepted by the schema (certificates: test/tls.test.ts)', () => {
  const normal = normalizeConfig(
    {
      _format_version: '3.0',
      consumers: [{ username: 'alice', keyauth_credentials: [{ key: 'k' }], acls: [{ group: 'g' }] }],
      upstreams: [{ name: 'up', targets: [{ target: '127.0.0.1:9000' }] }],
    },
    PLUGINS,
  );
  assert.equal(normal.consumers[0]!.username, 'alice');
});

test('YAML and JSON parse errors are config errors', () => {
  assert.throws(() => parseConfigText('a: [unclosed', 'f.yaml'), (err: unknown) => err instanceof ConfigError && /^f\.yaml: cannot parse/.test(err.errors[0]!));
  assert.throws(() => parseConfigText('{"a": ', 'f.json'), (err: unknown) => err instanceof ConfigError);
});
