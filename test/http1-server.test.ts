// The plain listener's own HTTP/1.1 server (src/listeners/http1-server.ts): the connection rules
// node:http used to apply for us, checked on the server alone (real sockets, small handlers) and
// through the gateway where the upstream's framing matters.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Http1Server, type Http1Request, type Http1Response, type Http1ServerOptions } from '../src/listeners/http1-server.js';
import { managedServers, oneRoute } from './helpers/harness.js';

const { upstream, gateway } = managedServers();
const servers: Http1Server[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(() => r(undefined)));
  }
});

type Handler = (req: Http1Request, res: Http1Response, expectsContinue: boolean) => void;

async function serve(handler: Handler, options: Partial<Http1ServerOptions> = {}): Promise<{ server: Http1Server; port: number; clientErrors: string[] }> {
  const clientErrors: string[] = [];
  const server = new Http1Server(
    { maxHeaderSize: 16384, keepAliveTimeout: 60_000, headersTimeout: 60_000, ...options },
    {
      request: handler,
      clientError: (err, socket) => {
        clientErrors.push(err.code ?? err.message);
        socket.end(`HTTP/1.1 ${err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request'}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      },
    },
  );
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as net.AddressInfo).port, clientErrors };
}

/** Writes `parts` (a pause between them), optionally half-closes, and collects everything until the server closes or `waitMs`. */
function exchange(port: number, parts: string[], { halfClose = false, waitMs = 2000, gapMs = 20 } = {}): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedByServer: false });
    }, waitMs);
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', reject);
    socket.on('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closedByServer: true });
    });
    socket.on('connect', async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
        socket.write(part);
      }
      if (halfClose) socket.end();
    });
  });
}

function responses(text: string): { status: number; head: string; body: string }[] {
  const out: { status: number; head: string; body: string }[] = [];
  let rest = text;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    const head = rest.slice(0, end);
    const length = /\r\ncontent-length: (\d+)/i.exec(head);
    // No length: a bodiless answer when the next response follows at once, else the rest (close-delimited).
    const bodyLength = length ? Number(length[1]) : rest.startsWith('HTTP/1.1 ', end + 4) ? 0 : rest.length - end - 4;
    out.push({ status: Number(head.slice(9, 12)), head, body: rest.slice(end + 4, end + 4 + bodyLength) });
    rest = rest.slice(end + 4 + bodyLength);
  }
  return out;
}

const hello: Handler = (req, res) => {
  const body = `hello ${req.url}`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) });
  res.end(body);
};

test('keep-alive: HTTP/1.1 stays open and says so; HTTP/1.0 closes unless it asks to stay', async () => {
  const { port } = await serve(hello);
  const kept = await exchange(port, ['GET /a HTTP/1.1\r\nHost: x\r\n\r\n'], { waitMs: 300 });
  assert.equal(kept.closedByServer, false);
  assert.match(kept.text, /\r\nConnection: keep-alive\r\nKeep-Alive: timeout=60\r\n/);
  assert.match(kept.text, /\r\nDate: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} /);

  const old = await exchange(port, ['GET /b HTTP/1.0\r\n\r\n']);
  assert.equal(old.closedByServer, true);
  assert.match(old.text, /\r\nConnection: close\r\n/);
  assert.equal(responses(old.text)[0]!.body, 'hello /b');

  const oldKept = await exchange(port, ['GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], { waitMs: 300 });
  assert.equal(oldKept.closedByServer, false);
  assert.match(oldKept.text, /\r\nConnection: keep-alive\r\n/);

  const closing = await exchange(port, ['GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  assert.equal(closing.closedByServer, true);
  assert.match(closing.text, /\r\nConnection: close\r\n/);
});

test('framing: unknown length is chunked for HTTP/1.1 and close-delimited for HTTP/1.0; HEAD, 204 and 304 carry no body', async () => {
  const { port } = await serve((req, res) => {
    const status = Number(req.url!.slice(1)) || 200;
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.write('part one, ');
    res.end('part two');
  });
  const chunked = await exchange(port, ['GET /200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  assert.match(chunked.text, /\r\nTransfer-Encoding: chunked\r\n/);
  assert.ok(chunked.text.endsWith('\r\n\r\na\r\npart one, \r\n8\r\npart two\r\n0\r\n\r\n'), JSON.stringify(chunked.text));

  const old = await exchange(port, ['GET /200 HTTP/1.0\r\n\r\n']);
  assert.doesNotMatch(old.text, /Transfer-Encoding/i);
  assert.ok(old.text.endsWith('\r\n\r\npart one, part two'));
  assert.equal(old.closedByServer, true);

  for (const [request, status] of [
    ['HEAD /200 HTTP/1.1', 200],
    ['GET /204 HTTP/1.1', 204],
    ['GET /304 HTTP/1.1', 304],
  ] as const) {
    const r = await exchange(port, [`${request}\r\nHost: x\r\n\r\nGET /200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
    const [first, second] = responses(r.text);
    assert.equal(first!.status, status, request);
    assert.doesNotMatch(first!.head, /Transfer-Encoding/i, request);
    assert.equal(first!.body, '', request);
    // The next response starts right after the head: nothing of the ignored body leaked in between.
    assert.equal(second?.status, 200, `${request}: ${JSON.stringify(r.text)}`);
  }
});

test('end(body) without a head sets Content-Length; a header value with CR LF is refused, not written', async () => {
  const { port } = await serve((req, res) => {
    if (req.url === '/inject') {
      assert.throws(() => res.writeHead(200, { 'x-evil': 'a\r\nSet-Cookie: owned=1' }), { code: 'ERR_INVALID_CHAR' });
      assert.throws(() => res.writeHead(200, { 'bad name': 'v' }), { code: 'ERR_INVALID_HTTP_TOKEN' });
      res.writeHead(500, { 'content-length': '0' });
      res.end();
      return;
    }
    res.end('implied');
  });
  const r = await exchange(port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /inject HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  const [first, second] = responses(r.text);
  assert.match(first!.head, /\r\nContent-Length: 7/);
  assert.equal(first!.body, 'implied');
  assert.equal(second!.status, 500);
  assert.doesNotMatch(r.text, /owned/);
});

test('pipelining: requests in one packet are answered in order, each after the one before it', async () => {
  const started: string[] = [];
  const { port } = await serve((req, res) => {
    started.push(req.url!);
    // The first answers last if they ran at once; they must not.
    const delay = req.url === '/1' ? 60 : req.url === '/2' ? 30 : 0;
    setTimeout(() => hello(req, res, false), delay);
  });
  const r = await exchange(port, ['GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  assert.deepEqual(
    responses(r.text).map((x) => x.body),
    ['hello /1', 'hello /2', 'hello /3'],
  );
  assert.deepEqual(started, ['/1', '/2', '/3']);
  assert.equal(r.closedByServer, true);
});

test('a request followed by an Upgrade request and a third in one packet: all three answered (no upgrade is done)', async () => {
  const { port } = await serve(hello);
  const r = await exchange(port, [
    'GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  ]);
  assert.deepEqual(
    responses(r.text).map((x) => x.body),
    ['hello /1', 'hello /ws', 'hello /3'],
  );
});

test('a client that half-closes after its request still gets the answer, then the connection closes', async () => {
  const { port } = await serve((req, res) => setTimeout(() => hello(req, res, false), 50));
  const r = await exchange(port, ['GET /late HTTP/1.1\r\nHost: x\r\n\r\n'], { halfClose: true });
  assert.equal(responses(r.text)[0]?.body, 'hello /late');
  assert.equal(r.closedByServer, true);
});

test('request bodies: streamed to the handler; one answered unread is discarded and the connection stays usable; past 1 MiB it closes', async () => {
  const { port } = await serve((req, res) => {
    if (req.url === '/read') {
      let size = 0;
      req.on('data', (c: Buffer) => (size += c.length));
      req.on('end', () => {
        const body = `read ${size}`;
        res.writeHead(200, { 'content-length': String(body.length) });
        res.end(body);
      });
      return;
    }
    // Answered without reading (as an auth failure would be).
    res.writeHead(401, { 'content-length': '0' });
    res.end();
  });
  const body = 'x'.repeat(100_000);
  const r = await exchange(port, [
    `POST /read HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`,
    body,
    `POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    'GET /read HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
  ]);
  assert.deepEqual(
    responses(r.text).map((x) => `${x.status} ${x.body}`),
    ['200 read 100000', '401 ', '200 read 0'],
  );

  const huge = 'y'.repeat(64 * 1024);
  const parts = [`POST /unread HTTP/1.1\r\nHost: x\r\nContent-Length: ${40 * huge.length}\r\n\r\n`];
  for (let i = 0; i < 40; i++) parts.push(huge);
  const cut = await exchange(port, parts, { gapMs: 2, waitMs: 3000 });
  assert.equal(responses(cut.text)[0]?.status, 401);
  assert.equal(cut.closedByServer, true, 'closed after more than 1 MiB of unread body');
});

test('Expect: 100-continue is left to the handler; another expectation gets 417', async () => {
  const { port } = await serve((req, res, expectsContinue) => {
    assert.equal(expectsContinue, true);
    res.writeContinue();
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      res.writeHead(200, { 'content-length': String(body.length) });
      res.end(body);
    });
  });
  const invited = await exchange(port, ['POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', 'ok']);
  assert.match(invited.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  const refused = await exchange(port, ['GET / HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\n\r\n'], { waitMs: 300 });
  assert.match(refused.text, /^HTTP\/1\.1 417 Expectation Failed\r\n/);
});

test('timeouts: a head slower than headersTimeout gets 408; an idle keep-alive connection is closed quietly', async () => {
  const { port, clientErrors } = await serve(hello, { headersTimeout: 300, keepAliveTimeout: 400 });
  // Trickled: every byte restarts the socket's idle timer, the head's own clock runs on.
  const slow = await exchange(port, ['GET / HTTP/1.1\r\n', 'Host: x\r\n', 'X-A: 1\r\n', 'X-B: 2\r\n', 'X-C: 3\r\n'], { gapMs: 100, waitMs: 3000 });
  assert.match(slow.text, /^HTTP\/1\.1 408 /);
  assert.ok(clientErrors.includes('ERR_HTTP_REQUEST_TIMEOUT'));
  const idle = await exchange(port, ['GET / HTTP/1.1\r\nHost: x\r\n\r\n'], { waitMs: 3000 });
  assert.equal(responses(idle.text).length, 1);
  assert.equal(idle.closedByServer, true);
  assert.equal(clientErrors.length, 1, 'the idle close is not an error answer');
});

test('parse errors reach clientError with the raw packet, after any response already on the wire', async () => {
  const { port, clientErrors } = await serve(hello);
  const r = await exchange(port, ['GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET /bad HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n']);
  const [first, second] = responses(r.text);
  assert.equal(first!.body, 'hello /ok');
  assert.equal(second!.status, 400);
  assert.deepEqual(clientErrors, ['HPE_INVALID_HEADER_TOKEN']);
  assert.equal(r.closedByServer, true);
});

test('close(): idle connections go now, a busy one finishes its response with Connection: close', async () => {
  let release: (() => void) | undefined;
  const { server, port } = await serve((req, res) => {
    release = () => hello(req, res, false);
  });
  const idle = exchange(port, [], { waitMs: 2000 });
  const busy = exchange(port, ['GET /busy HTTP/1.1\r\nHost: x\r\n\r\n'], { waitMs: 2000 });
  await new Promise((r) => setTimeout(r, 100));
  const closed = new Promise((r) => server.close(() => r(undefined)));
  server.closeIdleConnections();
  assert.equal((await idle).closedByServer, true);
  release!();
  const b = await busy;
  assert.equal(responses(b.text)[0]!.body, 'hello /busy');
  assert.match(b.text, /\r\nConnection: close\r\n/);
  assert.equal(b.closedByServer, true);
  await closed;
  servers.splice(servers.indexOf(server), 1);
});

test('through the gateway: an upstream response without Content-Length is chunked to HTTP/1.1 clients and close-delimited to HTTP/1.0 ones', async () => {
  const up = await upstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('streamed ');
    setTimeout(() => res.end('answer'), 20);
  });
  const gw = await gateway(oneRoute(up.url, { paths: ['/'] }));
  const modern = await exchange(gw.port, ['GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
  assert.match(modern.text, /\r\nTransfer-Encoding: chunked\r\n/);
  assert.ok(modern.text.endsWith('9\r\nstreamed \r\n6\r\nanswer\r\n0\r\n\r\n'), JSON.stringify(modern.text));
  const old = await exchange(gw.port, ['GET /s HTTP/1.0\r\nHost: x\r\n\r\n']);
  assert.doesNotMatch(old.text, /Transfer-Encoding/i);
  assert.ok(old.text.endsWith('\r\n\r\nstreamed answer'), JSON.stringify(old.text));
  assert.equal(old.closedByServer, true);
});

test('a request after an answer that closed the connection is not served, even when it arrived in the same packet', async () => {
  const seen: string[] = [];
  const { port } = await serve((req, res) => {
    seen.push(req.url!);
    // The server decides to close (as the listener does for a refused request); the client did not ask.
    res.shouldKeepAlive = false;
    hello(req, res, false);
  });
  const r = await exchange(port, ['GET /last HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n']);
  assert.deepEqual(
    responses(r.text).map((x) => x.body),
    ['hello /last'],
  );
  assert.deepEqual(seen, ['/last']);
  assert.equal(r.closedByServer, true);
});
