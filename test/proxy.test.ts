import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Type } from '@sinclair/typebox';
import { send, rawRequest, oneRoute, managedServers, freePort } from './helpers/harness.js';
import { PLUGINS } from '../src/plugins/registry.js';
import { definePlugin } from '../src/plugins/types.js';
import type { LocalReply } from '../src/pipeline/exchange.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});
const { upstream, gateway } = managedServers();

test('routes by path, strips the prefix, keeps the query, sets Host to the service host', async () => {
  const up = await upstream();
  const gw = await gateway(oneRoute(`${up.url}/base`, { paths: ['/api'] }));
  const res = await send(`${gw.url}/api/users?id=1&x=%20y`);
  assert.equal(res.status, 200);
  const seen = res.json();
  assert.equal(seen.url, '/base/users?id=1&x=%20y');
  assert.equal(seen.headers.host, `127.0.0.1:${up.port}`);
});

test('preserve_host forwards the client Host header unchanged', async () => {
  const up = await upstream();
  const gw = await gateway(oneRoute(up.url, { paths: ['/'], preserve_host: true }));
  const res = await send(`${gw.url}/x`, { headers: { host: 'Client.Example:1234' } });
  assert.equal(res.json().headers.host, 'Client.Example:1234');
});

test('no matching route: 404 with Kong\'s message and the request id', async () => {
  const up = await upstream();
  const gw = await gateway(oneRoute(up.url, { paths: ['/only'] }));
  const res = await send(`${gw.url}/elsewhere`);
  assert.equal(res.status, 404);
  assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
  assert.deepEqual(res.json(), { message: 'no Route matched with those values', request_id: res.headers['x-gatehouse-request-id'] });
  assert.match(String(res.headers['x-gatehouse-request-id']), /^[0-9a-f]{32}$/);
  assert.match(String(res.headers['x-gatehouse-response-latency']), /^\d+$/);
  assert.equal(up.requests.length, 0);
});

test('routes by host (wildcard), method and header, with Kong precedence', async () => {
  const a = await upstream((_q, res) => res.end('a'));
  const b = await upstream((_q, res) => res.end('b'));
  const c = await upstream((_q, res) => res.end('c'));
  const gw = await gateway({
    _format_version: '3.0',
    services: [
      { name: 'a', url: a.url, routes: [{ name: 'wild', hosts: ['*.example.com'] }] },
      { name: 'b', url: b.url, routes: [{ name: 'posts', hosts: ['*.example.com'], methods: ['POST'] }] },
      { name: 'c', url: c.url, routes: [{ name: 'beta', hosts: ['*.example.com'], headers: { 'x-beta': ['yes'] } }] },
    ],
  });
  assert.equal((await send(`${gw.url}/`, { headers: { host: 'shop.example.com' } })).body, 'a');
  assert.equal((await send(`${gw.url}/`, { method: 'POST', headers: { host: 'shop.example.com' } })).body, 'b');
  assert.equal((await send(`${gw.url}/`, { headers: { host: 'shop.example.com', 'x-beta': 'YES' } })).body, 'c');
  assert.equal((await send(`${gw.url}/`, { headers: { host: 'example.org' } })).status, 404);
});

test('versioned routes: /v1 and /v2 go to different services', async () => {
  const v1 = await upstream((q, res) => res.end(`v1 ${q.url}`));
  const v2 = await upstream((q, res) => res.end(`v2 ${q.url}`));
  const gw = await gateway({
    _format_version: '3.0',
    services: [
      { name: 'legacy', url: v1.url, routes: [{ paths: ['/v1/users'], strip_path: false }] },
      { name: 'new', url: `${v2.url}/api/users`, routes: [{ paths: ['/v2/users'] }] },
    ],
  });
  assert.equal((await send(`${gw.url}/v1/users/3`)).body, 'v1 /v1/users/3');
  assert.equal((await send(`${gw.url}/v2/users/3`)).body, 'v2 /api/users/3');
});

test('the normalised path is the one matched and forwarded', async () => {
  const up = await upstream();
  const gw = await gateway(oneRoute(up.url, { paths: ['/public'], strip_path: false }));
  const res = await send(`${gw.url}/public/../public/%61bc/./x`);
  assert.equal(res.json().url, '/public/abc/x');
  const escape = await send(`${gw.url}/public/%2e%2e/admin`);
  assert.equal(escape.status, 404, 'an encoded dot-dot cannot escape the route prefix');
  const bad = await rawRequest(gw.port, 'GET /public/%zz HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(bad, /^HTTP\/1\.1 400 /);
});

test('hop-by-hop headers are removed both ways, including those named by Connection', async () => {
  const up = await upstream((_q, res) => {
    res.writeHead(200, { connection: 'x-internal', 'x-internal': 'secret', 'keep-alive': 'timeout=5', 'x-kept': '1' });
    res.end('ok');
  });
  const gw = await gateway(oneRoute(up.url));
  const res = await rawRequest(
    gw.port,
    'GET / HTTP/1.1\r\nHost: x\r\nConnection: close, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers, deflate\r\nUpgrade: foo\r\nX-Stay: yes\r\n\r\n',
  );
  const seen = up.requests[0]!.headers;
  assert.equal(seen['x-drop'], undefined);
  assert.equal(seen['keep-alive'], undefined);
  assert.equal(seen['proxy-connection'], undefined);
  assert.equal(seen.upgrade, undefined);
  assert.equal(seen.te, 'trailers');
  assert.equal(seen['x-stay'], 'yes');
  assert.doesNotMatch(res, /x-internal/i);
  assert.doesNotMatch(res, /keep-alive: timeout/i);
  assert.match(res, /x-kept: 1/i);
});

test('X-Forwarded-* and X-Real-IP from an untrusted client are replaced (XFF appended), Via added', async () => {
  const up = await upstream();
  const gw = await gateway(oneRoute(up.url, { paths: ['/p'] }));
  const res = await send(`${gw.url}/p/x`, {
    headers: { host: 'Shop.Example:9999', 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil', 'x-forwarded-port': '1', 'x-real-ip': '6.6.6.6', via: '1.0 corp' },
  });
  const h = res.json().headers;
  assert.equal(h['x-forwarded-for'], '1.2.3.4, 127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], 'shop.example');
  assert.equal(h['x-forwarded-port'], String(gw.port));
  assert.equal(h['x-forwarded-path'], '/p/x');
  assert.equal(h['x-forwarded-prefix'], '/p');
  assert.equal(h['x-real-ip'], '127.0.0.1');
  assert.match(h.via, /^1\.0 corp, 1\.1 gatehouse\/\d+\.\d+\.\d+$/);
  assert.match(h['x-gatehouse-request-id'], /^[0-9a-f]{32}$/);
  assert.match(String(res.headers.via), /1\.1 gatehouse\//);
});

test('trusted_ips: a trusted peer keeps its X-Forwarded-* and sets the client address', async () => {
  const up = await upstream();
  const gw = await gateway({ ...oneRoute(up.url), _gatehouse: { trusted_ips: ['127.0.0.0/8', '::1'] } });
  const res = await send(`${gw.url}/`, { headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example', 'x-forwarded-port': '443' } });
  const h = res.json().headers;
  assert.equal(h['x-forwarded-proto'], 'https');
  assert.equal(h['x-forwarded-host'], 'public.example');
  assert.equal(h['x-forwarded-port'], '443');
  assert.equal(h['x-real-ip'], '203.0.113.9');
  assert.equal(h['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
});

test('latency headers on proxied responses, and they can be switched off', async () => {
  const up = await upstream();
  const on = await gateway(oneRoute(up.url));
  const res = await send(`${on.url}/`);
  assert.match(String(res.headers['x-gatehouse-upstream-latency']), /^\d+$/);
  assert.match(String(res.headers['x-gatehouse-proxy-latency']), /^\d+$/);
  const off = await gateway({ ...oneRoute(up.url), _gatehouse: { headers: ['off'] } });
  const quiet = await send(`${off.url}/`);
  for (const name of ['x-gatehouse-upstream-latency', 'x-gatehouse-proxy-latency', 'x-gatehouse-request-id', 'via']) {
    assert.equal(quiet.headers[name], undefined, name);
  }
});

test('connect failure: 502 JSON with request id after the configured retries', async () => {
  const port = await freePort();
  const gw = await gateway(oneRoute(`http://127.0.0.1:${port}`, { paths: ['/'] }, { retries: 2 }));
  const res = await send(`${gw.url}/`, { method: 'POST', body: 'x' });
  assert.equal(res.status, 502);
  assert.deepEqual(res.json(), { message: 'An invalid response was received from the upstream server', request_id: res.headers['x-gatehouse-request-id'] });
  const warn = gw.logs.find((l) => l.msg === 'upstream request failed');
  assert.equal(warn?.attempts, 3, 'first try + 2 retries, even for POST, because nothing was sent');
});

test('a failure after connecting is retried for idempotent methods only', async () => {
  let accepted = 0;
  const flaky = net.createServer((socket) => {
    accepted++;
    socket.once('data', () => {
      if (accepted <= 2) socket.destroy();
      else socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
    });
  });
  await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise((r) => flaky.close(() => r())));
  const port = (flaky.address() as net.AddressInfo).port;
  const gw = await gateway(oneRoute(`http://127.0.0.1:${port}`, { paths: ['/'] }, { retries: 5 }));
  const get = await send(`${gw.url}/`);
  assert.equal(get.status, 200);
  assert.equal(get.body, 'ok');
  assert.equal(accepted, 3);
  accepted = 0;
  const post = await send(`${gw.url}/`, { method: 'POST', body: 'data' });
  assert.equal(post.status, 502, 'POST is not retried once it reached the upstream');
  assert.equal(accepted, 1);
});

test('read timeout: 504 JSON', async () => {
  const silent = await upstream(() => undefined);
  const gw = await gateway(oneRoute(silent.url, { paths: ['/'] }, { read_timeout: 300, retries: 0 }));
  const started = Date.now();
  const res = await send(`${gw.url}/`);
  assert.equal(res.status, 504);
  assert.equal(res.json().message, 'The upstream server is timing out');
  assert.ok(Date.now() - started < 3000);
});

test('an upstream that resets mid-body truncates the client response and does not poison the pool', async () => {
  let n = 0;
  const up = await upstream((_q, res) => {
    n++;
    if (n === 1) {
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(1000, 'a'));
      setTimeout(() => res.socket?.destroy(), 50);
    } else res.end('fine');
  });
  const gw = await gateway(oneRoute(up.url));
  await assert.rejects(send(`${gw.url}/`), /aborted|socket hang up|ECONNRESET/);
  const next = await send(`${gw.url}/`);
  assert.equal(next.status, 200);
  assert.equal(next.body, 'fine');
});

test('an upstream with broken framing gets a 502', async () => {
  const broken = net.createServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\nhello')));
  await new Promise<void>((r) => broken.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise((r) => broken.close(() => r())));
  const gw = await gateway(oneRoute(`http://127.0.0.1:${(broken.address() as net.AddressInfo).port}`, { paths: ['/'] }, { retries: 0 }));
  const res = await send(`${gw.url}/`);
  assert.equal(res.status, 502);
});

test('malformed client requests get 400/431, the connection closes, nothing reaches the upstream', async () => {
  const up = await upstream();
  const gw = await gateway(oneRoute(up.url));
  const cases: [string, RegExp][] = [
    ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', /^HTTP\/1\.1 400 /],
    ['POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n', /^HTTP\/1\.1 400 /],
    ['GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', /^HTTP\/1\.1 400 /],
    [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
  ];
  for (const [bytes, expected] of cases) {
    const answer = await rawRequest(gw.port, bytes, 2000);
    assert.match(answer, expected, JSON.stringify(bytes.slice(0, 60)));
  }
  assert.equal(up.requests.length, 0);
});

test('request and response bodies stream: 1 GiB each way with flat memory', async () => {
  const GiB = 1024 * 1024 * 1024;
  const chunk = Buffer.alloc(1024 * 1024, 'x');
  let received = 0;
  const up = await upstream(
    (req, res) => {
      if (req.method === 'POST') {
        req.on('data', (c: Buffer) => (received += c.length));
        req.on('end', () => res.end(String(received)));
        return;
      }
      res.writeHead(200, { 'content-length': String(GiB) });
      let sent = 0;
      const pump = () => {
        while (sent < GiB) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    },
    { streaming: true },
  );
  const gw = await gateway(oneRoute(up.url));
  const http = await import('node:http');
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  try {
    const uploaded = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${gw.url}/up`, { method: 'POST', headers: { 'content-length': String(GiB) }, agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      let sent = 0;
      const pump = () => {
        while (sent < GiB) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(uploaded, String(GiB));
    const downloaded = await new Promise<number>((resolve, reject) => {
      http.get(`${gw.url}/down`, { agent: false }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
        res.on('error', reject);
      });
    });
    assert.equal(downloaded, GiB);
  } finally {
    clearInterval(sampler);
  }
  assert.ok(peak - baseline < 200 * 1024 * 1024, `memory grew by ${Math.round((peak - baseline) / 1048576)} MiB`);
});

test('a plugin that throws gives a 500 with the request id, logged with the plugin name; the gateway keeps serving', async () => {
  const boom = definePlugin({
    name: 'boom',
    priority: 500,
    schema: Type.Object({}, { additionalProperties: false }),
    create: () => ({
      access: (ex) => {
        if (ex.path === '/boom') throw new Error('kaboom');
      },
    }),
  });
  const up = await upstream();
  const gw = await gateway({ ...oneRoute(up.url), plugins: [{ name: 'boom' }] }, { plugins: new Map([...PLUGINS, ['boom', boom]]) });
  const res = await send(`${gw.url}/boom`);
  assert.equal(res.status, 500);
  assert.deepEqual(res.json(), { message: 'An unexpected error occurred', request_id: res.headers['x-gatehouse-request-id'] });
  const line = gw.logs.find((l) => l.msg === 'plugin failed');
  assert.equal(line?.plugin, 'boom');
  assert.equal(line?.request_id, res.headers['x-gatehouse-request-id']);
  assert.equal((await send(`${gw.url}/fine`)).status, 200);
});

test('https-only routes answer plain HTTP with 426, or redirect when configured', async () => {
  const up = await upstream();
  const gw = await gateway({
    _format_version: '3.0',
    services: [
      {
        url: up.url,
        routes: [
          { name: 'tls-only', paths: ['/secure'], protocols: ['https'] },
          { name: 'moved', paths: ['/moved'], protocols: ['https'], https_redirect_status_code: 301 },
        ],
      },
    ],
  });
  const upgrade = await send(`${gw.url}/secure`);
  assert.equal(upgrade.status, 426);
  assert.equal(upgrade.json().message, 'Please use HTTPS protocol');
  assert.equal(upgrade.headers.upgrade, 'TLS/1.2, HTTP/1.1');
  const moved = await send(`${gw.url}/moved/a?b=1`, { headers: { host: 'Shop.Example:8000' } });
  assert.equal(moved.status, 301);
  assert.equal(moved.headers.location, 'https://shop.example/moved/a?b=1');
  assert.equal(up.requests.length, 0);
});

test('one JSON access-log line per request', async () => {
  const up = await upstream();
  const gw = await gateway(oneRoute(up.url, { paths: ['/logged'] }));
  const res = await send(`${gw.url}/logged?x=1`, { headers: { authorization: 'Bearer secret-token' } });
  await new Promise((r) => setTimeout(r, 50));
  const line = gw.logs.find((l) => l.type === 'access' && l.request_id === res.headers['x-gatehouse-request-id']);
  assert.ok(line);
  assert.equal(line.method, 'GET');
  assert.equal(line.path, '/logged');
  assert.equal(line.route, 'r');
  assert.equal(line.service, 'svc');
  assert.equal(line.status, 200);
  assert.equal(line.client_ip, '127.0.0.1');
  assert.equal(typeof line.latency_ms, 'number');
  assert.equal(typeof line.upstream_latency_ms, 'number');
  assert.ok(!JSON.stringify(gw.logs).includes('secret-token'), 'credentials never logged');
});

test('reload swaps the config; a request in flight finishes on the old one', async () => {
  let release: () => void = () => undefined;
  const slow = await upstream((_q, res) => {
    release = () => res.end('old');
  });
  const fresh = await upstream((_q, res) => res.end('new'));
  const gw = await gateway(oneRoute(slow.url));
  const pending = send(`${gw.url}/`);
  while (slow.requests.length === 0) await new Promise((r) => setTimeout(r, 10));
  gw.gateway.reload(oneRoute(fresh.url));
  assert.equal((await send(`${gw.url}/`)).body, 'new');
  release();
  assert.equal((await pending).body, 'old');
  assert.throws(() => gw.gateway.reload({ _format_version: '3.0', services: [{ url: 'nope' }] }), /services\[0\]\.url: invalid URL/);
  assert.equal((await send(`${gw.url}/`)).body, 'new', 'an invalid config changes nothing');
});

test('absolute-form request targets route on their own authority and path', async () => {
  const a = await upstream((q, res) => res.end(`a ${q.url}`));
  const b = await upstream((q, res) => res.end(`b ${q.url}`));
  const gw = await gateway({
    _format_version: '3.0',
    services: [
      { name: 'a', url: a.url, routes: [{ hosts: ['a.example'] }] },
      { name: 'b', url: b.url, routes: [{ hosts: ['b.example'] }] },
    ],
  });
  const answer = await rawRequest(gw.port, 'GET http://b.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.match(answer, /b \/x\?y=1$/);
});

test('local replies: 204 and 304 carry no Content-Length; HEAD keeps a plugin-set one', async () => {
  const replying = definePlugin({
    name: 'replying',
    priority: 500,
    schema: Type.Object({}, { additionalProperties: false }),
    create: () => ({
      access: (ex): LocalReply | undefined => {
        if (ex.path === '/nc') return { status: 204, reason: 'test' };
        if (ex.path === '/nm') return { status: 304, headers: { etag: '"v1"' }, reason: 'test' };
        if (ex.path === '/head') return { status: 200, headers: { 'content-length': '1234' }, reason: 'test' };
        return undefined;
      },
    }),
  });
  const up = await upstream();
  const gw = await gateway({ ...oneRoute(up.url), plugins: [{ name: 'replying' }] }, { plugins: new Map([...PLUGINS, ['replying', replying]]) });
  const nc = await rawRequest(gw.port, 'GET /nc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(nc, /^HTTP\/1\.1 204 /);
  assert.doesNotMatch(nc, /content-length/i);
  const nm = await rawRequest(gw.port, 'GET /nm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(nm, /^HTTP\/1\.1 304 /);
  assert.doesNotMatch(nm, /content-length/i);
  const head = await rawRequest(gw.port, 'HEAD /head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(head, /content-length: 1234/i);
});
