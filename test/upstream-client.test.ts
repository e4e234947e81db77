import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { startGateway, startUpstream, send, rawRequest, oneRoute, type TestGateway } from './helpers/harness.js';

// The proxy's own HTTP/1.1 client (src/proxy/http1-client.ts) against upstreams that answer with
// exact bytes: framing, interim responses, HEAD/204/304, smuggling attempts and connection reuse.

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** A raw TCP upstream: `answer(requestText, socket, index)` is called for every request head it reads. */
async function rawUpstream(answer: (head: string, socket: net.Socket, n: number) => void): Promise<{ url: string; connections: () => number; heads: string[] }> {
  let connections = 0;
  const heads: string[] = [];
  const server = net.createServer((socket) => {
    connections++;
    let buffered = '';
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const cl = /\r\ncontent-length: (\d+)/i.exec(head);
        if (cl) buffered = buffered.slice(Number(cl[1]));
        heads.push(head);
        answer(head, socket, heads.length);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, connections: () => connections, heads };
}

async function gatewayFor(url: string, service: Record<string, unknown> = {}): Promise<TestGateway> {
  const gw = await startGateway(oneRoute(url, { paths: ['/'] }, { retries: 0, ...service }));
  cleanup.push(gw.close);
  return gw;
}

test('keep-alive: many requests share one upstream connection', async () => {
  const up = await rawUpstream((_h, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  const gw = await gatewayFor(up.url);
  for (let i = 0; i < 20; i++) assert.equal((await send(`${gw.url}/${i}`)).body, 'ok');
  assert.equal(up.connections(), 1);
});

test('chunked and close-delimited responses are relayed whole', async () => {
  const chunked = await rawUpstream((_h, s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'));
  const gw1 = await gatewayFor(chunked.url);
  assert.equal((await send(`${gw1.url}/`)).body, 'hello world');
  const closing = await rawUpstream((_h, s) => s.end('HTTP/1.1 200 OK\r\n\r\nuntil the end'));
  const gw2 = await gatewayFor(closing.url);
  assert.equal((await send(`${gw2.url}/`)).body, 'until the end');
  assert.equal((await send(`${gw2.url}/`)).body, 'until the end', 'a closed connection is not reused');
  assert.equal(closing.connections(), 2);
});

test('interim 1xx responses are not forwarded; the final response is', async () => {
  const up = await rawUpstream((_h, s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone'));
  const gw = await gatewayFor(up.url);
  const res = await rawRequest(gw.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(res, /^HTTP\/1\.1 201 Created/);
  assert.doesNotMatch(res, /103|100 Continue/);
  assert.match(res, /done$/);
});

test('HEAD, 204 and 304 responses carry no body and keep the connection in sync', async () => {
  const up = await rawUpstream((head, s) => {
    if (head.startsWith('HEAD')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
    else if (head.includes('/nc')) s.write('HTTP/1.1 204 No Content\r\n\r\n');
    else if (head.includes('/nm')) s.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: "x"\r\n\r\n');
    else s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody');
  });
  const gw = await gatewayFor(up.url);
  const head = await send(`${gw.url}/`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], '1000');
  assert.equal(head.body, '');
  assert.equal((await send(`${gw.url}/nc`)).status, 204);
  const nm = await send(`${gw.url}/nm`);
  assert.equal(nm.status, 304);
  assert.equal(nm.body, '');
  assert.equal((await send(`${gw.url}/after`)).body, 'body', 'the next response on the same connection is intact');
  assert.equal(up.connections(), 1);
});

test('response smuggling: Content-Length with Transfer-Encoding, bad chunks, extra bytes', async () => {
  const both = await rawUpstream((_h, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'));
  assert.equal((await send(`${(await gatewayFor(both.url)).url}/`)).status, 502);
  const badChunk = await rawUpstream((_h, s) => s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n'));
  await assert.rejects(send(`${(await gatewayFor(badChunk.url)).url}/`));
  // An upstream that sends a second, unrequested response: it is never delivered to anyone.
  const extra = await rawUpstream((_h, s, n) => s.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nr${n}HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled`));
  const gw = await gatewayFor(extra.url);
  assert.equal((await send(`${gw.url}/`)).body, 'r1');
  assert.equal((await send(`${gw.url}/`)).body, 'r2');
  assert.equal(extra.connections(), 2, 'the connection with extra bytes was dropped');
});

test('a kept-alive connection the upstream closed is retried for GET on a fresh one', async () => {
  const up = await rawUpstream((_h, s, n) => {
    s.write(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nr${n}`);
    // Close idle connections right after answering, the way a short upstream keep-alive timeout does.
    if (n === 1) setTimeout(() => s.destroy(), 20);
  });
  const gw = await startGateway(oneRoute(up.url, { paths: ['/'] }, { retries: 1 }));
  cleanup.push(gw.close);
  assert.equal((await send(`${gw.url}/`)).body, 'r1');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await send(`${gw.url}/`)).body, 'r2');
});

test('request bodies: Content-Length passes as is, chunked uploads are re-framed, empty POST gets Content-Length: 0', async () => {
  const up = await startUpstream();
  cleanup.push(up.close);
  const gw = await gatewayFor(up.url);
  const fixed = (await send(`${gw.url}/`, { method: 'PUT', body: 'exact' })).json();
  assert.equal(fixed.headers['content-length'], '5');
  assert.equal(fixed.body, 'exact');
  const streamed = await new Promise<any>((resolve, reject) => {
    const req = http.request(`${gw.url}/`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.write('part1-');
    setTimeout(() => req.end('part2'), 30);
  });
  assert.equal(streamed.headers['transfer-encoding'], 'chunked');
  assert.equal(streamed.body, 'part1-part2');
  const empty = (await send(`${gw.url}/`, { method: 'POST' })).json();
  assert.equal(empty.headers['content-length'], '0');
});

test('an upstream answering before the upload ends: the answer is relayed, the connection is not reused', async () => {
  const up = await rawUpstream((_h, s) => s.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig'));
  const gw = await gatewayFor(up.url);
  const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(`${gw.url}/`, { method: 'POST', agent: false, headers: { 'content-length': '1000000' } }, (r) => {
      let text = '';
      r.on('data', (c) => (text += c));
      r.on('end', () => resolve({ status: r.statusCode!, body: text }));
    });
    req.on('error', reject);
    req.write(Buffer.alloc(1000, 'a'));
  });
  assert.equal(res.status, 413);
  assert.equal(res.body, 'big');
  assert.equal((await send(`${gw.url}/`)).status, 413);
  assert.equal(up.connections(), 2);
});

test('write_timeout: an upload that stalls is cut off', async () => {
  const up = await rawUpstream(() => undefined);
  const gw = await gatewayFor(up.url, { write_timeout: 300, read_timeout: 60000 });
  const started = Date.now();
  const status = await new Promise<number | string>((resolve) => {
    const req = http.request(`${gw.url}/`, { method: 'POST', agent: false, headers: { 'content-length': '100' } }, (r) => {
      r.resume();
      resolve(r.statusCode!);
    });
    req.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? 'error'));
    req.write('only part of it');
  });
  assert.equal(status, 504);
  assert.ok(Date.now() - started < 5000);
});

test("the upstream's Keep-Alive timeout is honoured: a 1 s hint means no reuse, a longer one allows it", async () => {
  const short = await rawUpstream((_h, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=1\r\n\r\nok'));
  const gw1 = await gatewayFor(short.url);
  for (let i = 0; i < 3; i++) assert.equal((await send(`${gw1.url}/`)).body, 'ok');
  assert.equal(short.connections(), 3);
  const long = await rawUpstream((_h, s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5, max=100\r\n\r\nok'));
  const gw2 = await gatewayFor(long.url);
  for (let i = 0; i < 3; i++) assert.equal((await send(`${gw2.url}/`)).body, 'ok');
  assert.equal(long.connections(), 1);
});
