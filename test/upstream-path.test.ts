import { test } from 'node:test';
import assert from 'node:assert/strict';
import { upstreamPathV0, upstreamPathV1 } from '../src/router/upstream-path.js';

// Rows of Kong's own fixture (spec/fixtures/router_path_handling_tests.lua):
// service path, route path (null: host-only route), strip_path ('either' = both), request, v0 result, v1 result.
const ROWS: [string, string | null, boolean | 'either', string, string, string][] = [
  ['/', '/', 'either', '/route/req', '/route/req', '/route/req'],
  ['/', '/route', false, '/routereq', '/routereq', '/routereq'],
  ['/', '/route', true, '/route', '/', '/'],
  ['/', '/route', true, '/route/', '/', '/'],
  ['/', '/route', true, '/routereq', '/req', '/req'],
  ['/', '/route/', true, '/route/req', '/req', '/req'],
  ['/srv', '/rou', false, '/roureq', '/srv/roureq', '/srvroureq'],
  ['/srv', '/rou', true, '/roureq', '/srv/req', '/srvreq'],
  ['/srv/', '/rou', true, '/rou', '/srv', '/srv/'],
  ['/service', '/', 'either', '/', '/service', '/service'],
  ['/service', '/', 'either', '/route', '/service/route', '/serviceroute'],
  ['/service', '/', 'either', '/route/', '/service/route/', '/serviceroute/'],
  ['/service', '/route', false, '/route', '/service/route', '/serviceroute'],
  ['/service', '/route', false, '/route/', '/service/route/', '/serviceroute/'],
  ['/service', '/route', true, '/route', '/service', '/service'],
  ['/service', '/route', true, '/route/', '/service/', '/service/'],
  ['/service', '/route', true, '/routereq', '/service/req', '/servicereq'],
  ['/service', '/route/', true, '/route/', '/service/', '/service'],
  ['/service', '/route/', true, '/route/req', '/service/req', '/servicereq'],
  ['/service/', '/', 'either', '/', '/service/', '/service/'],
  ['/service/', '/', 'either', '/route', '/service/route', '/service/route'],
  ['/service/', '/route', false, '/route', '/service/route', '/service/route'],
  ['/service/', '/route', true, '/route', '/service', '/service/'],
  ['/service/', '/route', true, '/route/', '/service/', '/service/'],
  ['/service/', '/route', true, '/routereq', '/service/req', '/service/req'],
  ['/service/', '/route/', true, '/route/req', '/service/req', '/service/req'],
  ['/service', null, 'either', '/route/', '/service/route/', '/serviceroute/'],
  ['/service', '/route', true, '/route./req', '/service/req', '/servicereq'],
  ['/service', '/route', true, '/route../req', '/service/req', '/servicereq'],
  ['/service', '/route', false, '/route./req', '/service/route./req', '/serviceroute./req'],
];

test("upstream path follows Kong's v0 and v1 fixture table", () => {
  for (const [svc, route, strip, request, v0, v1] of ROWS) {
    for (const s of strip === 'either' ? [true, false] : [strip]) {
      const matched = route ?? '';
      assert.equal(upstreamPathV0(svc, request, matched, s), v0, `v0 ${svc} ${route} strip=${s} ${request}`);
      assert.equal(upstreamPathV1(svc, request, matched, s), v1, `v1 ${svc} ${route} strip=${s} ${request}`);
    }
  }
});

test('a service without a path behaves as "/"', () => {
  assert.equal(upstreamPathV0(undefined, '/api/x', '/api', true), '/x');
  assert.equal(upstreamPathV0(undefined, '/api/x', '/api', false), '/api/x');
});
