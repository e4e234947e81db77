// One list of behaviour cases, run over HTTPS with HTTP/1.1 and again over HTTP/2 against the same
// config: each run asserts the same results, and the last test checks that both runs observed
// exactly the same things.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startGateway, startUpstream, type TestGateway, type Upstream } from './helpers/harness.js';
import { testCa } from './helpers/certs.js';
import { http2Client, https1Client, type TlsClient } from './helpers/tls-clients.js';

const authority = testCa();
const leaf = authority.leaf('api.test', ['api.test', '*.api.test']);

const LARGE_CHUNK = 64 * 1024;
const LARGE_CHUNKS = 128; // 8 MiB
const largeChunk = (i: number) => Buffer.alloc(LARGE_CHUNK, i % 251);
const LARGE_SHA256 = (() => {
  const h = createHash('sha256');
  for (let i = 0; i < LARGE_CHUNKS; i++) h.update(largeChunk(i));
  return h.digest('hex');
})();

/** Upload digests, an 8 MiB streamed download and a 204. */
function special(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/upload') {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (c: Buffer) => {
      hash.update(c);
      length += c.length;
    });
    req.on('end', () => {
      const framing = req.headers['transfer-encoding'] ?? `content-length ${req.headers['content-length']}`;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ length, sha256: hash.digest('hex'), framing }));
    });
    return;
  }
  req.resume();
  if (req.url === '/nocontent') {
    res.writeHead(204);
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  let i = 0;
  const pump = () => {
    while (i < LARGE_CHUNKS) if (!res.write(largeChunk(i++))) return void res.once('drain', pump);
    res.end();
  };
  pump();
}

let echo: Upstream;
let specialUp: Upstream;
let downUrl: string;

before(async () => {
  echo = await startUpstream();
  specialUp = await startUpstream(special, { streaming: true });
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  downUrl = `http://127.0.0.1:${(closed.address() as { port: number }).port}`;
  await new Promise((r) => closed.close(r));
});
after(async () => {
  await echo.close();
  await specialUp.close();
});

function config(): object {
  return {
    _format_version: '3.0',
    _gatehouse: { access_log: false },
    certificates: [{ ...leaf, snis: ['api.test', '*.api.test'] }],
    consumers: [{ username: 'alice', keyauth_credentials: [{ key: 'alice-key' }] }],
    services: [
      {
        name: 'echo',
        url: echo.url,
        routes: [
          { name: 'hosted', hosts: ['api.test'], paths: ['/hosted'], methods: ['GET', 'HEAD'], strip_path: false },
          { name: 'post-only', paths: ['/items'], methods: ['POST'], strip_path: false },
          { name: 'auth', paths: ['/auth'], plugins: [{ name: 'key-auth' }] },
          { name: 'limited', paths: ['/limited'], plugins: [{ name: 'rate-limiting', config: { minute: 2, policy: 'local' } }] },
          { name: 'transform', paths: ['/transform'], plugins: [{ name: 'request-transformer', config: { add: { headers: ['x-added:yes'] } } }] },
          { name: 'cors', paths: ['/cors'], plugins: [{ name: 'cors', config: { origins: ['https://app.test'], methods: ['GET', 'POST'] } }] },
        ],
      },
      {
        name: 'based',
        url: `${echo.url}/base`,
        routes: [
          { name: 'other-host', hosts: ['other.api.test'], paths: ['/hosted'], strip_path: false },
          { name: 'strip', paths: ['/strip'], strip_path: true },
          { name: 'keep', paths: ['/keep'], strip_path: false },
        ],
      },
      { name: 'special', url: specialUp.url, routes: [{ name: 'special', paths: ['/upload', '/large', '/nocontent'], strip_path: false }] },
      { name: 'down', url: downUrl, routes: [{ name: 'down', paths: ['/down'] }] },
    ],
  };
}

/** What the echo upstream saw. */
interface Echoed {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}
const echoed = (body: Buffer): Echoed => JSON.parse(body.toString('utf8'));

interface Case {
  name: string;
  /** Sends, asserts, and returns what it observed (stable values only: no ids, no latencies). */
  run(c: TlsClient): Promise<unknown>;
}

const CASES: Case[] = [
  {
    name: 'routing by host, path and method',
    async run(c) {
      const hosted = await c.request({ path: '/hosted/x' });
      assert.equal(hosted.status, 200);
      assert.equal(echoed(hosted.body).url, '/hosted/x');
      const other = await c.request({ path: '/hosted/x', host: 'other.api.test' });
      assert.equal(other.status, 200);
      assert.equal(echoed(other.body).url, '/base/hosted/x');
      const unknownHost = await c.request({ path: '/hosted/x', host: 'unknown.test' });
      assert.equal(unknownHost.status, 404);
      const wrongMethod = await c.request({ method: 'DELETE', path: '/hosted/x' });
      assert.equal(wrongMethod.status, 404);
      const getItems = await c.request({ path: '/items' });
      assert.equal(getItems.status, 404);
      const postItems = await c.request({ method: 'POST', path: '/items', body: Buffer.from('{"a":1}'), headers: { 'content-type': 'application/json' } });
      assert.equal(postItems.status, 200);
      const seen = echoed(postItems.body);
      assert.equal(seen.method, 'POST');
      assert.equal(seen.body, '{"a":1}');
      assert.equal(seen.headers['content-length'], '7');
      return [hosted.status, echoed(hosted.body).url, echoed(other.body).url, unknownHost.status, wrongMethod.status, getItems.status, postItems.status, seen.method, seen.body];
    },
  },
  {
    name: 'strip_path and the service path rewrite the upstream path; the query is kept',
    async run(c) {
      const strip = echoed((await c.request({ path: '/strip/a/b?q=1' })).body);
      const keep = echoed((await c.request({ path: '/keep/x' })).body);
      assert.equal(strip.url, '/base/a/b?q=1');
      assert.equal(keep.url, '/base/keep/x');
      return [strip.url, keep.url];
    },
  },
  {
    name: 'no route: 404 JSON',
    async run(c) {
      const r = await c.request({ path: '/nothing/here' });
      assert.equal(r.status, 404);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      const body = JSON.parse(r.body.toString());
      assert.equal(body.message, 'no Route matched with those values');
      assert.equal(body.request_id, r.headers['x-gatehouse-request-id']);
      return [r.status, body.message];
    },
  },
  {
    name: 'key-auth: 401 without a key, consumer headers upstream with one',
    async run(c) {
      const denied = await c.request({ path: '/auth' });
      assert.equal(denied.status, 401);
      const message = JSON.parse(denied.body.toString()).message;
      assert.equal(message, 'No API key found in request');
      const ok = await c.request({ path: '/auth', headers: { apikey: 'alice-key' } });
      assert.equal(ok.status, 200);
      const seen = echoed(ok.body);
      assert.equal(seen.headers['x-consumer-username'], 'alice');
      assert.equal(seen.headers.apikey, 'alice-key');
      return [denied.status, message, ok.status, seen.headers['x-consumer-username']];
    },
  },
  {
    name: 'rate-limiting: headers on each answer, 429 past the limit',
    async run(c) {
      const first = await c.request({ path: '/limited' });
      const second = await c.request({ path: '/limited' });
      const third = await c.request({ path: '/limited' });
      assert.deepEqual([first.status, second.status, third.status], [200, 200, 429]);
      assert.equal(first.headers['x-ratelimit-limit-minute'], '2');
      assert.deepEqual([first, second, third].map((r) => r.headers['x-ratelimit-remaining-minute']), ['1', '0', '0']);
      assert.ok(Number(third.headers['retry-after']) > 0);
      return [first.status, second.status, third.status, first.headers['x-ratelimit-limit-minute'], first.headers['ratelimit-limit'], third.headers['ratelimit-remaining']];
    },
  },
  {
    name: 'request-transformer adds a header upstream',
    async run(c) {
      const seen = echoed((await c.request({ path: '/transform' })).body);
      assert.equal(seen.headers['x-added'], 'yes');
      return seen.headers['x-added'];
    },
  },
  {
    name: 'cors answers a preflight itself',
    async run(c) {
      const before = echo.requests.length;
      const r = await c.request({ method: 'OPTIONS', path: '/cors', headers: { origin: 'https://app.test', 'access-control-request-method': 'POST' } });
      assert.equal(r.status, 200);
      assert.equal(r.headers['access-control-allow-origin'], 'https://app.test');
      assert.equal(r.headers['access-control-allow-methods'], 'GET,POST');
      assert.equal(echo.requests.length, before, 'the preflight did not reach the upstream');
      return [r.status, r.headers['access-control-allow-origin'], r.headers['access-control-allow-methods']];
    },
  },
  {
    name: 'a streamed request body reaches the upstream intact (chunked), a sized one with its Content-Length',
    async run(c) {
      const parts = Array.from({ length: 64 }, () => randomBytes(16 * 1024));
      const expected = createHash('sha256').update(Buffer.concat(parts)).digest('hex');
      const streamed = await c.request({ method: 'POST', path: '/upload', body: Readable.from(parts) });
      assert.equal(streamed.status, 200);
      assert.deepEqual(JSON.parse(streamed.body.toString()), { length: 1024 * 1024, sha256: expected, framing: 'chunked' });
      const sizedBody = randomBytes(100_000);
      const sized = await c.request({ method: 'POST', path: '/upload', body: sizedBody });
      const sizedSeen = JSON.parse(sized.body.toString());
      assert.deepEqual(sizedSeen, { length: 100_000, sha256: createHash('sha256').update(sizedBody).digest('hex'), framing: 'content-length 100000' });
      return [streamed.status, 'chunked', sized.status, sizedSeen.framing];
    },
  },
  {
    name: 'a large response streams back intact',
    async run(c) {
      const r = await c.request({ path: '/large' });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, LARGE_CHUNK * LARGE_CHUNKS);
      assert.equal(createHash('sha256').update(r.body).digest('hex'), LARGE_SHA256);
      return [r.status, r.body.length];
    },
  },
  {
    name: 'HEAD: the headers of a GET, no body',
    async run(c) {
      const r = await c.request({ method: 'HEAD', path: '/hosted/head' });
      assert.equal(r.status, 200);
      assert.equal(r.body.length, 0);
      assert.ok(Number(r.headers['content-length']) > 0);
      return [r.status, r.headers['content-length'], r.body.length];
    },
  },
  {
    name: '204 from the upstream: no body, no Content-Length',
    async run(c) {
      const r = await c.request({ path: '/nocontent' });
      assert.equal(r.status, 204);
      assert.equal(r.body.length, 0);
      assert.equal(r.headers['content-length'], undefined);
      return [r.status, r.body.length];
    },
  },
  {
    name: 'upstream down: 502 JSON',
    async run(c) {
      const r = await c.request({ path: '/down' });
      assert.equal(r.status, 502);
      const body = JSON.parse(r.body.toString());
      assert.equal(body.message, 'An invalid response was received from the upstream server');
      return [r.status, body.message];
    },
  },
  {
    name: 'upstream request: X-Forwarded-Proto https, the service Host, no pseudo-headers',
    async run(c) {
      const before = echo.requests.length;
      const seen = echoed((await c.request({ path: '/hosted/fwd', headers: { 'x-custom': 'kept' } })).body);
      assert.equal(seen.headers['x-forwarded-proto'], 'https');
      assert.equal(seen.headers['x-forwarded-host'], 'api.test');
      assert.equal(seen.headers.host, `127.0.0.1:${echo.port}`);
      assert.equal(seen.headers['x-custom'], 'kept');
      const raw = echo.requests[before]!.rawHeaders;
      assert.deepEqual(raw.filter((_, i) => i % 2 === 0 && raw[i]!.startsWith(':')), []);
      return [seen.headers['x-forwarded-proto'], seen.headers['x-forwarded-host'], seen.headers.host, seen.headers['x-custom']];
    },
  },
];

const observed: Record<string, unknown[]> = {};

for (const protocol of ['http/1.1', 'h2'] as const) {
  describe(`HTTPS listener over ${protocol}`, () => {
    let gw: TestGateway;
    let client: TlsClient;
    before(async () => {
      gw = await startGateway(config(), { tls: true });
      client = protocol === 'h2' ? http2Client(gw.tlsPort!, authority.ca, 'api.test') : https1Client(gw.tlsPort!, authority.ca, 'api.test');
      observed[protocol] = [];
    });
    after(async () => {
      client.close();
      await gw.close();
    });
    test('the connection negotiated the protocol under test', async () => {
      assert.equal((await client.request({ path: '/hosted/alpn' })).alpn, protocol);
    });
    for (const c of CASES) {
      test(c.name, async () => {
        observed[protocol]!.push([c.name, await c.run(client)]);
      });
    }
  });
}

test('both protocols observed the same results', () => {
  assert.equal(observed['h2']?.length, CASES.length);
  assert.deepEqual(observed['h2'], observed['http/1.1']);
});
