import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CompactSign } from 'jose';
import { validateAgainst } from '../../config/validate.js';
import { normalizeConfig } from '../../config/normalize.js';
import { ConfigError } from '../../lib/errors.js';
import { PLUGINS } from '../registry.js';
import { startGateway, startUpstream, send, rawRequest, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { jwt } from './index.js';

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** A token signed with `key` (jose), with any header. */
async function sign(alg: string, key: KeyObject | Uint8Array, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader({ alg, typ: 'JWT', ...header }).sign(key);
}

/** An HS* token signed by hand (any bytes as the secret, as an attacker would). */
function hmacToken(alg: 'HS256' | 'HS384' | 'HS512', secret: string | Buffer, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const input = `${b64url({ alg, typ: 'JWT', ...header })}.${b64url(claims)}`;
  const sig = createHmac(`sha${alg.slice(2)}`, secret).update(input).digest('base64url');
  return `${input}.${sig}`;
}

const now = () => Math.floor(Date.now() / 1000);
const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }) as string;

const ASYMMETRIC: Record<string, () => { publicKey: KeyObject; privateKey: KeyObject }> = {
  RS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  RS384: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  RS512: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  PS256: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  PS384: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  PS512: () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
  ES256: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  ES384: () => generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  ES512: () => generateKeyPairSync('ec', { namedCurve: 'P-521' }),
  EdDSA: () => generateKeyPairSync('ed25519'),
};

describe('jwt: schema', () => {
  it("fills Kong's defaults; priority 1450", () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validateAgainst(jwt.schema, config, 'config'), []);
    assert.deepEqual(config, { uri_param_names: ['jwt'], cookie_names: [], key_claim_name: 'iss', secret_is_base64: false, run_on_preflight: true, maximum_expiration: 0, header_names: ['authorization'] });
    assert.equal(jwt.priority, 1450);
  });

  it('maximum_expiration needs exp in claims_to_verify; claims_to_verify takes exp and nbf only', () => {
    const config: Record<string, unknown> = { maximum_expiration: 60 };
    assert.deepEqual(validateAgainst(jwt.schema, config, 'config'), []);
    assert.equal(jwt.check!(config as never), 'config.claims_to_verify: must contain "exp" when config.maximum_expiration is above 0');
    assert.equal(jwt.check!({ ...config, claims_to_verify: ['exp'] } as never), undefined);
    assert.deepEqual(validateAgainst(jwt.schema, { claims_to_verify: ['iat'] }, 'config'), ['config.claims_to_verify[0]: must be one of: exp, nbf']);
    assert.deepEqual(validateAgainst(jwt.schema, { maximum_expiration: 31536001 }, 'config'), ['config.maximum_expiration: must be between 0 and 31536000']);
  });

  it('credentials: a PEM public key is refused as an HMAC secret; rsa_public_key must be PEM', () => {
    const errors = (secret: Record<string, unknown>) => {
      try {
        normalizeConfig({ _format_version: '3.0', consumers: [{ username: 'c', jwt_secrets: [secret] }] }, PLUGINS);
        return [];
      } catch (err) {
        return (err as ConfigError).errors;
      }
    };
    const key = pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    assert.deepEqual(errors({ key: 'k', algorithm: 'HS256', secret: key }), [
      'consumers[0].jwt_secrets[0].secret: must not be a PEM key: HS* secrets are shared secrets (use rsa_public_key with an asymmetric algorithm)',
    ]);
    assert.deepEqual(errors({ key: 'k', algorithm: 'ES256', rsa_public_key: 'not a key' }), ['consumers[0].jwt_secrets[0].rsa_public_key: must be a PEM public key (-----BEGIN PUBLIC KEY-----)']);
    assert.deepEqual(errors({ key: 'k', algorithm: 'ES256', rsa_public_key: key }), []);
  });

  it('a public key that does not fit its algorithm is refused when the snapshot is built', async () => {
    const ec = pem(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const small = pem(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey);
    const doc = {
      _format_version: '3.0',
      services: [{ name: 's', url: 'http://127.0.0.1:9', routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'jwt' }] }] }],
      consumers: [{ username: 'c', jwt_secrets: [{ key: 'a', algorithm: 'RS256', rsa_public_key: ec }, { key: 'b', algorithm: 'RS256', rsa_public_key: small }] }],
    };
    await assert.rejects(startGateway(doc), (err: ConfigError) => {
      assert.match(err.errors[0]!, /jwt_secrets "a": an RS256 key must be an RSA key \(got ec\)/);
      assert.match(err.errors[0]!, /jwt_secrets "b": RSA keys must have at least 2048 bits/);
      return true;
    });
  });
});

describe('jwt: through the gateway', () => {
  let up: Upstream;
  let gw: TestGateway;
  let keyServer: http.Server;
  const keyServerHits: string[] = [];
  const pairs = Object.fromEntries(Object.entries(ASYMMETRIC).map(([alg, make]) => [alg, make()]));
  const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const route = (name: string, config: Record<string, unknown> = {}) => ({ name, paths: [`/${name}`], plugins: [{ name: 'jwt', config }] });
  let jkuUrl = '';

  before(async () => {
    keyServer = http.createServer((req, res) => {
      keyServerHits.push(req.url ?? '');
      res.end('{}');
    });
    await new Promise<void>((r) => keyServer.listen(0, '127.0.0.1', () => r()));
    jkuUrl = `http://127.0.0.1:${(keyServer.address() as { port: number }).port}/jwks`;
    up = await startUpstream();
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: up.url,
          routes: [
            route('default'),
            route('realm', { realm: 'api' }),
            route('claims', { claims_to_verify: ['exp', 'nbf'] }),
            route('maxexp', { claims_to_verify: ['exp'], maximum_expiration: 600 }),
            route('sources', { uri_param_names: ['token'], cookie_names: ['session'], header_names: ['x-token'] }),
            route('b64', { secret_is_base64: true }),
            route('sub', { key_claim_name: 'kid' }),
            route('preflight', { run_on_preflight: false }),
            route('anon', { anonymous: 'guest' }),
          ],
        },
      ],
      consumers: [
        {
          username: 'alice',
          custom_id: 'A-1',
          jwt_secrets: [
            { key: 'alice-iss', secret: 'alice-hmac-secret' },
            { key: 'alice-384', algorithm: 'HS384', secret: 'alice-384-secret' },
            { key: 'alice-512', algorithm: 'HS512', secret: 'alice-512-secret' },
            { key: 'b64-iss', secret: Buffer.from('raw\u0000secret').toString('base64') },
          ],
        },
        { username: 'bob', jwt_secrets: Object.entries(pairs).map(([alg, p]) => ({ key: `bob-${alg}`, algorithm: alg, rsa_public_key: pem(p.publicKey) })) },
        { username: 'guest' },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await up?.close();
    keyServer?.closeAllConnections();
    await new Promise((r) => keyServer?.close(r));
  });

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const lastUpstream = () => up.requests[up.requests.length - 1]!;

  it('HS256: 200; upstream gets the consumer headers and X-Credential-Identifier = the key', async () => {
    const token = hmacToken('HS256', 'alice-hmac-secret', { iss: 'alice-iss' });
    const res = await send(`${gw.url}/default`, { headers: bearer(token) });
    assert.equal(res.status, 200);
    const h = lastUpstream().headers;
    assert.equal(h['x-consumer-id'], gw.gateway.snapshot.consumers.find('alice')!.id);
    assert.equal(h['x-consumer-username'], 'alice');
    assert.equal(h['x-consumer-custom-id'], 'A-1');
    assert.equal(h['x-credential-identifier'], 'alice-iss');
    assert.equal(h['x-anonymous-consumer'], undefined);
    assert.equal((await send(`${gw.url}/default`, { headers: bearer(hmacToken('HS384', 'alice-384-secret', { iss: 'alice-384' })) })).status, 200);
    assert.equal((await send(`${gw.url}/default`, { headers: bearer(hmacToken('HS512', 'alice-512-secret', { iss: 'alice-512' })) })).status, 200);
  });

  it('every asymmetric algorithm verifies with its credential, and only that algorithm', async () => {
    for (const [alg, p] of Object.entries(pairs)) {
      const token = await sign(alg, p.privateKey, { iss: `bob-${alg}` });
      const res = await send(`${gw.url}/default?jwt=${token}`);
      assert.equal(res.status, 200, alg);
      assert.equal(lastUpstream().headers['x-credential-identifier'], `bob-${alg}`);
      const forged = await sign(alg, ASYMMETRIC[alg]!().privateKey, { iss: `bob-${alg}` });
      const bad = await send(`${gw.url}/default?jwt=${forged}`);
      assert.equal(bad.status, 401, `${alg} with another key`);
      assert.equal(bad.body, '{"message":"Invalid signature"}');
    }
    const other = await sign('PS256', pairs.RS256!.privateKey, { iss: 'bob-RS256' });
    assert.equal((await send(`${gw.url}/default?jwt=${other}`)).body, '{"message":"Invalid algorithm"}', 'the credential pins the algorithm');
  });

  it('alg none is refused', async () => {
    const none = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: 'alice-iss' })}.`;
    const res = await send(`${gw.url}/default`, { headers: bearer(none) });
    assert.equal(res.status, 401);
    assert.equal(res.body, '{"message":"Bad token; invalid alg"}');
    const noneUpper = `${b64url({ alg: 'NONE' })}.${b64url({ iss: 'alice-iss' })}.`;
    assert.equal((await send(`${gw.url}/default`, { headers: bearer(noneUpper) })).body, '{"message":"Bad token; invalid alg"}');
  });

  it('algorithm confusion: an HS256 token signed with the RSA public key is refused', async () => {
    for (const secret of [pem(pairs.RS256!.publicKey), pairs.RS256!.publicKey.export({ type: 'pkcs1', format: 'der' })]) {
      const token = hmacToken('HS256', secret, { iss: 'bob-RS256' });
      const res = await send(`${gw.url}/default`, { headers: bearer(token) });
      assert.equal(res.status, 401);
      assert.equal(res.body, '{"message":"Invalid algorithm"}');
    }
  });

  it('jwk, jku, x5u and x5c in the token header are ignored', async () => {
    const jwk = attacker.publicKey.export({ format: 'jwk' });
    const token = await sign('RS256', attacker.privateKey, { iss: 'bob-RS256' }, { jwk, jku: jkuUrl, x5u: jkuUrl, x5c: ['AAAA'], kid: '../../jwks' });
    const res = await send(`${gw.url}/default`, { headers: bearer(token) });
    assert.equal(res.status, 401);
    assert.equal(res.body, '{"message":"Invalid signature"}');
    assert.deepEqual(keyServerHits, [], 'no URL from the token was fetched');
  });

  it("errors are compact JSON without request_id, and Kong master's WWW-Authenticate values", async () => {
    const missing = await send(`${gw.url}/default`);
    assert.equal(missing.status, 401);
    assert.equal(missing.body, '{"message":"Unauthorized"}');
    assert.equal(missing.headers['www-authenticate'], 'Bearer');
    const realmMissing = await send(`${gw.url}/realm`);
    assert.equal(realmMissing.headers['www-authenticate'], 'Bearer realm="api"');
    const realmBad = await send(`${gw.url}/realm`, { headers: bearer('x.y.z') });
    assert.equal(realmBad.headers['www-authenticate'], 'Bearer realm="api", error="invalid_token"');
    const bad = await send(`${gw.url}/default`, { headers: bearer('x.y.z') });
    assert.equal(bad.headers['www-authenticate'], 'Bearer error="invalid_token"');
    assert.equal(bad.body, '{"message":"Bad token; invalid JSON"}');
  });

  it('key claim problems: missing, empty, unknown; the header is read when the payload has none', async () => {
    const cases: [string, string][] = [
      [hmacToken('HS256', 'alice-hmac-secret', { sub: 'x' }), `{"message":"No mandatory 'iss' in claims"}`],
      [hmacToken('HS256', 'alice-hmac-secret', { iss: '' }), `{"message":"Invalid 'iss' in claims"}`],
      [hmacToken('HS256', 'alice-hmac-secret', { iss: 'who' }), `{"message":"No credentials found for given 'iss'"}`],
      [hmacToken('HS256', 'alice-hmac-secret', { iss: 42 }), `{"message":"No credentials found for given 'iss'"}`],
    ];
    for (const [token, body] of cases) assert.equal((await send(`${gw.url}/default`, { headers: bearer(token) })).body, body);
    assert.equal((await send(`${gw.url}/default`, { headers: bearer(hmacToken('HS256', 'alice-hmac-secret', {}, { iss: 'alice-iss' })) })).status, 200);
    assert.equal((await send(`${gw.url}/sub`, { headers: bearer(hmacToken('HS256', 'alice-hmac-secret', {}, { kid: 'alice-iss' })) })).status, 200, 'key_claim_name: kid');
  });

  it('claims_to_verify: expired, not yet valid, not a number (the errors object is the body)', async () => {
    const t = now();
    const cases: [Record<string, unknown>, string][] = [
      [{ iss: 'alice-iss', exp: t - 1 }, '{"exp":"token expired"}'],
      [{ iss: 'alice-iss', exp: t }, '{"exp":"token expired"}'],
      [{ iss: 'alice-iss', nbf: t + 60 }, '{"nbf":"token not valid yet"}'],
      [{ iss: 'alice-iss', exp: 'soon' }, '{"exp":"must be a number"}'],
      [{ iss: 'alice-iss', exp: t - 5, nbf: t + 60 }, '{"exp":"token expired","nbf":"token not valid yet"}'],
    ];
    for (const [claims, body] of cases) {
      const res = await send(`${gw.url}/claims`, { headers: bearer(hmacToken('HS256', 'alice-hmac-secret', claims)) });
      assert.equal(res.status, 401);
      assert.equal(res.body, body);
    }
    assert.equal((await send(`${gw.url}/claims`, { headers: bearer(hmacToken('HS256', 'alice-hmac-secret', { iss: 'alice-iss', exp: t + 60, nbf: t - 1 })) })).status, 200);
    assert.equal((await send(`${gw.url}/claims`, { headers: bearer(hmacToken('HS256', 'alice-hmac-secret', { iss: 'alice-iss' })) })).status, 200, 'absent claims are not checked (Kong)');
    const expiredUnchecked = hmacToken('HS256', 'alice-hmac-secret', { iss: 'alice-iss', exp: t - 100 });
    assert.equal((await send(`${gw.url}/default`, { headers: bearer(expiredUnchecked) })).status, 200, 'exp is checked only when listed');
  });

  it('maximum_expiration: a missing or too distant exp is refused', async () => {
    const t = now();
    for (const claims of [{ iss: 'alice-iss' }, { iss: 'alice-iss', exp: t + 3600 }]) {
      const res = await send(`${gw.url}/maxexp`, { headers: bearer(hmacToken('HS256', 'alice-hmac-secret', claims)) });
      assert.equal(res.status, 401);
      assert.equal(res.body, '{"exp":"exceeds maximum allowed expiration"}');
    }
    assert.equal((await send(`${gw.url}/maxexp`, { headers: bearer(hmacToken('HS256', 'alice-hmac-secret', { iss: 'alice-iss', exp: t + 300 })) })).status, 200);
  });

  it('malformed, truncated and 16 KB tokens get 401, never 500', async () => {
    const good = hmacToken('HS256', 'alice-hmac-secret', { iss: 'alice-iss' });
    const huge = hmacToken('HS256', 'alice-hmac-secret', { iss: 'alice-iss', pad: 'x'.repeat(11_000) });
    const cases = [
      'abc',
      'a.b',
      '..',
      '...',
      good.slice(0, good.length - 5),
      good.slice(0, good.indexOf('.') + 4),
      `${good}.extra`,
      good.replace(/\.[^.]+$/, '.!!!'),
      `${b64url('[1,2]')}.${b64url({ iss: 'alice-iss' })}.sig`,
      `${b64url({ alg: 'HS256' })}.${b64url('"str"')}.sig`,
      `${b64url({ alg: 'HS256' })}.${b64url('[]')}.sig`,
      `${b64url({ alg: ['HS256'] })}.${b64url({})}.sig`,
      `${Buffer.from([0xff, 0xfe]).toString('base64url')}.${b64url({})}.sig`,
      huge.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
    ];
    for (const token of cases) {
      const res = await send(`${gw.url}/default`, { headers: bearer(token) });
      assert.equal(res.status, 401, token.slice(0, 40));
      assert.match(res.json().message, /^(Bad token; |Invalid signature|No mandatory)/);
    }
    assert.ok(huge.length > 14_000);
    assert.equal((await send(`${gw.url}/default`, { headers: bearer(huge) })).status, 200, 'a large valid token still works');
    const tooLarge = `${'a'.repeat(17_000)}.b.c`;
    const raw = await rawRequest(gw.port, `GET /default HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tooLarge}\r\nConnection: close\r\n\r\n`);
    assert.match(raw, /^HTTP\/1\.1 431 /, 'above the header limit the listener answers 431');
  });

  it('tokens from the query, cookies and headers; the same token twice is fine, two different ones are not', async () => {
    const token = hmacToken('HS256', 'alice-hmac-secret', { iss: 'alice-iss' });
    const other = hmacToken('HS256', 'alice-hmac-secret', { iss: 'alice-iss', n: 1 });
    assert.equal((await send(`${gw.url}/sources?token=${token}`)).status, 200);
    assert.equal((await send(`${gw.url}/sources`, { headers: { cookie: `a=b; session=${token}` } })).status, 200);
    assert.equal((await send(`${gw.url}/sources`, { headers: { 'x-token': `bearer ${token}` } })).status, 200);
    assert.equal((await send(`${gw.url}/sources?token=${token}`, { headers: { 'x-token': `Bearer ${token}` } })).status, 200);
    const many = await send(`${gw.url}/sources?token=${token}`, { headers: { 'x-token': `Bearer ${other}` } });
    assert.equal(many.body, '{"message":"Multiple tokens provided"}');
    assert.equal((await send(`${gw.url}/sources`, { headers: bearer(token) })).status, 401, 'authorization is not a configured source here');
    assert.equal((await send(`${gw.url}/default?jwt`)).body, '{"message":"Unrecognizable token"}');
  });

  it('secret_is_base64 decodes the stored secret', async () => {
    const token = hmacToken('HS256', Buffer.from('raw\u0000secret'), { iss: 'b64-iss' });
    assert.equal((await send(`${gw.url}/b64`, { headers: bearer(token) })).status, 200);
    assert.equal((await send(`${gw.url}/default`, { headers: bearer(token) })).status, 401);
  });

  it('run_on_preflight and anonymous', async () => {
    assert.equal((await send(`${gw.url}/preflight`, { method: 'OPTIONS' })).status, 200);
    const anon = await send(`${gw.url}/anon`, { headers: bearer('garbage') });
    assert.equal(anon.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'guest');
    assert.equal(lastUpstream().headers['x-anonymous-consumer'], 'true');
  });

  it('tokens never reach the logs', async () => {
    const token = hmacToken('HS256', 'alice-hmac-secret', { iss: 'alice-iss' });
    await send(`${gw.url}/default?jwt=${token}`);
    await send(`${gw.url}/default`, { headers: bearer(token) });
    const text = JSON.stringify(gw.logs);
    assert.ok(!text.includes(token.split('.')[2]!) && !text.includes('alice-hmac-secret'));
  });
});
