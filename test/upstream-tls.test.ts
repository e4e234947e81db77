import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { createHash } from 'node:crypto';
import { managedServers, send, type TestGateway } from './helpers/harness.js';
import { testPki, type Issued } from './helpers/pki.js';
import { ConfigError } from '../src/lib/errors.js';
import { normalizeConfig } from '../src/config/normalize.js';
import { PLUGINS } from '../src/plugins/registry.js';
import { startTestNode } from './helpers/node.js';

const servers = managedServers();
const pki = testPki();
let root: Issued;
let other: Issued;
let inter: Issued;
let server: Issued;
let viaIntermediate: Issued;
let selfSigned: Issued;
let client: Issued;
let expiredCa: Issued;
let notCa: Issued;

const ROOT_ID = '0f9d8e2a-0000-4000-8000-0000000000a1';
const OTHER_ID = '0f9d8e2a-0000-4000-8000-0000000000a2';
const CLIENT_ID = '0f9d8e2a-0000-4000-8000-0000000000c1';

before(() => {
  root = pki.ca('root', { subject: '/O=Gatehouse Test/CN=Upstream Root CA' });
  other = pki.ca('other', { subject: '/CN=Some Other CA' });
  inter = pki.ca('inter', { subject: '/CN=Upstream Intermediate CA', issuer: root });
  server = pki.leaf('server', { subject: 'localhost', issuer: root, dns: ['localhost'], ip: ['127.0.0.1'], usage: 'serverAuth' });
  viaIntermediate = pki.leaf('via-inter', { subject: 'localhost', issuer: inter, dns: ['localhost'], ip: ['127.0.0.1'], usage: 'serverAuth' });
  selfSigned = pki.leaf('self', { subject: 'localhost', dns: ['localhost'], ip: ['127.0.0.1'], usage: 'serverAuth' });
  client = pki.leaf('gateway-client', { subject: '/O=Gatehouse/CN=gateway', issuer: root, usage: 'clientAuth' });
  expiredCa = pki.ca('expired-ca', { subject: '/CN=Expired CA', days: -1 });
  notCa = pki.leaf('not-ca', { subject: 'just a leaf', issuer: root });
});

interface Seen {
  path: string;
  servername: string | false | null | undefined;
  clientCn: string | undefined;
}

interface HttpsUpstream {
  port: number;
  seen: Seen[];
  /** TLS connections accepted (handshakes started), whatever their outcome. */
  connections: number;
}

/** A real HTTPS upstream on 127.0.0.1, port 0, presenting `cert` (a chain); with `clientCa`, it requires a client certificate from that CA. */
async function httpsUpstream(cert: Issued, clientCa?: Issued): Promise<HttpsUpstream> {
  const up: HttpsUpstream = { port: 0, seen: [], connections: 0 };
  const srv = https.createServer(
    { cert: cert.chain, key: cert.key, ...(clientCa ? { ca: [clientCa.cert], requestCert: true, rejectUnauthorized: true } : {}) },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const peer = socket.getPeerCertificate();
      up.seen.push({ path: req.url ?? '', servername: socket.servername, clientCn: peer && 'subject' in peer ? String(peer.subject?.CN ?? '') || undefined : undefined });
      res.end(JSON.stringify({ ok: true }));
    },
  );
  srv.on('connection', () => up.connections++);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  up.port = (srv.address() as { port: number }).port;
  // managedServers() closes what it started; this one is closed with the file.
  after(() => new Promise<void>((r) => {
    srv.closeAllConnections();
    srv.close(() => r());
  }));
  return up;
}

function config(url: string, service: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): object {
  return {
    _format_version: '3.0',
    _gatehouse: { access_log: false },
    ca_certificates: [
      { id: ROOT_ID, cert: root.cert },
      { id: OTHER_ID, cert: other.cert },
    ],
    certificates: [{ id: CLIENT_ID, cert: client.cert, key: client.key }],
    services: [{ name: 'svc', url, ...service, routes: [{ name: 'r', paths: ['/'] }] }],
    ...extra,
  };
}

async function gateway(doc: object): Promise<TestGateway> {
  return servers.gateway(doc);
}

const BAD_GATEWAY = 'An invalid response was received from the upstream server';

test('an upstream whose certificate chains to the service ca_certificates is reached; SNI is the service host', async () => {
  const up = await httpsUpstream(server);
  const gw = await gateway(config(`https://localhost:${up.port}/base`, { ca_certificates: [ROOT_ID] }));
  const res = await send(`${gw.url}/x`);
  assert.equal(res.status, 200, res.body);
  assert.equal(up.seen.at(-1)!.path, '/base/x');
  assert.equal(up.seen.at(-1)!.servername, 'localhost');
});

test('an IP literal host gets no SNI, and the certificate is checked against its IP address', async () => {
  const up = await httpsUpstream(server);
  const gw = await gateway(config(`https://127.0.0.1:${up.port}`, { ca_certificates: [ROOT_ID] }));
  assert.equal((await send(`${gw.url}/`)).status, 200);
  assert.equal(up.seen.at(-1)!.servername, false);
});

test('a certificate from another CA: 502 with Kong\'s message, a clear log line, and no retries', async () => {
  const up = await httpsUpstream(server);
  const gw = await gateway(config(`https://localhost:${up.port}`, { ca_certificates: [OTHER_ID], retries: 3 }));
  const res = await send(`${gw.url}/`);
  assert.equal(res.status, 502);
  assert.equal(res.json().message, BAD_GATEWAY);
  assert.equal(up.seen.length, 0);
  assert.equal(up.connections, 1, 'a refused certificate is not tried again');
  const line = gw.logs.find((l) => l.msg === 'upstream TLS certificate verification failed');
  assert.ok(line, JSON.stringify(gw.logs));
  const err = line.err as { code: string; message: string };
  assert.equal(err.code, 'GH_UPSTREAM_TLS_VERIFY');
  assert.match(err.message, /localhost:\d+ \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/);
  // The gateway keeps serving.
  assert.equal((await send(`${gw.url}/`)).status, 502);
});

test('tls_verify is on by default: a self-signed upstream is refused; tls_verify: false accepts it', async () => {
  const up = await httpsUpstream(selfSigned);
  const gw = await gateway(config(`https://localhost:${up.port}`));
  assert.equal((await send(`${gw.url}/`)).status, 502);
  assert.match(String((gw.logs.find((l) => l.msg === 'upstream TLS certificate verification failed')?.err as { message?: string })?.message), /DEPTH_ZERO_SELF_SIGNED_CERT/);
  // The system trust store does not know the test CA either.
  const signed = await httpsUpstream(server);
  const gw2 = await gateway(config(`https://localhost:${signed.port}`));
  assert.equal((await send(`${gw2.url}/`)).status, 502);
  const off = await gateway(config(`https://localhost:${up.port}`, { tls_verify: false }));
  assert.equal((await send(`${off.url}/`)).status, 200);
});

test('a host name the certificate does not cover is refused', async () => {
  const up = await httpsUpstream(pki.leaf('elsewhere', { subject: 'elsewhere.example', issuer: root, dns: ['elsewhere.example'], usage: 'serverAuth' }));
  const gw = await gateway(config(`https://localhost:${up.port}`, { ca_certificates: [ROOT_ID] }));
  assert.equal((await send(`${gw.url}/`)).status, 502);
  assert.match(String((gw.logs.find((l) => l.msg === 'upstream TLS certificate verification failed')?.err as { message?: string })?.message), /ERR_TLS_CERT_ALTNAME_INVALID/);
});

test('client_certificate is presented to an upstream that requires one (mutual TLS)', async () => {
  const up = await httpsUpstream(server, root);
  const withCert = await gateway(config(`https://localhost:${up.port}`, { ca_certificates: [ROOT_ID], client_certificate: { id: CLIENT_ID } }));
  const res = await send(`${withCert.url}/`);
  assert.equal(res.status, 200, res.body);
  assert.equal(up.seen.at(-1)!.clientCn, 'gateway');
  const without = await gateway(config(`https://localhost:${up.port}`, { ca_certificates: [ROOT_ID] }));
  assert.equal((await send(`${without.url}/`)).status, 502);
  assert.equal(up.seen.length, 1);
});

test('tls_verify_depth: 0 allows no intermediate, 1 allows one; unset: no limit of our own', async () => {
  const direct = await httpsUpstream(server);
  const chained = await httpsUpstream(viaIntermediate);
  const depth = async (port: number, tls_verify_depth: number | undefined) => {
    const gw = await gateway(config(`https://localhost:${port}`, { ca_certificates: [ROOT_ID], ...(tls_verify_depth === undefined ? {} : { tls_verify_depth }) }));
    return { status: (await send(`${gw.url}/`)).status, gw };
  };
  assert.equal((await depth(direct.port, 0)).status, 200);
  const refused = await depth(chained.port, 0);
  assert.equal(refused.status, 502);
  assert.match(String((refused.gw.logs.find((l) => l.msg === 'upstream TLS certificate verification failed')?.err as { message?: string })?.message), /CERT_CHAIN_TOO_LONG.*tls_verify_depth is 0/);
  assert.equal((await depth(chained.port, 1)).status, 200);
  assert.equal((await depth(chained.port, undefined)).status, 200);
});

test('a reload that changes the trusted CAs gets a new pool: 502 becomes 200 without a restart', async () => {
  const up = await httpsUpstream(server);
  const url = `https://localhost:${up.port}`;
  const gw = await gateway(config(url, { ca_certificates: [OTHER_ID] }));
  assert.equal((await send(`${gw.url}/`)).status, 502);
  const before = gw.gateway.snapshot.services.values().next().value!.pool;
  gw.gateway.reload(config(url, { ca_certificates: [ROOT_ID] }));
  const afterPool = gw.gateway.snapshot.services.values().next().value!.pool;
  assert.notEqual(afterPool.key, before.key);
  assert.ok(!afterPool.key.includes('BEGIN'), 'pool keys hold digests, not PEMs');
  assert.equal((await send(`${gw.url}/`)).status, 200);
});

test("the plugins' undici pool to the same upstream uses the same trust and client certificate", async () => {
  const up = await httpsUpstream(server, root);
  const gw = await gateway(config(`https://localhost:${up.port}`, { ca_certificates: [ROOT_ID], client_certificate: CLIENT_ID }));
  const pool = gw.gateway.snapshot.services.values().next().value!.pool;
  const res = await pool.dispatcher.request({ method: 'GET', path: '/from-plugin' });
  assert.equal(res.statusCode, 200);
  await res.body.text();
  assert.deepEqual(up.seen.at(-1), { path: '/from-plugin', servername: 'localhost', clientCn: 'gateway' });
  const wrong = await gateway(config(`https://localhost:${up.port}`, { ca_certificates: [OTHER_ID], client_certificate: CLIENT_ID }));
  // (This upstream also sends the root it trusts for clients, so OpenSSL sees an untrusted self-signed root.)
  await assert.rejects(wrong.gateway.snapshot.services.values().next().value!.pool.dispatcher.request({ method: 'GET', path: '/' }), /self-signed certificate in certificate chain/);
  const chained = await httpsUpstream(viaIntermediate);
  const shallow = await gateway(config(`https://localhost:${chained.port}`, { ca_certificates: [ROOT_ID], tls_verify_depth: 0 }));
  await assert.rejects(shallow.gateway.snapshot.services.values().next().value!.pool.dispatcher.request({ method: 'GET', path: '/' }), /chain too long/);
});

test('ca_certificates are checked when loaded; errors name the entity; the running config stays', async () => {
  const up = await httpsUpstream(server);
  const url = `https://localhost:${up.port}`;
  const gw = await gateway(config(url, { ca_certificates: [ROOT_ID] }));
  const withCa = (ca: Record<string, unknown>, service: Record<string, unknown> = { ca_certificates: [ROOT_ID] }) => ({ ...config(url, service), ca_certificates: [{ id: ROOT_ID, cert: root.cert }, ca] });
  const cases: [object, string][] = [
    [withCa({ cert: notCa.cert }), 'ca_certificates[1].cert: certificate does not appear to be a CA because it is missing the "CA" basic constraint'],
    [withCa({ cert: expiredCa.cert }), 'ca_certificates[1].cert: certificate expired, "Not After" time is in the past'],
    [withCa({ cert: other.cert + inter.cert }), 'ca_certificates[1].cert: please submit only one certificate at a time'],
    [withCa({ cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }), 'ca_certificates[1].cert: invalid certificate'],
    [withCa({ cert: other.cert, cert_digest: 'ab'.repeat(32) }), 'ca_certificates[1].cert_digest: does not match cert'],
    [withCa({ cert: root.cert }), 'ca_certificates[1].cert_digest: UNIQUE violation'],
    [withCa({ cert: other.cert }, { ca_certificates: ['nope'] }), 'services[0].ca_certificates[0]: no ca_certificate with id "nope"'],
    [withCa({ cert: other.cert }, { client_certificate: { id: 'missing' } }), 'services[0].client_certificate: no certificate with id "missing"'],
    [withCa({ cert: other.cert }, { tls_verify_depth: 65 }), 'services[0].tls_verify_depth: must be <= 64'],
  ];
  for (const [doc, message] of cases) {
    assert.throws(
      () => gw.gateway.reload(doc),
      (err: unknown) => err instanceof ConfigError && err.errors.some((e) => e.startsWith(message)),
      message,
    );
  }
  // TLS settings on a plain-HTTP service are refused, as Kong does.
  const plain = { ...config('http://localhost:1', { ca_certificates: [ROOT_ID], tls_verify: false, client_certificate: CLIENT_ID, tls_verify_depth: 1 }) };
  assert.throws(
    () => gw.gateway.reload(plain),
    (err: unknown) =>
      err instanceof ConfigError &&
      ['ca_certificates', 'tls_verify', 'client_certificate', 'tls_verify_depth'].every((f) => err.errors.includes(`services[0].${f}: can only be set when the protocol is "https"`)),
  );
  assert.equal((await send(`${gw.url}/`)).status, 200, 'the running config still serves');
});

test('cert_digest is the sha256 of the certificate, computed when absent and accepted when it matches', () => {
  const digest = createHash('sha256').update(root.x509.raw).digest('hex');
  const normal = normalizeConfig({ _format_version: '3.0', ca_certificates: [{ cert: root.cert }, { cert: other.cert, cert_digest: createHash('sha256').update(other.x509.raw).digest('hex').toUpperCase() }] }, PLUGINS);
  assert.equal(normal.caCertificates[0]!.digest, digest);
  assert.equal(normal.caCertificates.length, 2);
});

test('admin API: a created ca_certificate shows its cert_digest; a non-CA is refused naming the field; one in use cannot go', async () => {
  const up = await httpsUpstream(server);
  const n = await startTestNode({ _format_version: '3.0', _gatehouse: { access_log: false } });
  try {
    const ca = await n.call('POST', '/ca_certificates', { cert: root.cert, tags: ['test'] });
    assert.equal(ca.status, 201, ca.text);
    assert.equal(ca.body.cert_digest, createHash('sha256').update(root.x509.raw).digest('hex'));
    assert.equal((await n.call('GET', `/ca_certificates/${ca.body.id}`)).body.cert_digest, ca.body.cert_digest);
    const leaf = await n.call('POST', '/ca_certificates', { cert: notCa.cert });
    assert.equal(leaf.status, 400, leaf.text);
    assert.match(leaf.text, /missing the \\"CA\\" basic constraint/);
    const svc = await n.call('POST', '/services', { name: 's', url: `https://localhost:${up.port}`, ca_certificates: [ca.body.id] });
    assert.equal(svc.status, 201, svc.text);
    assert.equal((await n.call('POST', '/services/s/routes', { name: 'r', paths: ['/'] })).status, 201);
    assert.equal((await send(`${n.proxyUrl}/`)).status, 200);
    const gone = await n.call('DELETE', `/ca_certificates/${ca.body.id}`);
    assert.equal(gone.status, 400, gone.text);
    assert.match(gone.text, /no ca_certificate with id/);
  } finally {
    await n.stop(0);
  }
});

test('a balanced https service: each target gets SNI and certificate checks for its own host name', async () => {
  const up = await httpsUpstream(server);
  const doc = {
    ...config('https://placeholder', {}),
    upstreams: [{ name: 'secure.pool', targets: [{ target: `localhost:${up.port}` }] }],
    services: [{ name: 'svc', protocol: 'https', host: 'secure.pool', ca_certificates: [ROOT_ID], routes: [{ name: 'r', paths: ['/'] }] }],
  };
  const gw = await gateway(doc);
  const res = await send(`${gw.url}/balanced`);
  assert.equal(res.status, 200, res.body);
  assert.equal(up.seen.at(-1)!.servername, 'localhost', 'SNI is the target host, not its IP nor the upstream name');
  // A target whose certificate does not name it is refused (verification runs against the target host).
  const wrongName = await httpsUpstream(pki.leaf('other-name', { subject: 'elsewhere.test', issuer: root, dns: ['elsewhere.test'], usage: 'serverAuth' }));
  gw.gateway.reload({ ...doc, upstreams: [{ name: 'secure.pool', targets: [{ target: `localhost:${wrongName.port}` }] }] });
  assert.equal((await send(`${gw.url}/balanced`)).status, 502);
});
