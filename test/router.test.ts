import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Router, type RouteRequest } from '../src/router/router.js';
import type { CompiledRoute } from '../src/config/snapshot.js';
import type { RouteConfig } from '../src/config/schema.js';

function build(routes: Partial<RouteConfig>[]): Router {
  return new Router(
    routes.map((r, order) => ({
      route: { id: r.name!, name: r.name } as unknown as CompiledRoute,
      config: { protocols: ['http', 'https'], strip_path: true, preserve_host: false, regex_priority: 0, path_handling: 'v0', https_redirect_status_code: 426, request_buffering: true, response_buffering: true, ...r } as RouteConfig,
      order,
    })),
  );
}

function req(path: string, extra: Partial<RouteRequest> = {}): RouteRequest {
  return { method: 'GET', host: 'example.com', port: '', path, headers: {}, sni: undefined, ...extra };
}

const name = (router: Router, r: RouteRequest) => router.match(r)?.route.name;

test('longest prefix wins among prefix routes', () => {
  const r = build([{ name: 'short', paths: ['/api'] }, { name: 'long', paths: ['/api/users'] }]);
  assert.equal(name(r, req('/api/users/1')), 'long');
  assert.equal(name(r, req('/api/orders')), 'short');
  assert.equal(name(r, req('/apix')), 'short', 'prefixes are string prefixes, as in Kong');
  assert.equal(name(r, req('/other')), undefined);
});

test('a route matching on more fields wins over a longer path', () => {
  const r = build([
    { name: 'path-only', paths: ['/api/users'] },
    { name: 'host-and-path', hosts: ['example.com'], paths: ['/api'] },
  ]);
  assert.equal(name(r, req('/api/users')), 'host-and-path');
  assert.equal(name(r, req('/api/users', { host: 'other.com' })), 'path-only');
});

test('regex paths beat prefix paths; regex_priority orders regexes; captures are returned', () => {
  const r = build([
    { name: 'prefix', paths: ['/users/'] },
    { name: 'low', paths: ['~/users/(?<id>\\d+)$'], regex_priority: 1 },
    { name: 'high', paths: ['~/users/(?P<id>42)$'], regex_priority: 5 },
  ]);
  assert.equal(name(r, req('/users/42')), 'high');
  const m = r.match(req('/users/7'));
  assert.equal(m?.route.name, 'low');
  assert.deepEqual(m?.captures, { 1: '7', id: '7' });
  assert.equal(m?.matchedPath, '/users/7');
  assert.equal(name(r, req('/users/abc')), 'prefix');
});

test('regex paths are anchored at the start of the path', () => {
  const r = build([{ name: 'rx', paths: ['~/v\\d+/x'] }]);
  assert.equal(name(r, req('/v2/x')), 'rx');
  assert.equal(name(r, req('/a/v2/x')), undefined);
});

test('hosts: exact beats wildcard; wildcards at either end; port-specific hosts', () => {
  const r = build([
    { name: 'wild-prefix', hosts: ['*.example.com'] },
    { name: 'wild-suffix', hosts: ['api.*'] },
    { name: 'exact', hosts: ['www.example.com'] },
    { name: 'with-port', hosts: ['ports.example.org:8080'] },
  ]);
  assert.equal(name(r, req('/', { host: 'www.example.com' })), 'exact');
  assert.equal(name(r, req('/', { host: 'a.b.example.com' })), 'wild-prefix');
  assert.equal(name(r, req('/', { host: 'api.test' })), 'wild-suffix');
  assert.equal(name(r, req('/', { host: 'ports.example.org', port: '8080' })), 'with-port');
  assert.equal(name(r, req('/', { host: 'ports.example.org', port: '9090' })), undefined);
  assert.equal(name(r, req('/', { host: 'example.com' })), undefined);
});

test('methods and headers restrict a route; more headers rank higher', () => {
  const r = build([
    { name: 'get', paths: ['/x'], methods: ['GET'] },
    { name: 'v2', paths: ['/x'], methods: ['GET'], headers: { 'X-Version': ['v2', '~*^beta-\\d$'] } },
  ]);
  assert.equal(name(r, req('/x')), 'get');
  assert.equal(name(r, req('/x', { headers: { 'x-version': 'V2' } })), 'v2', 'plain header values compare case-insensitively');
  assert.equal(name(r, req('/x', { headers: { 'x-version': 'Beta-3' } })), 'v2');
  assert.equal(name(r, req('/x', { method: 'POST' })), undefined);
});

test('snis only match TLS requests with that server name', () => {
  const r = build([{ name: 'tls', snis: ['secure.example.com'], protocols: ['https'] }]);
  assert.equal(name(r, req('/')), undefined);
  assert.equal(name(r, req('/', { sni: 'secure.example.com' })), 'tls');
});

test('ties go to the route defined first', () => {
  const r = build([{ name: 'first', paths: ['/same'] }, { name: 'second', paths: ['/same'] }]);
  assert.equal(name(r, req('/same')), 'first');
});

test('10,000 routes are all reachable', () => {
  const routes: Partial<RouteConfig>[] = [];
  for (let i = 0; i < 10_000; i++) {
    if (i % 100 === 0) routes.push({ name: `rx${i}`, paths: [`~/rx${i}/(?<id>\\d+)$`] });
    else if (i % 3 === 0) routes.push({ name: `h${i}`, hosts: [`h${i}.example.com`], paths: ['/'] });
    else routes.push({ name: `p${i}`, paths: [`/p${i}/`] });
  }
  const r = build(routes);
  for (let i = 0; i < 10_000; i += 7) {
    const expected = i % 100 === 0 ? `rx${i}` : i % 3 === 0 ? `h${i}` : `p${i}`;
    const request = i % 100 === 0 ? req(`/rx${i}/5`) : i % 3 === 0 ? req('/anything', { host: `h${i}.example.com` }) : req(`/p${i}/x`);
    assert.equal(name(r, request), expected);
  }
});

test('regex literal prefixes are conservative', async () => {
  const { literalPrefix } = await import('../src/router/router.js');
  assert.equal(literalPrefix('/users/(?<id>\\d+)$'), '/users/');
  assert.equal(literalPrefix('/a\\.b/c'), '/a.b/c');
  assert.equal(literalPrefix('/ab?c'), '/a');
  assert.equal(literalPrefix('/x*'), '/');
  assert.equal(literalPrefix('/a|/b'), '');
  assert.equal(literalPrefix('\\d+'), '');
  const r = build([{ name: 'alt', paths: ['~/(a|b)/x'] }, { name: 'opt', paths: ['~/vers?ion/\\d'] }]);
  assert.equal(name(r, req('/b/x')), 'alt');
  assert.equal(name(r, req('/verion/1')), 'opt');
  assert.equal(name(r, req('/version/1')), 'opt');
});
