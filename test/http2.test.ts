// HTTP/2 on the TLS listener: what is specific to it (pseudo-headers, :authority, connection
// headers, stream errors, flow control, GOAWAY). Behaviour shared with HTTP/1.1 is in tls-parity.test.ts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import tls from 'node:tls';
import { managedServers, startGateway, type TestGateway, type Upstream } from './helpers/harness.js';
import { testCa } from './helpers/certs.js';
import { VERSION } from '../src/lib/version.js';

const authority = testCa();
const leaf = authority.leaf('api.test', ['api.test', '*.api.test']);
const renewed = authority.leaf('api.test (renewed)', ['api.test', '*.api.test']);
const servers = managedServers();

const sessions: ClientHttp2Session[] = [];
after(() => {
  for (const s of sessions) s.destroy();
});

function connect(gw: TestGateway, servername = 'api.test'): ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${gw.tlsPort}`, { ca: authority.ca, servername });
  session.on('error', () => {});
  sessions.push(session);
  return session;
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json(): any;
}

/** One request on a session; rejects with the stream's error (e.g. a reset). */
function request(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/', ...headers }, { endStream: body === undefined });
    stream.on('error', reject);
    let head: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      resolve({ status: Number(head[':status']), headers: head, body: text, json: () => JSON.parse(text) });
    });
    stream.on('close', () => {
      if (stream.rstCode) reject(Object.assign(new Error(`stream reset (${stream.rstCode})`), { rstCode: stream.rstCode }));
    });
    if (body !== undefined) stream.end(body);
  });
}

/** HPACK "literal header field without indexing, new name" (RFC 7541 6.2.2), for short names and values. */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

/** Sends one HEADERS frame (END_STREAM) on stream 1 of a raw HTTP/2 connection; returns the frame types received for stream 1. */
function rawHeadersFrame(port: number, fields: [string, string][]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: authority.ca, servername: 'api.test', ALPNProtocols: ['h2'] }, () => {
      const block = Buffer.concat(fields.map(([n, v]) => literal(n, v)));
      const frame = (type: number, flags: number, stream: number, payload: Buffer) => {
        const head = Buffer.alloc(9);
        head.writeUIntBE(payload.length, 0, 3);
        head[3] = type;
        head[4] = flags;
        head.writeUInt32BE(stream, 5);
        return Buffer.concat([head, payload]);
      };
      socket.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0)), frame(1, 0x5, 1, block)]));
    });
    let buffered = Buffer.alloc(0);
    const types: number[] = [];
    socket.on('data', (c: Buffer) => {
      buffered = Buffer.concat([buffered, c]);
      while (buffered.length >= 9 && buffered.length >= 9 + buffered.readUIntBE(0, 3)) {
        const length = buffered.readUIntBE(0, 3);
        const type = buffered[3]!;
        const flags = buffered[4]!;
        if ((buffered.readUInt32BE(5) & 0x7fffffff) === 1) {
          types.push(type);
          // END_STREAM on the answer, or a reset: the stream is over.
          if (type === 3 || ((type === 0 || type === 1) && flags & 0x1)) {
            socket.destroy();
            resolve(types);
          }
        }
        buffered = buffered.subarray(9 + length);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(types));
  });
}

function config(upstreamUrl: string, extra: Record<string, unknown> = {}, cert = leaf): object {
  return {
    _format_version: '3.0',
    _gatehouse: { access_log: false },
    certificates: [{ ...cert, snis: ['api.test', '*.api.test'] }],
    services: [
      {
        name: 'svc',
        url: upstreamUrl,
        routes: [
          { name: 'api', hosts: ['api.test'], paths: ['/'], strip_path: false },
          { name: 'preserve', hosts: ['preserve.api.test'], paths: ['/'], strip_path: false, preserve_host: true },
          { name: 'tracked', hosts: ['tracked.api.test'], paths: ['/'], plugins: [{ name: 'correlation-id', config: { generator: 'tracker', echo_downstream: true } }] },
          {
            name: 'hop',
            hosts: ['hop.api.test'],
            paths: ['/'],
            plugins: [{ name: 'response-transformer', config: { add: { headers: ['keep-alive:timeout=5', 'upgrade:h2c', 'proxy-connection:keep-alive', 'x-kept:yes'] } } }],
          },
        ],
      },
    ],
    ...extra,
  };
}

let echoUp: Upstream | undefined;
async function echo(): Promise<Upstream> {
  echoUp ??= await servers.upstream();
  return echoUp;
}

test('the Host upstream comes from :authority (else the Host field); pseudo-headers never go upstream; Via says 2.0', async () => {
  const up = await echo();
  const gw = await servers.gateway(config(up.url), { tls: true });
  const s = connect(gw);
  const r = await request(s, { ':path': '/a?b=1', ':authority': 'api.test', 'x-test': '1' });
  assert.equal(r.status, 200);
  const seen = r.json();
  assert.equal(seen.url, '/a?b=1');
  assert.equal(seen.headers.host, `127.0.0.1:${up.port}`);
  assert.equal(seen.headers['x-forwarded-host'], 'api.test');
  assert.equal(seen.headers.via, `2.0 gatehouse/${VERSION}`);
  assert.equal(r.headers.via, `1.1 gatehouse/${VERSION}`, 'the response Via names the upstream hop (HTTP/1.1)');
  const raw = up.requests.at(-1)!.rawHeaders;
  assert.deepEqual(raw.filter((v, i) => i % 2 === 0 && v.startsWith(':')), []);
  assert.equal(raw.filter((v, i) => i % 2 === 0 && v.toLowerCase() === 'host').length, 1);

  // preserve_host forwards the client's authority as Host.
  const kept = (await request(s, { ':authority': 'preserve.api.test' })).json();
  assert.equal(kept.headers.host, 'preserve.api.test');
  // Without :authority the Host field is used; routing sees it.
  const byHost = (await request(s, { host: 'preserve.api.test' })).json();
  assert.equal(byHost.headers.host, 'preserve.api.test');
  // Cookie fields split the HTTP/2 way reach the HTTP/1.1 upstream as one field (RFC 9113 8.2.3).
  const cookies = await request(s, { cookie: ['a=1', 'b=2'] });
  assert.equal(cookies.json().headers.cookie, 'a=1; b=2');
  assert.deepEqual(up.requests.at(-1)!.rawHeaders.filter((v, i) => i % 2 === 0 && v === 'cookie').length, 1);
});

test('request validation over HTTP/2: the same rules where they apply, Host and :authority must agree', async () => {
  const up = await echo();
  const gw = await servers.gateway(config(up.url), { tls: true });
  const s = connect(gw);
  const before = up.requests.length;
  const conflict = await request(s, { ':authority': 'api.test', host: 'other.test' });
  assert.equal(conflict.status, 400);
  assert.deepEqual(conflict.json(), { message: 'Bad request' });
  const trace = await request(s, { ':method': 'TRACE' });
  assert.equal(trace.status, 405);
  assert.equal(trace.headers.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
  assert.equal((await request(s, { ':path': '/a%0d%0aX-Injected:%201' })).status, 400);
  assert.equal((await request(s, { ':authority': 'bad_host!' })).status, 404, 'a valid reg-name that no route lists');
  const star = await request(s, { ':method': 'OPTIONS', ':path': '*' });
  assert.equal(star.status, 200);
  assert.equal(star.headers.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
  assert.equal(up.requests.length, before, 'nothing refused reached the upstream');

  // Underscore spellings of protected names are dropped, as over HTTP/1.1.
  const aliased = (await request(s, { x_forwarded_for: '6.6.6.6', x_custom_name: 'kept' })).json();
  assert.equal(aliased.headers.x_forwarded_for, undefined);
  assert.equal(aliased.headers.x_custom_name, 'kept');

  // What nghttp2 refuses never reaches the handler: a stream whose DATA contradicts its
  // Content-Length, a space in :authority, NUL in a value are reset; a field with CR or LF in its
  // value is dropped. The session goes on.
  // The cut-off body fails the upstream call (the gateway closes that upstream connection), and
  // its error answer meets a stream that is already reset: wait for that here, so a throw on
  // that path fails this test rather than the process.
  const cutOff = new Promise<void>((resolve) => {
    const onRequest = (req: IncomingMessage) => {
      if (req.headers['content-length'] !== '10') return;
      up.server.off('request', onRequest);
      req.once('close', () => setTimeout(resolve, 50));
    };
    up.server.on('request', onRequest);
  });
  await assert.rejects(request(s, { ':method': 'POST', 'content-length': '10' }, 'short'), /stream reset|PROTOCOL_ERROR/);
  await cutOff;
  assert.equal((await request(s, { ':method': 'POST', 'content-length': '03' }, 'abc')).status, 400, 'nghttp2 takes 03 for 3: the gateway refuses it');
  await assert.rejects(request(s, { ':authority': 'a b' }), /stream reset|PROTOCOL_ERROR/);
  await assert.rejects(request(s, { 'x-a': 'a\u0000b' }), /stream reset|PROTOCOL_ERROR/);
  const crlf = (await request(s, { 'x-a': 'a\r\nx-injected: 1', 'x-b': 'kept' })).json();
  assert.equal(crlf.headers['x-a'], undefined);
  assert.equal(crlf.headers['x-injected'], undefined);
  assert.equal(crlf.headers['x-b'], 'kept');
  // The short body had started upstream (bodies stream) and was cut off there: never a complete request.
  assert.equal(up.requests.length, before + 3, 'of the requests above only the short body and the two valid ones reached the upstream');
  assert.equal(up.requests[before + 1]!.headers['content-length'], '10');
  assert.equal(up.requests[before + 1]!.body.length, 0, 'the upstream never saw the end of the short body');
  assert.equal((await request(s, {})).status, 200);

  // A repeated singleton (node's client will not send one: raw frames) is refused as over HTTP/1.1.
  const frames = await rawHeadersFrame(gw.tlsPort!, [[':method', 'GET'], [':path', '/'], [':scheme', 'https'], [':authority', 'api.test'], ['authorization', 'Basic a'], ['authorization', 'Basic b']]);
  assert.ok(frames.includes(1), `the stream got a HEADERS answer, not a reset (frame types ${frames})`);
  assert.equal(up.requests.length, before + 4);
  const validations = gw.logs.filter((l) => l.msg === 'request rejected').map((l) => l.reason);
  for (const reason of ['Host differs from :authority', 'TRACE is not supported', 'encoded control character in path', 'more than one authorization header']) {
    assert.ok(validations.includes(reason), `${reason} in ${JSON.stringify(validations)}`);
  }
});

test('CONNECT over HTTP/2 is refused with 405; Expect: 100-continue gets a 100 or the final status at once', async () => {
  const up = await echo();
  const gw = await servers.gateway(config(up.url), { tls: true });
  const s = connect(gw);
  const connectAnswer = await new Promise<number>((resolve, reject) => {
    const stream = s.request({ ':method': 'CONNECT', ':authority': 'api.test:443' });
    stream.on('response', (h) => resolve(Number(h[':status'])));
    stream.on('error', reject);
  });
  assert.equal(connectAnswer, 405);

  const continued = await new Promise<{ sawContinue: boolean; status: number; body: string }>((resolve, reject) => {
    const stream = s.request({ ':method': 'POST', ':path': '/upload', expect: '100-continue', 'content-length': '5' });
    let sawContinue = false;
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on('continue', () => {
      sawContinue = true;
      stream.end('hello');
    });
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ sawContinue, status, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
  });
  assert.equal(continued.sawContinue, true);
  assert.equal(continued.status, 200);
  assert.equal(JSON.parse(continued.body).body, 'hello');

  // Refused by validation: the final status without a 100 (as over HTTP/1.1).
  const refused = await new Promise<{ sawContinue: boolean; status: number }>((resolve, reject) => {
    const stream = s.request({ ':method': 'POST', ':authority': 'api.test', host: 'other.test', expect: '100-continue', 'content-length': '5' });
    let sawContinue = false;
    stream.on('continue', () => (sawContinue = true));
    stream.on('response', (h) => {
      resolve({ sawContinue, status: Number(h[':status']) });
      stream.close();
    });
    stream.on('error', reject);
  });
  assert.deepEqual(refused, { sawContinue: false, status: 400 });
});

test('hop-by-hop fields a plugin adds are left out of HTTP/2 responses instead of failing them', async () => {
  const up = await echo();
  const gw = await servers.gateway(config(up.url), { tls: true });
  const r = await request(connect(gw), { ':authority': 'hop.api.test' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-kept'], 'yes');
  for (const name of ['keep-alive', 'upgrade', 'proxy-connection', 'connection', 'transfer-encoding']) assert.equal(r.headers[name], undefined, name);
  assert.equal(gw.logs.filter((l) => l.msg === 'request failed').length, 0);
});

test('correlation-id tracker counts the requests of one HTTP/2 connection, as nginx\'s $connection_requests', async () => {
  const up = await echo();
  const gw = await servers.gateway(config(up.url), { tls: true });
  const ids = async (s: ClientHttp2Session) => String((await request(s, { ':authority': 'tracked.api.test' })).headers['kong-request-id']).split('-');
  const s = connect(gw);
  const first = await ids(s);
  const second = await ids(s);
  assert.equal(second[3], first[3], 'same connection serial');
  assert.deepEqual([first[4], second[4]], ['1', '2']);
  const other = await ids(connect(gw));
  assert.notEqual(other[3], first[3]);
  assert.equal(other[4], '1');
});

test('stream errors stay in their stream: a cancelled download aborts the upstream call, the session and the gateway go on', async () => {
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((r) => (upstreamClosed = r));
  const up = await servers.upstream(
    (req: IncomingMessage, res: ServerResponse) => {
      if (req.url !== '/endless') {
        res.end('fine');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const timer = setInterval(() => res.write(chunk), 5);
      res.on('close', () => {
        clearInterval(timer);
        upstreamClosed();
      });
    },
    { streaming: true },
  );
  const gw = await servers.gateway(config(up.url), { tls: true });
  const s = connect(gw);
  await new Promise<void>((resolve, reject) => {
    const stream = s.request({ ':path': '/endless' });
    stream.on('data', () => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      resolve();
    });
    stream.on('error', reject);
  });
  await closed;
  assert.equal((await request(s, { ':path': '/after' })).body, 'fine');
  // A client that drops the whole TCP connection mid-stream, without GOAWAY or RST_STREAM.
  const socket = tls.connect({ host: '127.0.0.1', port: gw.tlsPort!, ca: authority.ca, servername: 'api.test', ALPNProtocols: ['h2'] });
  const rude = http2.connect(`https://127.0.0.1:${gw.tlsPort}`, { createConnection: () => socket });
  rude.on('error', () => {});
  await new Promise<void>((resolve) => {
    const stream = rude.request({ ':path': '/endless' });
    stream.on('error', () => {});
    stream.once('data', () => {
      socket.destroy();
      resolve();
    });
  });
  assert.equal((await request(connect(gw), { ':path': '/after' })).body, 'fine');
});

test('flow control: a slow reader or a slow upstream holds the other side back (bounded buffering both ways)', async () => {
  const MiB = 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 2);
  let produced = 0;
  let received = 0;
  let readUpload!: () => void;
  const up = await servers.upstream(
    (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'POST') {
        // Reads nothing until told to.
        req.pause();
        readUpload = () => {
          req.on('data', (c: Buffer) => (received += c.length));
          req.resume();
        };
        req.on('end', () => res.end(String(received)));
        return;
      }
      res.writeHead(200);
      const pump = () => {
        while (produced < 256 * MiB) {
          produced += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    },
    { streaming: true },
  );
  const gw = await servers.gateway(config(up.url), { tls: true });
  const s = connect(gw);

  // Download: the client reads nothing for a while; the upstream cannot run far ahead.
  const download = s.request({ ':path': '/down' });
  download.on('error', () => {});
  download.pause();
  await new Promise((r) => setTimeout(r, 1000));
  assert.ok(produced < 48 * MiB, `the upstream wrote ${produced / MiB} MiB to a client that read nothing`);
  download.close(http2.constants.NGHTTP2_CANCEL);

  // Upload: the upstream reads nothing for a while; the client cannot send far ahead.
  let sent = 0;
  const upload = s.request({ ':method': 'POST', ':path': '/up' }, { endStream: false });
  upload.on('error', () => {});
  const answer = new Promise<string>((resolve) => {
    let body = '';
    upload.on('data', (c: Buffer) => (body += c));
    upload.on('end', () => resolve(body));
  });
  let stop = false;
  const pump = () => {
    while (!stop && sent < 64 * MiB) {
      sent += chunk.length;
      if (!upload.write(chunk)) return void upload.once('drain', pump);
    }
    if (!stop) upload.end();
  };
  pump();
  await new Promise((r) => setTimeout(r, 1000));
  const sentWhileStalled = sent;
  assert.ok(sentWhileStalled < 48 * MiB, `the client sent ${sentWhileStalled / MiB} MiB to an upstream that read nothing`);
  readUpload();
  assert.equal(await answer, String(64 * MiB), 'then the whole body arrives');
  stop = true;
});

test('a reload keeps open HTTP/2 sessions working; their new streams see the new config', async () => {
  const up = await echo();
  const gw = await servers.gateway(config(up.url), { tls: true });
  const s = connect(gw);
  assert.equal((await request(s, { ':path': '/one' })).status, 200);
  const accepted = gw.gateway.connections.accepted;
  const next = config(up.url, { _gatehouse: { access_log: false, ssl_protocols: 'TLSv1.3' } }, renewed) as { services: { routes: { name: string; hosts?: string[] }[] }[] };
  next.services[0]!.routes.push({ name: 'new', hosts: ['new.api.test'] });
  gw.gateway.reload(next);
  const again = await request(s, { ':path': '/two' });
  assert.equal(again.status, 200);
  assert.equal((await request(s, { ':authority': 'new.api.test' })).status, 200, 'a route added by the reload answers on the old session');
  assert.equal(gw.gateway.connections.accepted, accepted, 'no new connection was needed');
  const fresh = connect(gw);
  await request(fresh, {});
  assert.equal(String((fresh.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN), 'api.test (renewed)');
});

test('stopping the gateway sends GOAWAY: a stream in flight finishes, then the session closes', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let arrived!: () => void;
  const inFlight = new Promise<void>((r) => (arrived = r));
  const up = await servers.upstream((_req: IncomingMessage, res: ServerResponse) => {
    arrived();
    void held.then(() => res.end('finished'));
  });
  // Not a managed gateway: this test stops it itself.
  const gw = await startGateway(config(up.url), { tls: true });
  const s = connect(gw);
  const goaway = new Promise<void>((r) => s.once('goaway', () => r()));
  const answer = request(s, { ':path': '/slow' });
  await inFlight;
  const stopped = gw.gateway.stop(5000);
  await goaway;
  release();
  assert.equal((await answer).body, 'finished');
  await stopped;
});
