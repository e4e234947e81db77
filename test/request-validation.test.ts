import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { rawRequest, oneRoute, managedServers, type Upstream, type TestGateway } from './helpers/harness.js';
import { validateRequest } from '../src/listeners/request-validation.js';

const { upstream, gateway } = managedServers();

function statusOf(response: string): number {
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(response);
  assert.ok(m, `no status line in ${JSON.stringify(response.slice(0, 200))}`);
  return Number(m[1]);
}

function headerOf(response: string, name: string): string | undefined {
  const head = response.slice(0, response.indexOf('\r\n\r\n'));
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

let up: Upstream;
let gw: TestGateway;
before(async () => {
  up = await upstream();
  gw = await gateway(oneRoute(up.url, { paths: ['/'], strip_path: false }));
});

// Each rule of src/listeners/request-validation.ts (and the parser errors the listener answers),
// with the request that breaks it. None may reach the upstream.
const REFUSED: { rule: string; request: string; status: number; allow?: boolean }[] = [
  { rule: 'HTTP/2.0 request line on the HTTP/1.1 listener', request: 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', status: 505 },
  { rule: 'well-formed but unsupported version (parser error)', request: 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', status: 505 },
  { rule: 'malformed version stays a 400', request: 'GET / HTTP/01.1\r\nHost: a\r\n\r\n', status: 400 },
  { rule: 'missing Host on HTTP/1.1', request: 'GET / HTTP/1.1\r\n\r\n', status: 400 },
  { rule: 'two Host fields', request: 'GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n', status: 400 },
  { rule: 'Host with userinfo', request: 'GET / HTTP/1.1\r\nHost: user@a\r\n\r\n', status: 400 },
  { rule: 'Host with a path', request: 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', status: 400 },
  { rule: 'empty Host', request: 'GET / HTTP/1.1\r\nHost:\r\n\r\n', status: 400 },
  { rule: 'comma-separated Host', request: 'GET / HTTP/1.1\r\nHost: a, b\r\n\r\n', status: 400 },
  { rule: 'Host port out of range', request: 'GET / HTTP/1.1\r\nHost: a:70000\r\n\r\n', status: 400 },
  { rule: 'two Content-Type fields', request: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi', status: 400 },
  { rule: 'two Authorization fields', request: 'GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YTpi\r\nAuthorization: Basic Yzpk\r\n\r\n', status: 400 },
  { rule: 'Content-Length with a leading zero', request: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 05\r\n\r\nhello', status: 400 },
  { rule: 'Content-Length "00"', request: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\n\r\n', status: 400 },
  { rule: 'empty Transfer-Encoding', request: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\nhello', status: 400 },
  { rule: 'unknown transfer coding without chunked', request: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', status: 501 },
  { rule: 'another coding before chunked', request: 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', status: 501 },
  { rule: 'Transfer-Encoding on HTTP/1.0', request: 'POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n', status: 400 },
  { rule: 'TRACE', request: 'TRACE / HTTP/1.1\r\nHost: a\r\n\r\n', status: 405, allow: true },
  { rule: 'CONNECT', request: 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', status: 405, allow: true },
  { rule: 'asterisk-form with GET', request: 'GET * HTTP/1.1\r\nHost: a\r\n\r\n', status: 400 },
  { rule: 'absolute-form with another scheme', request: 'GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n', status: 400 },
  { rule: 'absolute-form with userinfo', request: 'GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n', status: 400 },
  { rule: 'authority-form without CONNECT', request: 'GET a:80 HTTP/1.1\r\nHost: a\r\n\r\n', status: 400 },
  { rule: 'percent-encoded NUL in the path', request: 'GET /a%00.html HTTP/1.1\r\nHost: a\r\n\r\n', status: 400 },
  { rule: 'percent-encoded CR LF in the path', request: 'GET /a%0d%0aX-Injected:%201 HTTP/1.1\r\nHost: a\r\n\r\n', status: 400 },
  { rule: 'percent-encoded DEL in an absolute-form path', request: 'GET http://a/x%7F HTTP/1.1\r\nHost: a\r\n\r\n', status: 400 },
  { rule: 'obs-fold (parser)', request: 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n', status: 400 },
  { rule: 'bare CR in a header value (parser)', request: 'GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n', status: 400 },
  { rule: 'bare LF line end (parser)', request: 'GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n', status: 400 },
  { rule: 'Content-Length and Transfer-Encoding together (parser)', request: 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400 },
];

for (const c of REFUSED) {
  test(`refused before routing: ${c.rule} -> ${c.status}`, async () => {
    const seen = up.requests.length;
    const res = await rawRequest(gw.port, c.request);
    assert.equal(statusOf(res), c.status);
    assert.match(headerOf(res, 'content-type') ?? '', /^application\/json/);
    assert.equal(headerOf(res, 'connection')?.toLowerCase(), 'close');
    if (c.allow) assert.equal(headerOf(res, 'allow'), 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
    assert.equal(up.requests.length, seen, 'the upstream saw the request');
  });
}

test('Content-Length 0 and plain digits are accepted', async () => {
  const res = await rawRequest(gw.port, 'POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  assert.equal(statusOf(res), 200);
  const res2 = await rawRequest(gw.port, 'POST /cl HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789');
  assert.equal(statusOf(res2), 200);
});

test('Transfer-Encoding "chunked" in any letter case is the one coding accepted', async () => {
  const res = await rawRequest(gw.port, 'POST /te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n');
  assert.equal(statusOf(res), 200);
  assert.equal(up.requests.at(-1)!.body.toString(), 'hello');
});

test('encoded control characters are allowed in the query, only the path is refused', async () => {
  const res = await rawRequest(gw.port, 'GET /q?text=a%0Ab%00 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(statusOf(res), 200);
  assert.equal(up.requests.at(-1)!.url, '/q?text=a%0Ab%00');
});

test('OPTIONS * is answered by the gateway with Allow and never forwarded', async () => {
  const seen = up.requests.length;
  const res = await rawRequest(gw.port, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.equal(statusOf(res), 200);
  assert.equal(headerOf(res, 'allow'), 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
  assert.equal(headerOf(res, 'content-length'), '0');
  assert.equal(up.requests.length, seen);
});

test('absolute-form: routed and forwarded as origin-form, the target authority replaces Host', async () => {
  const target = await upstream();
  const other = await upstream();
  const g = await gateway({
    _format_version: '3.0',
    services: [
      { name: 'target', url: target.url, routes: [{ name: 't', hosts: ['target.example'], preserve_host: true }] },
      { name: 'other', url: other.url, routes: [{ name: 'o', paths: ['/'] }] },
    ],
  });
  const res = await rawRequest(g.port, 'GET http://Target.Example:8080?x=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n');
  assert.equal(statusOf(res), 200);
  assert.equal(other.requests.length, 0);
  assert.equal(target.requests.length, 1);
  assert.equal(target.requests[0]!.url, '/?x=1');
  assert.equal(target.requests[0]!.headers.host, 'Target.Example:8080');
  assert.equal(target.requests[0]!.rawHeaders.filter((_, i) => i % 2 === 0 && /^host$/i.test(target.requests[0]!.rawHeaders[i]!)).length, 1);
});

test('underscore spellings of framing and forwarding headers are dropped, other underscore names pass (as in Kong)', async () => {
  const res = await rawRequest(
    gw.port,
    'POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent_Length: 99\r\nTransfer_Encoding: chunked\r\nX_Forwarded_For: 6.6.6.6\r\nX_Consumer_Username: admin\r\napi_key: k1\r\nConnection: close\r\n\r\nhello',
  );
  assert.equal(statusOf(res), 200);
  const seen = up.requests.at(-1)!;
  const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  for (const dropped of ['content_length', 'transfer_encoding', 'x_forwarded_for', 'x_consumer_username']) assert.ok(!names.includes(dropped), dropped);
  assert.equal(seen.headers['api_key'], 'k1');
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.body.toString(), 'hello');
});

test('Expect: 100-continue: a refused request gets its final status without a 100 first', async () => {
  const res = await rawRequest(gw.port, 'POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
  assert.equal(statusOf(res), 400);
  assert.ok(!res.includes('100 Continue'));
});

test('Expect: 100-continue: an accepted request is invited, then proxied', async () => {
  const net = await import('node:net');
  const socket = net.connect(gw.port, '127.0.0.1');
  let text = '';
  let sent = false;
  socket.on('data', (c: Buffer) => {
    text += c.toString('latin1');
    if (!sent && text.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
      sent = true;
      socket.write('hello');
    }
  });
  socket.write('POST /continue HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n');
  await new Promise((r) => socket.on('close', r));
  assert.match(text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  assert.equal(up.requests.at(-1)!.body.toString(), 'hello');
});

test('what reaches the upstream is well-framed and normalised: one Host, clean values, no hop-by-hop fields', async () => {
  const res = await rawRequest(
    gw.port,
    'POST http://client.example/norm HTTP/1.1\r\n' +
      'Host: client.example\r\n' +
      'X-Padded: \t value with inner  spaces \t\r\n' +
      'X-List: a\r\nX-List: b\r\n' +
      'Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers, deflate\r\nUpgrade: websocket\r\nTrailer: X-Sum\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n' +
      '5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\nHost: evil.example\r\n\r\n' +
      'GET /second HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
  );
  assert.equal(statusOf(res), 200);
  assert.equal((res.match(/HTTP\/1\.1 200 /g) ?? []).length, 2, 'both pipelined requests answered');
  const seen = up.requests.at(-2)!;
  assert.equal(seen.url, '/norm');
  const raw = seen.rawHeaders;
  const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  const values = raw.filter((_, i) => i % 2 === 1);
  assert.equal(names.filter((n) => n === 'host').length, 1, 'exactly one Host');
  for (const v of values) {
    assert.doesNotMatch(v, /[\r\n\0]/, 'no CR, LF or NUL in a forwarded value');
    assert.equal(v, v.trim(), 'no leading or trailing whitespace');
  }
  assert.equal(seen.headers['x-padded'], 'value with inner  spaces');
  assert.equal(seen.headers['x-list'], 'a, b');
  for (const hop of ['keep-alive', 'proxy-connection', 'upgrade', 'trailer', 'x-hop']) assert.ok(!names.includes(hop), `${hop} forwarded`);
  assert.notEqual(seen.headers.connection?.toLowerCase().includes('x-hop'), true);
  assert.ok(!seen.headers.te || seen.headers.te === 'trailers', 'TE survives only as "trailers"');
  const framing = names.filter((n) => n === 'content-length' || n === 'transfer-encoding');
  assert.equal(framing.length, 1, `one framing header, got ${framing.join(', ')}`);
  assert.equal(seen.body.toString(), 'hello world');
  assert.ok(!names.includes('x-sum'), 'trailer fields are not promoted to headers');
  assert.equal(up.requests.at(-1)!.url, '/second');
});

// Rules that llhttp usually pre-empts with its own 400, checked on the validator itself so they hold
// whatever the parser lets through.
const DIRECT: { rule: string; version?: string; headers: string[]; status: number | undefined }[] = [
  { rule: 'chunked', headers: ['Transfer-Encoding', 'chunked'], status: undefined },
  { rule: 'chunked twice', headers: ['Transfer-Encoding', 'chunked, chunked'], status: 400 },
  { rule: 'chunked twice over two fields', headers: ['Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked'], status: 400 },
  { rule: 'chunked not last', headers: ['Transfer-Encoding', 'chunked, gzip'], status: 400 },
  { rule: 'chunked with parameters', headers: ['Transfer-Encoding', 'chunked;x=1'], status: 400 },
  { rule: 'leading comma', headers: ['Transfer-Encoding', ', chunked'], status: 400 },
  { rule: 'unknown coding', headers: ['Transfer-Encoding', 'identity'], status: 501 },
  { rule: 'duplicate Content-Length', headers: ['Content-Length', '5', 'Content-Length', '5'], status: 400 },
  { rule: 'HTTP/3.0', version: '3.0', headers: [], status: 505 },
];

for (const c of DIRECT) {
  test(`validateRequest: ${c.rule} -> ${c.status ?? 'valid'}`, () => {
    const [major, minor] = (c.version ?? '1.1').split('.').map(Number);
    const req = { httpVersion: c.version ?? '1.1', httpVersionMajor: major, httpVersionMinor: minor, method: 'POST', url: '/', rawHeaders: ['Host', 'a', ...c.headers] };
    assert.equal(validateRequest(req as unknown as IncomingMessage)?.status, c.status);
  });
}
