import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { validateAgainst } from '../../config/validate.js';
import { ConfigError } from '../../lib/errors.js';
import { managedServers, send, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { testPki, type Issued } from '../../../test/helpers/pki.js';
import { mtlsAuth } from './index.js';

const validate = (config: Record<string, unknown>) => validateAgainst(mtlsAuth.schema, config, 'config');

describe('mtls-auth: schema', () => {
  it("fills Kong's defaults; ca_certificates is required; priority 1600", () => {
    const config: Record<string, unknown> = { ca_certificates: ['x'] };
    assert.deepEqual(validate(config), []);
    assert.deepEqual(config, {
      ca_certificates: ['x'],
      skip_consumer_lookup: false,
      consumer_by: ['username', 'custom_id'],
      authenticated_group_by: 'CN',
      allow_partial_chain: false,
      revocation_check_mode: 'IGNORE_CA_ERROR',
      cache_ttl: 60,
      send_ca_dn: false,
    });
    assert.equal(mtlsAuth.priority, 1600);
    assert.deepEqual(validate({}), ['config.ca_certificates: required field missing']);
    assert.deepEqual(validate({ ca_certificates: [] }), ['config.ca_certificates: must NOT have fewer than 1 items']);
  });

  it('STRICT revocation checking is refused (no OCSP/CRL); consumer_by takes username and custom_id', () => {
    assert.deepEqual(validate({ ca_certificates: ['x'], revocation_check_mode: 'STRICT' }), [
      'config.revocation_check_mode: must be one of: IGNORE_CA_ERROR, SKIP (STRICT needs OCSP/CRL checks, which Gatehouse does not do)',
    ]);
    assert.deepEqual(validate({ ca_certificates: ['x'], revocation_check_mode: 'SKIP', consumer_by: [] }), []);
    assert.deepEqual(validate({ ca_certificates: ['x'], consumer_by: ['id'] }), ['config.consumer_by[0]: must be one of: username, custom_id']);
  });
});

const ROOT_ID = '5e7a1c00-0000-4000-8000-0000000000a1';
const OTHER_ID = '5e7a1c00-0000-4000-8000-0000000000a2';
const INTER_ID = '5e7a1c00-0000-4000-8000-0000000000a3';

interface Answer {
  status: number;
  body: string;
  reused: boolean;
  json(): any;
}

describe('mtls-auth: through the HTTPS listener', () => {
  const servers = managedServers();
  const pki = testPki();
  const certs: Record<string, Issued> = {};
  let root: Issued;
  let up: Upstream;
  let gw: TestGateway;

  /** A request over TLS to the gateway, with `cert` as the client certificate (its chain is sent). */
  function get(path: string, options: { cert?: Issued; headers?: Record<string, string>; agent?: https.Agent; port?: number } = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: options.port ?? gw.tlsPort,
          path,
          servername: 'localhost',
          ca: root.cert,
          headers: { host: 'localhost', ...options.headers },
          ...(options.cert ? { cert: options.cert.chain, key: options.cert.key } : {}),
          agent: options.agent ?? false,
        },
        (res) => {
          const reused = (res.socket as TLSSocket).isSessionReused();
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, body, reused, json: () => JSON.parse(body) });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  const lastUpstream = () => up.requests[up.requests.length - 1]!;
  const fingerprint = (c: Issued) => createHash('sha256').update(c.x509.raw).digest('hex');

  function config(extraRoutes: object[] = [], extra: Record<string, unknown> = {}): object {
    const route = (name: string, pluginConfig?: Record<string, unknown>, more: object[] = []) => ({
      name,
      paths: [`/${name}`],
      plugins: pluginConfig ? [{ name: 'mtls-auth', config: pluginConfig }, ...more] : more,
    });
    return {
      _format_version: '3.0',
      certificates: [{ cert: certs.server!.cert, key: certs.server!.key, snis: ['localhost'] }],
      ca_certificates: [
        { id: ROOT_ID, cert: root.cert },
        { id: OTHER_ID, cert: certs.other!.cert },
        { id: INTER_ID, cert: certs.inter!.cert },
      ],
      consumers: [{ username: 'alice' }, { username: 'someone', custom_id: 'bob@example.com' }, { username: 'guest' }, { username: 'fallback' }],
      services: [
        {
          name: 'svc',
          url: up.url,
          routes: [
            route('mtls', { ca_certificates: [ROOT_ID] }),
            route('open'),
            route('anon', { ca_certificates: [ROOT_ID], anonymous: 'guest' }),
            route('default', { ca_certificates: [ROOT_ID], default_consumer: 'fallback' }),
            route('username-only', { ca_certificates: [ROOT_ID], consumer_by: ['username'] }),
            route('inter-only', { ca_certificates: [INTER_ID] }),
            route('partial', { ca_certificates: [INTER_ID], allow_partial_chain: true }),
            route('skip', { ca_certificates: [ROOT_ID], skip_consumer_lookup: true }, [{ name: 'acl', config: { allow: ['alice'] } }]),
            route('skip-dn', { ca_certificates: [ROOT_ID], skip_consumer_lookup: true, authenticated_group_by: 'DN' }, [{ name: 'acl', config: { allow: ['CN=alice,O=Example\\, Inc.'] } }]),
            ...extraRoutes,
          ],
        },
      ],
      ...extra,
    };
  }

  before(async () => {
    root = pki.ca('root', { subject: '/O=Gatehouse Test/CN=Client Root CA' });
    certs.other = pki.ca('other', { subject: '/CN=Other Client CA' });
    certs.inter = pki.ca('inter', { subject: '/CN=Client Intermediate CA', issuer: root });
    certs.server = pki.leaf('server', { subject: 'localhost', issuer: root, dns: ['localhost'], usage: 'serverAuth' });
    certs.alice = pki.leaf('alice', { subject: '/O=Example, Inc./CN=alice', issuer: root, usage: 'clientAuth' });
    certs.bob = pki.leaf('bob', { subject: '/CN=Bob Person', issuer: certs.inter, email: ['bob@example.com'], usage: 'clientAuth' });
    certs.nobody = pki.leaf('nobody', { subject: 'nobody', issuer: root, usage: 'clientAuth' });
    certs.wrongCa = pki.leaf('wrong-ca', { subject: 'alice', issuer: certs.other, usage: 'clientAuth' });
    certs.expired = pki.leaf('expired', { subject: 'alice', issuer: root, usage: 'clientAuth', days: -1 });
    certs.selfSigned = pki.leaf('self-signed', { subject: 'alice', usage: 'clientAuth' });
    certs.serverOnly = pki.leaf('server-only', { subject: 'alice', issuer: root, usage: 'serverAuth' });
    up = await servers.upstream();
    gw = await servers.gateway(config(), { tls: true });
  });

  it('a valid client certificate: 200, the consumer and the verified certificate go upstream', async () => {
    const res = await get('/mtls', { cert: certs.alice });
    assert.equal(res.status, 200, res.body);
    const h = lastUpstream().headers;
    assert.equal(h['x-consumer-username'], 'alice');
    assert.equal(h['x-consumer-id'], gw.gateway.snapshot.consumers.find('alice')!.id);
    assert.equal(h['x-credential-identifier'], 'alice');
    assert.equal(h['x-anonymous-consumer'], undefined);
    assert.equal(h['x-client-cert-subject'], 'CN=alice,O=Example\\, Inc.');
    assert.equal(h['x-client-cert-fingerprint'], fingerprint(certs.alice));
  });

  it('over HTTP/2 too: a valid certificate passes, none gets 401', async () => {
    const http2 = await import('node:http2');
    const h2get = (path: string, cert?: Issued) =>
      new Promise<{ status: number; alpn: string | false | undefined }>((resolve, reject) => {
        const session = http2.connect(`https://127.0.0.1:${gw.tlsPort}`, {
          servername: 'localhost',
          ca: root.cert,
          ...(cert ? { cert: cert.chain, key: cert.key } : {}),
        });
        session.on('error', reject);
        const stream = session.request({ ':path': path, ':authority': 'localhost' });
        let status = 0;
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.resume();
        stream.on('end', () => {
          const alpn = session.alpnProtocol;
          session.close();
          resolve({ status, alpn });
        });
        stream.on('error', reject);
      });
    const ok = await h2get('/mtls', certs.alice);
    assert.equal(ok.alpn, 'h2');
    assert.equal(ok.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'alice');
    assert.equal(lastUpstream().headers['x-client-cert-fingerprint'], fingerprint(certs.alice));
    assert.equal((await h2get('/mtls')).status, 401);
    assert.equal((await h2get('/mtls', certs.wrongCa)).status, 401);
  });

  it('no client certificate: 401 "No required TLS certificate was sent"; the handshake itself succeeds', async () => {
    const res = await get('/mtls');
    assert.equal(res.status, 401);
    assert.equal(res.json().message, 'No required TLS certificate was sent');
    assert.equal(typeof res.json().request_id, 'string');
  });

  it('plain HTTP: 401 "No required TLS certificate was sent"', async () => {
    const res = await send(`${gw.url}/mtls`);
    assert.equal(res.status, 401);
    assert.equal(res.json().message, 'No required TLS certificate was sent');
  });

  for (const [name, why] of [
    ['expired', 'certificate has expired'],
    ['wrongCa', 'unable to get local issuer certificate'],
    ['selfSigned', 'self-signed certificate'],
    ['serverOnly', 'certificate is not for clientAuth'],
  ] as const) {
    it(`a ${name} client certificate: 401 "TLS certificate failed verification", reason logged`, async () => {
      const res = await get('/mtls', { cert: certs[name] });
      assert.equal(res.status, 401);
      assert.equal(res.json().message, 'TLS certificate failed verification');
      assert.ok(gw.logs.some((l) => l.msg === 'client certificate refused' && l.reason === why), `${why} in ${JSON.stringify(gw.logs.filter((l) => l.msg === 'client certificate refused'))}`);
    });
  }

  it('a trusted certificate that maps to no consumer: 401; default_consumer takes it', async () => {
    const res = await get('/mtls', { cert: certs.nobody });
    assert.equal(res.status, 401);
    assert.equal(res.json().message, 'TLS certificate failed verification');
    const fallback = await get('/default', { cert: certs.nobody });
    assert.equal(fallback.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'fallback');
    assert.equal(lastUpstream().headers['x-client-cert-subject'], 'CN=nobody');
    assert.equal((await get('/default', { cert: certs.alice })).status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'alice', 'a matching consumer wins over the default');
  });

  it('subject names: the email SAN matches a custom_id, through an intermediate the client sends; consumer_by limits the fields', async () => {
    const res = await get('/mtls', { cert: certs.bob });
    assert.equal(res.status, 200, res.body);
    assert.equal(lastUpstream().headers['x-consumer-custom-id'], 'bob@example.com');
    assert.equal(lastUpstream().headers['x-credential-identifier'], 'bob@example.com');
    assert.equal((await get('/username-only', { cert: certs.bob })).status, 401);
  });

  it('allow_partial_chain: an intermediate alone is a trust anchor only when allowed', async () => {
    assert.equal((await get('/inter-only', { cert: certs.bob })).status, 401);
    assert.equal((await get('/partial', { cert: certs.bob })).status, 200);
    assert.equal((await get('/partial', { cert: certs.alice })).status, 401, 'a certificate from the root is not under the intermediate');
  });

  it('a resumed TLS session (no intermediates resent) still verifies', async () => {
    const agent = new https.Agent({ keepAlive: false, maxCachedSessions: 10 });
    try {
      const first = await get('/mtls', { cert: certs.bob, agent });
      const second = await get('/mtls', { cert: certs.bob, agent });
      assert.equal(first.status, 200);
      assert.equal(second.reused, true, 'the second connection resumed the session');
      assert.equal(second.status, 200, second.body);
    } finally {
      agent.destroy();
    }
  });

  it('client copies of X-Client-Cert-* never reach an upstream, on any route', async () => {
    const spoof = { 'x-client-cert-subject': 'CN=admin', 'x-client-cert-fingerprint': 'f'.repeat(64) };
    assert.equal((await get('/mtls', { cert: certs.alice, headers: spoof })).status, 200);
    assert.equal(lastUpstream().headers['x-client-cert-subject'], 'CN=alice,O=Example\\, Inc.');
    assert.equal(lastUpstream().headers['x-client-cert-fingerprint'], fingerprint(certs.alice));
    for (const path of ['/open', '/anon']) {
      assert.equal((await get(path, { headers: spoof })).status, 200, path);
      assert.equal(lastUpstream().headers['x-client-cert-subject'], undefined, path);
      assert.equal(lastUpstream().headers['x-client-cert-fingerprint'], undefined, path);
    }
    assert.equal((await send(`${gw.url}/open`, { headers: spoof })).status, 200);
    assert.equal(lastUpstream().headers['x-client-cert-subject'], undefined);
  });

  it('a route without the plugin on the same listener works without a client certificate', async () => {
    assert.equal((await get('/open')).status, 200);
    assert.equal((await get('/open', { cert: certs.selfSigned })).status, 200, 'nor does a bad certificate matter there');
  });

  it('anonymous: no certificate or a refused one goes on as the anonymous consumer', async () => {
    for (const cert of [undefined, certs.wrongCa]) {
      const res = await get('/anon', { cert });
      assert.equal(res.status, 200);
      const h = lastUpstream().headers;
      assert.equal(h['x-consumer-username'], 'guest');
      assert.equal(h['x-anonymous-consumer'], 'true');
      assert.equal(h['x-client-cert-fingerprint'], undefined);
    }
    assert.equal((await get('/anon', { cert: certs.alice })).status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'alice');
  });

  it('skip_consumer_lookup: any trusted certificate, with the CN (or DN) as authenticated group for acl', async () => {
    const res = await get('/skip', { cert: certs.alice });
    assert.equal(res.status, 200, res.body);
    const h = lastUpstream().headers;
    assert.equal(h['x-consumer-id'], undefined);
    assert.equal(h['x-authenticated-groups'], 'alice');
    assert.equal(h['x-client-cert-fingerprint'], fingerprint(certs.alice));
    assert.equal((await get('/skip', { cert: certs.nobody })).status, 403, 'acl refuses the group "nobody"');
    assert.equal((await get('/skip')).status, 401);
    assert.equal((await get('/skip-dn', { cert: certs.alice })).status, 200);
    assert.equal(lastUpstream().headers['x-authenticated-groups'], 'CN=alice,O=Example\\, Inc.');
  });

  it('certificates never reach the logs as secrets: only reasons and fingerprints', () => {
    const text = JSON.stringify(gw.logs);
    assert.ok(!text.includes('PRIVATE KEY'));
  });

  it('the plugin names ca_certificates that must exist; the running config stays', async () => {
    const doc = config([{ name: 'ghost', paths: ['/ghost'], plugins: [{ name: 'mtls-auth', config: { ca_certificates: [ROOT_ID, 'nope'] } }] }]);
    assert.throws(
      () => gw.gateway.reload(doc),
      (err: unknown) => err instanceof ConfigError && err.errors.some((e) => e === 'services[0].routes[9].plugins[0].config.ca_certificates[1]: no ca_certificate with id "nope"'),
    );
    assert.equal((await get('/mtls', { cert: certs.alice })).status, 200);
  });

  /** openssl s_client's view of a handshake: whether a certificate was requested, and the CA names listed. */
  function handshakeSeenByOpenssl(port: number): Promise<{ requested: boolean; caNames: string[] }> {
    return new Promise((resolve, reject) => {
      const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-state', '-tls1_2'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (out += d.toString()));
      p.on('error', reject);
      p.on('close', () => {
        const names = /Acceptable client certificate CA names\n([\s\S]*?)\n(?=[A-Z][a-z])/.exec(out)?.[1]?.split('\n') ?? [];
        resolve({ requested: /read server certificate request/.test(out), caNames: names });
      });
      p.stdin.end();
    });
  }

  it('the listener asks for a certificate only while an enabled mtls-auth is configured; send_ca_dn lists the CA names', async () => {
    const other = await servers.gateway(config([], { services: [{ name: 'svc', url: up.url, routes: [{ name: 'r', paths: ['/'] }] }] }), { tls: true });
    assert.deepEqual(await handshakeSeenByOpenssl(other.tlsPort!), { requested: false, caNames: [] });
    const disabled = { name: 'x', paths: ['/x'], plugins: [{ name: 'mtls-auth', enabled: false, config: { ca_certificates: [ROOT_ID] } }] };
    other.gateway.reload(config([], { services: [{ name: 'svc', url: up.url, routes: [disabled] }] }));
    assert.equal((await handshakeSeenByOpenssl(other.tlsPort!)).requested, false);
    other.gateway.reload(config([], { services: [{ name: 'svc', url: up.url, routes: [{ ...disabled, plugins: [{ name: 'mtls-auth', config: { ca_certificates: [ROOT_ID] } }] }] }] }));
    assert.deepEqual(await handshakeSeenByOpenssl(other.tlsPort!), { requested: true, caNames: [] });
    other.gateway.reload(config([], { services: [{ name: 'svc', url: up.url, routes: [{ ...disabled, plugins: [{ name: 'mtls-auth', config: { ca_certificates: [ROOT_ID], send_ca_dn: true } }] }] }] }));
    assert.deepEqual(await handshakeSeenByOpenssl(other.tlsPort!), { requested: true, caNames: ['O = Gatehouse Test, CN = Client Root CA'] });
    assert.equal((await get('/x', { port: other.tlsPort, cert: certs.alice })).status, 200);
  });
});
