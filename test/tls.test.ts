import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import tls from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { startGateway, startUpstream, send, type TestGateway, type Upstream } from './helpers/harness.js';
import { testCa, type Pair } from './helpers/certs.js';
import { ConfigError } from '../src/lib/errors.js';

const authority = testCa();
const ca = authority.ca;
const certs: Record<string, Pair> = {
  a: authority.leaf('a.example', ['a.example']),
  b: authority.leaf('b.example', ['b.example']),
  wild: authority.leaf('*.wild.example', ['*.wild.example']),
  expired: authority.leaf('expired.example', ['expired.example'], -1),
  a2: authority.leaf('a.example (renewed)', ['a.example']),
};

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

let up: Upstream;
async function upstream(): Promise<Upstream> {
  if (!up) {
    up = await startUpstream();
    cleanup.push(up.close);
  }
  return up;
}

async function gateway(config: object): Promise<TestGateway> {
  const gw = await startGateway(config, { tls: true });
  cleanup.push(gw.close);
  return gw;
}

const A_ID = '6a6c2c5e-0000-4000-8000-00000000000a';

function config(url: string, certificates: object[], extra: object = {}): object {
  return {
    _format_version: '3.0',
    _gatehouse: { access_log: false },
    certificates,
    services: [
      {
        name: 'svc',
        url,
        routes: [
          { name: 'open', paths: ['/open'] },
          { name: 'secure', paths: ['/secure'], protocols: ['https'] },
          { name: 'only-a', paths: ['/only-a'], protocols: ['https'], snis: ['a.example'] },
        ],
      },
    ],
    ...extra,
  };
}

const standard = () => [
  { id: A_ID, ...certs.a, snis: ['a.example'] },
  { ...certs.b, snis: [{ name: 'b.example' }] },
  { ...certs.wild, snis: ['*.wild.example'] },
  { ...certs.expired, snis: ['expired.example'] },
];

interface Handshake {
  cn: string;
  alpn: string | false | null;
  authorized: boolean;
  error: string | undefined;
  version: string | null;
  cipher: string;
}

/** Handshakes and returns the presented certificate's CN, the negotiated ALPN protocol, TLS version and cipher. */
function handshake(port: number, options: tls.ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, rejectUnauthorized: false, ...options }, () => {
      const cn = String(socket.getPeerCertificate().subject?.CN ?? '');
      resolve({ cn, alpn: socket.alpnProtocol, authorized: socket.authorized, error: socket.authorizationError?.toString(), version: socket.getProtocol(), cipher: socket.getCipher().name });
      socket.end();
    });
    socket.on('error', reject);
  });
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  cn: string;
}

function get(port: number, path: string, options: { servername?: string; host?: string; agent?: https.Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path, ca, servername: options.servername, headers: { host: options.host ?? options.servername ?? 'localhost' }, agent: options.agent ?? false },
      (res) => {
        // Read now: a keep-alive agent takes the socket back at the end of the response.
        const cn = String((res.socket as tls.TLSSocket).getPeerCertificate().subject?.CN ?? '');
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), cn });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('the certificate is chosen by SNI: exact names, a wildcard, the first one by default', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, standard()));
  assert.equal((await handshake(gw.tlsPort!, { servername: 'a.example' })).cn, 'a.example');
  const b = await handshake(gw.tlsPort!, { servername: 'b.example' });
  assert.equal(b.cn, 'b.example');
  assert.equal(b.authorized, true);
  const wild = await handshake(gw.tlsPort!, { servername: 'x.wild.example' });
  assert.equal(wild.cn, '*.wild.example');
  assert.equal(wild.authorized, true);
  // A wildcard covers one label only.
  assert.equal((await handshake(gw.tlsPort!, { servername: 'y.x.wild.example' })).cn, 'a.example');
  // No SNI (an IP address is never sent as SNI) and an unknown name get the first certificate.
  assert.equal((await handshake(gw.tlsPort!)).cn, 'a.example');
  assert.equal((await handshake(gw.tlsPort!, { servername: 'unknown.example' })).cn, 'a.example');
  const expired = await handshake(gw.tlsPort!, { servername: 'expired.example' });
  assert.equal(expired.cn, 'expired.example');
  assert.equal(expired.error, 'CERT_HAS_EXPIRED');
});

test('TLS 1.2 and 1.3 by default, ECDHE ciphers for 1.2; ALPN prefers h2, HTTP/1.1 for clients without h2', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, standard()));
  const h2 = await handshake(gw.tlsPort!, { servername: 'a.example', ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(h2.alpn, 'h2');
  assert.equal(h2.version, 'TLSv1.3');
  assert.equal((await handshake(gw.tlsPort!, { servername: 'a.example', ALPNProtocols: ['http/1.1'] })).alpn, 'http/1.1');
  assert.equal((await handshake(gw.tlsPort!, { servername: 'a.example' })).alpn, false);
  const tls12 = await handshake(gw.tlsPort!, { servername: 'a.example', maxVersion: 'TLSv1.2' });
  assert.equal(tls12.cn, 'a.example');
  assert.equal(tls12.version, 'TLSv1.2');
  assert.match(tls12.cipher, /^ECDHE-ECDSA-(AES\d+-GCM|CHACHA20-POLY1305)/);
  // A TLS 1.2 cipher outside the default list (CBC) is not offered.
  await assert.rejects(handshake(gw.tlsPort!, { servername: 'a.example', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256' }));
  await assert.rejects(handshake(gw.tlsPort!, { servername: 'a.example', minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }));
  // A request over a connection without ALPN is served as HTTP/1.1.
  assert.equal((await get(gw.tlsPort!, '/open', { servername: 'a.example' })).status, 200);
});

test('ssl_protocols and ssl_ciphers apply to new handshakes after a reload, with and without SNI', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, standard()));
  const onlyTls13 = { _gatehouse: { access_log: false, ssl_protocols: 'TLSv1.3' } };
  gw.gateway.reload(config(u.url, standard(), onlyTls13));
  for (const servername of ['a.example', undefined]) {
    await assert.rejects(handshake(gw.tlsPort!, { servername, maxVersion: 'TLSv1.2' }), `TLS 1.2 refused (SNI ${servername})`);
    const ok = await handshake(gw.tlsPort!, { servername });
    assert.equal(ok.version, 'TLSv1.3');
    assert.equal(ok.cn, 'a.example');
  }
  assert.equal((await get(gw.tlsPort!, '/open', { servername: 'a.example' })).status, 200);

  const onlyOneCipher = { _gatehouse: { access_log: false, ssl_protocols: 'TLSv1.2', ssl_ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' } };
  gw.gateway.reload(config(u.url, standard(), onlyOneCipher));
  for (const servername of ['b.example', undefined]) {
    const ok = await handshake(gw.tlsPort!, { servername });
    assert.equal(ok.version, 'TLSv1.2');
    assert.equal(ok.cipher, 'ECDHE-ECDSA-AES256-GCM-SHA384');
    await assert.rejects(handshake(gw.tlsPort!, { servername, minVersion: 'TLSv1.3' }), `TLS 1.3 refused (SNI ${servername})`);
    await assert.rejects(handshake(gw.tlsPort!, { servername, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }), `other ciphers refused (SNI ${servername})`);
  }
});

test('a bad ssl_protocols or ssl_ciphers is a config error naming the field; the running TLS settings stay', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, standard(), { _gatehouse: { access_log: false, ssl_protocols: 'TLSv1.3' } }));
  const cases: [object, string][] = [
    [{ ssl_ciphers: 'NOT-A-CIPHER:ALSO-NOT' }, '_gatehouse.ssl_ciphers: OpenSSL refuses the cipher list'],
    [{ ssl_ciphers: 'TLS_AES_128_GCM_SHA256' }, '_gatehouse.ssl_ciphers: names no TLS 1.2 cipher'],
    [{ ssl_protocols: 'TLSv1.1 TLSv1.2' }, '_gatehouse.ssl_protocols: TLSv1.1 is not supported (TLS 1.0 and 1.1 are deprecated, RFC 8996)'],
    [{ ssl_protocols: 'TLSv1.2 TLSv1.4' }, '_gatehouse.ssl_protocols: unknown protocol "TLSv1.4"'],
    [{ ssl_protocols: ' ' }, '_gatehouse.ssl_protocols: names no protocol'],
  ];
  for (const [settings, message] of cases) {
    assert.throws(
      () => gw.gateway.reload(config(u.url, standard(), { _gatehouse: { access_log: false, ...settings } })),
      (err: unknown) => err instanceof ConfigError && err.errors.some((e) => e.startsWith(message)),
      message,
    );
  }
  await assert.rejects(handshake(gw.tlsPort!, { servername: 'a.example', maxVersion: 'TLSv1.2' }));
  assert.equal((await handshake(gw.tlsPort!, { servername: 'a.example' })).version, 'TLSv1.3');
});

test('requests over TLS: X-Forwarded-Proto https, https-only routes, the same validation as plain HTTP', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, standard()));
  const r = await get(gw.tlsPort!, '/open', { servername: 'a.example' });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).headers['x-forwarded-proto'], 'https');
  assert.equal((await get(gw.tlsPort!, '/secure', { servername: 'a.example' })).status, 200);
  assert.equal((await send(`${gw.url}/secure`)).status, 426);
  assert.equal((await send(`${gw.url}/open`)).status, 200);
  // Validation is shared: an unsupported method is refused over TLS too.
  const bad = await new Promise<number>((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: gw.tlsPort, path: '/open', method: 'TRACE', ca, servername: 'a.example', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(bad, (await send(`${gw.url}/open`, { method: 'TRACE' })).status);
});

test('HTTP/1.1 on the TLS listener keeps the plain listener\'s parser and keep-alive settings', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, standard()));
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ALPNProtocols: ['http/1.1'] });
  try {
    const r = await get(gw.tlsPort!, '/open', { servername: 'a.example', agent });
    assert.equal(r.status, 200);
    assert.equal(r.headers['keep-alive'], 'timeout=60', 'keepAliveTimeout 60 s, as on the plain listener');
    const big = await new Promise<number>((resolve, reject) => {
      const req = https.request({ host: '127.0.0.1', port: gw.tlsPort, path: '/open', ca, servername: 'a.example', agent: false, headers: { host: 'a.example', 'x-big': 'x'.repeat(20_000) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(big, 431, 'maxHeaderSize 16 KiB');
  } finally {
    agent.destroy();
  }
});

test('a route restricted to snis [a.example] is not reachable with SNI b.example, even with Host a.example', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, standard()));
  assert.equal((await get(gw.tlsPort!, '/only-a', { servername: 'a.example' })).status, 200);
  assert.equal((await get(gw.tlsPort!, '/only-a', { servername: 'b.example', host: 'a.example' })).status, 404);
  assert.equal((await send(`${gw.url}/only-a`, { headers: { host: 'a.example' } })).status, 404);
});

test('top-level snis entities refer to a certificate by id', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, [{ id: A_ID, ...certs.a }, { ...certs.b }], { snis: [{ name: 'a.example', certificate: { id: A_ID } }] }));
  assert.equal((await handshake(gw.tlsPort!, { servername: 'a.example' })).cn, 'a.example');
  assert.throws(
    () => gw.gateway.reload(config(u.url, [{ ...certs.a }], { snis: [{ name: 'a.example', certificate: 'nope' }] })),
    (err: unknown) => err instanceof ConfigError && err.errors.some((e) => e.startsWith('snis[0].certificate: no certificate')),
  );
});

test('a reload swaps a certificate: new handshakes see the new one, an open keep-alive connection keeps working', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, standard()));
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const first = await get(gw.tlsPort!, '/open', { servername: 'a.example', agent });
    assert.equal(first.cn, 'a.example');
    const accepted = gw.gateway.connections.accepted;
    const swapped = standard();
    swapped[0] = { id: A_ID, ...certs.a2, snis: ['a.example'] };
    gw.gateway.reload(config(u.url, swapped));
    assert.equal((await handshake(gw.tlsPort!, { servername: 'a.example' })).cn, 'a.example (renewed)');
    // The default certificate (no SNI) follows too.
    assert.equal((await handshake(gw.tlsPort!)).cn, 'a.example (renewed)');
    const again = await get(gw.tlsPort!, '/open', { servername: 'a.example', agent });
    assert.equal(again.status, 200);
    assert.equal(again.cn, 'a.example', 'the kept-alive connection is the one opened before the reload');
    assert.equal(gw.gateway.connections.accepted, accepted + 2, 'only the two handshakes above were new connections');
  } finally {
    agent.destroy();
  }
});

test('a broken certificate or key is a config error naming the entity; the running certificates stay', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, standard()));
  const cases: [object, string][] = [
    [{ cert: certs.a.cert, key: 'not a key' }, 'certificates[0].key: invalid private key'],
    [{ cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', key: certs.a.key }, 'certificates[0].cert: invalid certificate'],
    [{ cert: certs.a.cert, key: certs.b.key }, 'certificates[0].key: does not match cert'],
    [{ ...certs.a, cert_alt: certs.b.cert }, 'certificates[0]: cert_alt and key_alt must be set together'],
    [{ ...certs.a, snis: ['a..example'] }, 'certificates[0].snis[0]: invalid server name'],
  ];
  for (const [certificate, message] of cases) {
    assert.throws(
      () => gw.gateway.reload(config(u.url, [certificate])),
      (err: unknown) => err instanceof ConfigError && err.errors.some((e) => e.startsWith(message)),
      message,
    );
  }
  assert.throws(
    () => gw.gateway.reload(config(u.url, [{ ...certs.a, snis: ['a.example'] }, { ...certs.b, snis: ['A.example'] }])),
    (err: unknown) => err instanceof ConfigError && err.errors.some((e) => e.startsWith('certificates[1].snis[0]: UNIQUE violation')),
  );
  assert.equal((await handshake(gw.tlsPort!, { servername: 'b.example' })).cn, 'b.example');
});

test('without any certificate the handshake is refused with a clear log line', async () => {
  const u = await upstream();
  const gw = await gateway(config(u.url, []));
  await assert.rejects(handshake(gw.tlsPort!, { servername: 'a.example' }));
  await assert.rejects(handshake(gw.tlsPort!));
  assert.ok(gw.logs.some((l) => l.msg === 'TLS handshake refused: no certificate is configured'));
  assert.equal((await send(`${gw.url}/open`)).status, 200);
});
