import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import { validateAgainst } from '../../config/validate.js';
import { startGateway, startUpstream, send, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { checkClaims, tokenScopes } from './claims.js';
import { jwks } from './index.js';

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A test identity provider: discovery document, key sets per path, and a record of every request. */
class IdentityProvider {
  readonly server: http.Server;
  readonly hits: string[] = [];
  keys: Record<string, unknown>[] = [];
  url = '';

  constructor() {
    this.server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      this.hits.push(url);
      const path = url.split('?')[0];
      if (path === '/.well-known/openid-configuration') return this.json(res, { issuer: this.url, jwks_uri: `${this.url}/jwks?r=discovered` });
      if (path === '/jwks') return this.json(res, { keys: this.keys });
      if (path === '/slow') return; // never answers
      if (path === '/broken') return this.json(res, { nope: true });
      res.writeHead(404).end();
    });
  }

  private json(res: http.ServerResponse, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
  }

  count(tag: string): number {
    return this.hits.filter((h) => h.endsWith(`r=${tag}`)).length;
  }

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

interface SigningKey {
  kid: string;
  alg: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

function signingKey(kid: string, alg: 'RS256' | 'ES256' | 'EdDSA'): SigningKey {
  const pair = alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  return { kid, alg, privateKey: pair.privateKey, jwk: { ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
}

function sign(key: SigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header }).sign(key.privateKey);
}

describe('jwks: schema and claim rules', () => {
  it('defaults; exactly one of jwks_uri and discovery_uri', () => {
    const config: Record<string, unknown> = { jwks_uri: 'https://idp.example/jwks' };
    assert.deepEqual(validateAgainst(jwks.schema, config, 'config'), []);
    assert.equal(config.timeout, 3000);
    assert.equal(config.refresh_cooldown, 30);
    assert.deepEqual(config.header_names, ['authorization']);
    assert.equal(jwks.check!(config as never), undefined);
    assert.equal(jwks.check!({ ...config, discovery_uri: 'https://idp.example/.well-known/openid-configuration' } as never), 'config: exactly one of config.jwks_uri and config.discovery_uri is required');
    assert.equal(jwks.check!({} as never), 'config: exactly one of config.jwks_uri and config.discovery_uri is required');
    assert.deepEqual(validateAgainst(jwks.schema, { jwks_uri: 'file:///etc/passwd' }, 'config'), ['config.jwks_uri: must be an http:// or https:// URL']);
    assert.deepEqual(validateAgainst(jwks.schema, { jwks_uri: 'https://x/', algorithms: ['HS256'] }, 'config'), [
      'config.algorithms[0]: must be one of: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA',
    ]);
    assert.deepEqual(validateAgainst(jwks.schema, { jwks_uri: 'https://x/', refresh_cooldown: 0 }, 'config'), ['config.refresh_cooldown: must be at least 1']);
    const forging = { ...config, claims_to_headers: [{ claim: 'sub', header: 'X_Consumer_ID' }] };
    assert.equal(jwks.check!(forging as never), 'config.claims_to_headers[0].header: "X_Consumer_ID" is set by the gateway and cannot carry a claim');
  });

  it('exp / nbf with and without leeway, iss, aud, required claims, scopes', () => {
    const t = 1_000_000;
    const rules = { issuer: 'https://idp', audiences: ['api'], requiredScopes: [], requiredClaims: [], leeway: 0, requireExp: true };
    const base = { iss: 'https://idp', aud: 'api', exp: t + 10 };
    assert.equal(checkClaims(base, rules, t), undefined);
    assert.equal(checkClaims({ ...base, exp: t }, rules, t)?.message, 'Token expired');
    assert.equal(checkClaims({ ...base, exp: t - 5 }, { ...rules, leeway: 10 }, t), undefined);
    assert.equal(checkClaims({ ...base, exp: t - 10 }, { ...rules, leeway: 10 }, t)?.message, 'Token expired');
    assert.equal(checkClaims({ ...base, nbf: t + 5 }, rules, t)?.message, 'Token not valid yet');
    assert.equal(checkClaims({ ...base, nbf: t + 5 }, { ...rules, leeway: 10 }, t), undefined);
    assert.equal(checkClaims({ ...base, exp: undefined }, rules, t)?.message, "Missing 'exp' claim");
    assert.equal(checkClaims({ ...base, exp: undefined }, { ...rules, requireExp: false }, t), undefined);
    assert.equal(checkClaims({ ...base, exp: '9999999999' }, rules, t)?.message, "Invalid 'exp' claim");
    assert.equal(checkClaims({ ...base, iss: 'https://evil' }, { ...rules, leeway: 3600 }, t)?.message, 'Invalid issuer');
    assert.equal(checkClaims({ ...base, aud: ['other', 'api'] }, rules, t), undefined);
    assert.equal(checkClaims({ ...base, aud: ['other'] }, { ...rules, leeway: 3600 }, t)?.message, 'Invalid audience');
    assert.equal(checkClaims({ ...base, aud: undefined }, rules, t)?.message, 'Invalid audience');
    assert.equal(checkClaims(base, { ...rules, requiredClaims: ['email'] }, t)?.message, "Missing required claim 'email'");
    const scoped = checkClaims({ ...base, scope: 'read' }, { ...rules, requiredScopes: ['read', 'write'] }, t);
    assert.deepEqual(scoped, { status: 403, message: 'Insufficient scope', error: 'insufficient_scope' });
    assert.deepEqual([...tokenScopes({ scope: 'a  b', scp: ['c', 1] })], ['a', 'b', 'c']);
  });
});

describe('jwks: through the gateway', () => {
  let idp: IdentityProvider;
  let up: Upstream;
  let gw: TestGateway;
  const rs = signingKey('rs-1', 'RS256');
  const ec = signingKey('ec-1', 'ES256');
  const ed = signingKey('ed-1', 'EdDSA');
  const rotated = signingKey('rs-2', 'RS256');
  const attacker = signingKey('rs-1', 'RS256');
  let config: Record<string, unknown>;

  const plugin = (tag: string, extra: Record<string, unknown> = {}) => ({ name: 'jwks', config: { jwks_uri: `${idp.url}/jwks?r=${tag}`, issuer: 'https://idp.test', audiences: ['api'], ...extra } });
  const route = (name: string, plugins: object[]) => ({ name, paths: [`/${name}`], plugins });

  before(async () => {
    idp = new IdentityProvider();
    await idp.start();
    idp.keys = [rs.jwk, ec.jwk, ed.jwk, { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac', alg: 'HS256' }];
    up = await startUpstream();
    const closedPort = await new Promise<number>((resolve) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    config = {
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: up.url,
          routes: [
            route('basic', [plugin('basic', { claims_to_headers: [{ claim: 'sub', header: 'X-User-Sub' }, { claim: 'roles', header: 'x-user-roles' }, { claim: 'profile', header: 'x-user-profile' }] })]),
            route('leeway', [plugin('leeway', { leeway: 30 })]),
            route('scopes', [plugin('scopes', { required_scopes: ['read', 'write'], required_claims: ['email'], realm: 'api' })]),
            route('flood', [plugin('flood', { refresh_cooldown: 60 })]),
            route('rotate', [plugin('rotate', { refresh_cooldown: 2 })]),
            route('discovery', [{ name: 'jwks', config: { discovery_uri: `${idp.url}/.well-known/openid-configuration?r=disco` } }]),
            route('down', [{ name: 'jwks', config: { jwks_uri: `http://127.0.0.1:${closedPort}/jwks`, timeout: 500 } }]),
            route('slow', [{ name: 'jwks', config: { jwks_uri: `${idp.url}/slow?r=slow`, timeout: 300 } }]),
            route('broken', [{ name: 'jwks', config: { jwks_uri: `${idp.url}/broken?r=broken`, timeout: 300 } }]),
            route('anon', [{ name: 'jwks', config: { jwks_uri: `http://127.0.0.1:${closedPort}/jwks`, timeout: 300, anonymous: 'guest' } }]),
            route('consumer', [plugin('consumer', { consumer_claim: 'sub' }), { name: 'acl', config: { allow: ['admins'] } }]),
            route('groups', [plugin('groups', { groups_claim: 'groups' }), { name: 'acl', config: { allow: ['staff'] } }]),
          ],
        },
      ],
      consumers: [{ username: 'alice', custom_id: 'A-1', acls: [{ group: 'admins' }] }, { username: 'bob' }, { username: 'guest' }],
    };
    gw = await startGateway(config);
  });

  after(async () => {
    await gw?.close();
    await up?.close();
    await idp?.close();
  });

  const lastUpstream = () => up.requests[up.requests.length - 1]!;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const claims = (extra: Record<string, unknown> = {}) => ({ iss: 'https://idp.test', aud: 'api', sub: 'user-1', exp: now() + 300, ...extra });

  it('RS256, ES256 and EdDSA tokens verify by kid; claims go upstream as headers; forged copies are removed', async () => {
    for (const key of [rs, ec, ed]) {
      const token = await sign(key, claims({ roles: ['a', 'b'], profile: { name: 'Zoë' } }));
      const res = await send(`${gw.url}/basic`, { headers: { ...bearer(token), 'x-user-sub': 'forged', 'x_user_roles': 'forged' } });
      assert.equal(res.status, 200, key.alg);
      const h = lastUpstream().headers;
      assert.equal(h['x-user-sub'], 'user-1');
      assert.equal(h['x-user-roles'], 'a, b');
      assert.equal(h['x_user_roles'], undefined, 'the underscore spelling is removed too');
      assert.equal(Buffer.from(String(h['x-user-profile']), 'latin1').toString('utf8'), '{"name":"Zoë"}');
      assert.equal(h['x-credential-identifier'], 'user-1');
      assert.equal(h['x-consumer-id'], undefined, 'no consumer mapping configured');
    }
    assert.equal(idp.count('basic'), 1, 'one fetch served all three keys');
  });

  it('expired, not-yet-valid, wrong iss and wrong aud, with and without leeway', async () => {
    const cases: [string, Record<string, unknown>, number, string?][] = [
      ['basic', { exp: now() - 10 }, 401, 'Token expired'],
      ['leeway', { exp: now() - 10 }, 200],
      ['leeway', { exp: now() - 60 }, 401, 'Token expired'],
      ['basic', { nbf: now() + 10 }, 401, 'Token not valid yet'],
      ['leeway', { nbf: now() + 10 }, 200],
      ['basic', { iss: 'https://evil.test' }, 401, 'Invalid issuer'],
      ['leeway', { iss: 'https://evil.test' }, 401, 'Invalid issuer'],
      ['basic', { aud: 'other' }, 401, 'Invalid audience'],
      ['leeway', { aud: ['other', 'more'] }, 401, 'Invalid audience'],
      ['basic', { aud: ['other', 'api'] }, 200],
      ['basic', { exp: undefined }, 401, "Missing 'exp' claim"],
    ];
    for (const [path, extra, status, message] of cases) {
      const res = await send(`${gw.url}/${path}`, { headers: bearer(await sign(rs, claims(extra))) });
      assert.equal(res.status, status, `${path} ${JSON.stringify(extra)}`);
      if (message) {
        assert.equal(res.json().message, message);
        assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"');
      }
    }
  });

  it('scopes: missing ones give 403 insufficient_scope; required claims; realm', async () => {
    const readOnly = await send(`${gw.url}/scopes`, { headers: bearer(await sign(rs, claims({ scope: 'read', email: 'a@b' }))) });
    assert.equal(readOnly.status, 403);
    assert.equal(readOnly.json().message, 'Insufficient scope');
    assert.equal(readOnly.headers['www-authenticate'], 'Bearer realm="api", error="insufficient_scope", scope="read write"');
    const noEmail = await send(`${gw.url}/scopes`, { headers: bearer(await sign(rs, claims({ scope: 'read write' }))) });
    assert.equal(noEmail.status, 401);
    assert.equal(noEmail.json().message, "Missing required claim 'email'");
    assert.equal((await send(`${gw.url}/scopes`, { headers: bearer(await sign(rs, claims({ scp: ['write', 'read'], email: 'a@b' }))) })).status, 200);
    const none = await send(`${gw.url}/scopes`);
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="api"');
  });

  it('alg none, HS256 and algorithm confusion (HS256 keyed with the RSA public key) are refused', async () => {
    const none = `${b64url({ alg: 'none', kid: 'rs-1' })}.${b64url(claims())}.`;
    assert.equal((await send(`${gw.url}/basic`, { headers: bearer(none) })).json().message, 'Bad token; invalid alg');
    const pem = (rs.jwk as unknown as { n: string }).n;
    for (const secret of [pem, 'c2VjcmV0', Buffer.from('secret')]) {
      const input = `${b64url({ alg: 'HS256', kid: 'hmac' })}.${b64url(claims())}`;
      const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      const res = await send(`${gw.url}/basic`, { headers: bearer(token) });
      assert.equal(res.status, 401);
      assert.equal(res.json().message, 'Bad token; invalid alg');
    }
    const ecAsRs = await sign({ ...ec, alg: 'ES256', kid: 'rs-1' }, claims());
    assert.equal((await send(`${gw.url}/basic`, { headers: bearer(ecAsRs) })).json().message, 'Invalid signature', 'the key for a kid decides the algorithm');
  });

  it('jwk, jku, x5u and x5c in the token header are ignored, and kid is never a URL or path', async () => {
    const before = idp.hits.length;
    const embedded = await sign(attacker, claims(), { jwk: attacker.jwk, jku: `${idp.url}/attacker?r=jku`, x5u: `${idp.url}/attacker?r=x5u`, x5c: ['AAAA'] });
    const res = await send(`${gw.url}/basic`, { headers: bearer(embedded) });
    assert.equal(res.status, 401);
    assert.equal(res.json().message, 'Invalid signature');
    for (const kid of ['../../attacker', `${idp.url}/attacker?r=kid`, '/etc/passwd', 'constructor', '__proto__']) {
      const token = await sign({ ...rs, kid }, claims());
      assert.equal((await send(`${gw.url}/basic`, { headers: bearer(token) })).status, 401, kid);
    }
    const fetched = idp.hits.slice(before);
    assert.ok(fetched.every((h) => h === '/jwks?r=basic'), `only the configured key set was fetched: ${fetched.join(' ')}`);
    assert.equal(idp.hits.filter((h) => h.includes('attacker')).length, 0);
  });

  it('a flood of unknown kids costs at most one fetch per cooldown', async () => {
    assert.equal((await send(`${gw.url}/flood`, { headers: bearer(await sign(rs, claims())) })).status, 200);
    assert.equal(idp.count('flood'), 1);
    const tokens = await Promise.all(Array.from({ length: 40 }, () => sign({ ...rs, kid: randomUUID() }, claims())));
    const results = await Promise.all(tokens.map((t) => send(`${gw.url}/flood`, { headers: bearer(t) })));
    assert.ok(results.every((r) => r.status === 401 && r.json().message === 'Invalid signature'));
    assert.equal(idp.count('flood'), 1, 'no fetch within the cooldown');
  });

  it('a new kid is fetched once the cooldown has passed (key rotation)', async () => {
    assert.equal((await send(`${gw.url}/rotate`, { headers: bearer(await sign(rs, claims())) })).status, 200);
    const firstFetch = Date.now();
    idp.keys = [...idp.keys, rotated.jwk];
    const fresh = await sign(rotated, claims());
    const early = await send(`${gw.url}/rotate`, { headers: bearer(fresh) });
    if (Date.now() - firstFetch < 1500) {
      assert.equal(early.status, 401, 'within the cooldown the unknown kid is not fetched');
      assert.equal(idp.count('rotate'), 1);
    }
    await sleep(Math.max(0, 2100 - (Date.now() - firstFetch)));
    assert.equal((await send(`${gw.url}/rotate`, { headers: bearer(fresh) })).status, 200);
    assert.equal(idp.count('rotate'), 2);
  });

  it('OpenID discovery: the document gives the key set and the issuer', async () => {
    const ok = await send(`${gw.url}/discovery`, { headers: bearer(await sign(ec, { iss: idp.url, sub: 's', exp: now() + 60 })) });
    assert.equal(ok.status, 200);
    assert.equal(idp.count('disco'), 1);
    assert.equal(idp.count('discovered'), 1);
    const wrongIss = await send(`${gw.url}/discovery`, { headers: bearer(await sign(ec, { iss: 'https://idp.test', sub: 's', exp: now() + 60 })) });
    assert.equal(wrongIss.json().message, 'Invalid issuer');
  });

  it('a key set that is down, slow or broken gives 503 within the timeout, then 503 at once until the cooldown', async () => {
    const token = await sign(rs, claims());
    for (const [path, timeout] of [['down', 500], ['slow', 300], ['broken', 300]] as const) {
      const started = Date.now();
      const res = await send(`${gw.url}/${path}`, { headers: bearer(token) });
      assert.equal(res.status, 503, path);
      assert.equal(res.json().message, 'Unable to verify the token: the identity provider keys are unavailable');
      assert.ok(Date.now() - started < timeout + 2500, `${path} answered within its timeout`);
      const again = Date.now();
      assert.equal((await send(`${gw.url}/${path}`, { headers: bearer(token) })).status, 503);
      assert.ok(Date.now() - again < 2000, `${path}: no new fetch within the cooldown`);
    }
    assert.equal(idp.count('slow'), 1);
    assert.ok(gw.logs.some((l) => l.msg === 'fetching the key set failed'));
  });

  it('anonymous: when the key set is unavailable the request goes on as the anonymous consumer', async () => {
    const res = await send(`${gw.url}/anon`, { headers: bearer(await sign(rs, claims())) });
    assert.equal(res.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'guest');
    assert.equal(lastUpstream().headers['x-anonymous-consumer'], 'true');
  });

  it('consumer_claim maps the token to a consumer (acl then uses its groups); groups_claim feeds X-Authenticated-Groups', async () => {
    const alice = await send(`${gw.url}/consumer`, { headers: bearer(await sign(rs, claims({ sub: 'alice' }))) });
    assert.equal(alice.status, 200);
    let h = lastUpstream().headers;
    assert.equal(h['x-consumer-username'], 'alice');
    assert.equal(h['x-consumer-custom-id'], 'A-1');
    assert.equal(h['x-credential-identifier'], 'alice');
    assert.equal(h['x-consumer-groups'], 'admins');
    assert.equal(h['x-anonymous-consumer'], undefined);
    assert.equal((await send(`${gw.url}/consumer`, { headers: bearer(await sign(rs, claims({ sub: 'A-1' }))) })).status, 200, 'custom_id matches too');
    const bob = await send(`${gw.url}/consumer`, { headers: bearer(await sign(rs, claims({ sub: 'bob' }))) });
    assert.equal(bob.status, 403, 'bob has no groups and a credential: 403');
    const stranger = await send(`${gw.url}/consumer`, { headers: bearer(await sign(rs, claims({ sub: 'stranger' }))) });
    assert.equal(stranger.status, 401);
    assert.equal(stranger.json().message, 'No consumer found for the token');

    const staff = await send(`${gw.url}/groups`, { headers: bearer(await sign(rs, claims({ groups: ['staff', 'ops'] }))) });
    assert.equal(staff.status, 200);
    h = lastUpstream().headers;
    assert.equal(h['x-authenticated-groups'], 'staff, ops');
    assert.equal(h['x-consumer-groups'], undefined);
    const outsider = await send(`${gw.url}/groups`, { headers: bearer(await sign(rs, claims({ groups: ['ops'] }))) });
    assert.equal(outsider.status, 403);
    assert.equal(outsider.json().message, 'You cannot consume this service');
    const noGroups = await send(`${gw.url}/groups`, { headers: bearer(await sign(rs, claims())) });
    assert.equal(noGroups.status, 403, 'authenticated without groups: 403, not 401');
  });

  it('malformed, truncated and 16 KB tokens get 401, never 500', async () => {
    const good = await sign(rs, claims());
    const big = await sign(rs, claims({ pad: 'x'.repeat(11_000) }));
    for (const token of ['abc', 'a.b.c', good.slice(0, -10), good.slice(0, 30), `${good}.x`, `${b64url({ alg: 'RS256', kid: 5 })}.${b64url(claims())}.x`, big.slice(0, -3)]) {
      const res = await send(`${gw.url}/basic`, { headers: bearer(token) });
      assert.equal(res.status, 401, token.slice(0, 30));
    }
    assert.equal((await send(`${gw.url}/basic`, { headers: bearer(big) })).status, 200);
  });

  it('the key cache belongs to the plugin instance: a reloaded config fetches its own keys', async () => {
    const fetches = idp.count('basic');
    gw.gateway.reload(config);
    assert.equal((await send(`${gw.url}/basic`, { headers: bearer(await sign(rs, claims())) })).status, 200);
    assert.equal(idp.count('basic'), fetches + 1);
  });

  it('tokens never reach the logs', async () => {
    const token = await sign(rs, claims());
    await send(`${gw.url}/basic?jwt=${token}`, { headers: bearer(token) });
    assert.ok(!JSON.stringify(gw.logs).includes(token.split('.')[2]!));
  });
});
