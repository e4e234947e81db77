import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import bcrypt from 'bcryptjs';
import { validateAgainst } from '../../config/validate.js';
import { normalizeConfig } from '../../config/normalize.js';
import { ConfigError } from '../../lib/errors.js';
import { PLUGINS } from '../registry.js';
import { startGateway, startUpstream, send, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { basicAuth } from './index.js';
import { checkStoredPassword, hashPassword, verifierFor } from './passwords.js';
import { GatewayScope } from '../../runtime/gateway-scope.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('basic-auth: schema and stored passwords', () => {
  it("fills Kong's defaults (realm \"service\"); priority 1100", () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validateAgainst(basicAuth.schema, config, 'config'), []);
    assert.deepEqual(config, { hide_credentials: false, realm: 'service' });
    assert.equal(basicAuth.priority, 1100);
  });

  it('verifies plain, bcrypt ($2a$, $2b$, $2y$) and scrypt passwords', async () => {
    const b = bcrypt.hashSync('s3cret', 4);
    const scrypted = await hashPassword('s3cret', { ln: 10, r: 8, p: 1 });
    assert.match(scrypted, /^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    for (const stored of ['s3cret', b, b.replace(/^\$2b\$/, '$2a$'), b.replace(/^\$2b\$/, '$2y$'), scrypted]) {
      const v = verifierFor(stored);
      assert.equal(await v.verify('s3cret'), true, stored.slice(0, 8));
      assert.equal(await v.verify('s3cret '), false);
      assert.equal(await v.verify(''), false);
    }
  });

  it('refuses malformed or too costly hashes, without echoing them', () => {
    assert.equal(checkStoredPassword('plain $2b$ inside'), undefined);
    assert.match(checkStoredPassword(`$2b$31$${'a'.repeat(53)}`)!, /bcrypt cost must be between 4 and 14/);
    assert.match(checkStoredPassword('$scrypt$ln=22,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA')!, /out of range/);
    assert.match(checkStoredPassword('$scrypt$ln=18,r=16,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA')!, /64 MiB/);
    const errors = (() => {
      try {
        normalizeConfig({ _format_version: '3.0', consumers: [{ username: 'u', basicauth_credentials: [{ username: 'u', password: '$2b$10$tooShort' }] }] }, PLUGINS);
        return [];
      } catch (err) {
        return (err as ConfigError).errors;
      }
    })();
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /^consumers\[0\]\.basicauth_credentials\[0\]\.password: must be a plain password, a bcrypt hash/);
    assert.ok(!errors[0]!.includes('tooShort'));
  });

  it('a config with hundreds of plain-password users loads without hashing them all up front', () => {
    const consumers = Array.from({ length: 400 }, (_, i) => ({ username: `u${i}`, basicauth_credentials: [{ username: `u${i}`, password: `pw-${i}` }] }));
    const normal = normalizeConfig({ _format_version: '3.0', consumers }, PLUGINS);
    const started = performance.now();
    const instance = basicAuth.create({ hide_credentials: false, realm: 'service' }, {
      consumers: new (class {
        credentials() {
          return normal.credentials.map((c) => ({ id: c.id, type: c.type, consumer: { id: c.consumerId, username: undefined, custom_id: undefined, tags: [] }, fields: c.fields }));
        }
        find() {
          return undefined;
        }
      })() as never,
      logger: { warn() {} } as never,
      nodeId: 'n',
      workerId: 0,
      version: '0',
      scope: new GatewayScope(),
    });
    assert.ok(instance.access);
    // Generous: hashing 400 passwords with scrypt would take seconds; building the map takes milliseconds.
    assert.ok(performance.now() - started < 1500);
  });
});

describe('basic-auth: through the gateway', () => {
  let up: Upstream;
  let gw: TestGateway;
  const route = (name: string, config: Record<string, unknown> = {}) => ({ name, paths: [`/${name}`], plugins: [{ name: 'basic-auth', config }] });

  before(async () => {
    up = await startUpstream();
    const bcrypted = bcrypt.hashSync('bcrypt-pass', 4).replace(/^\$2b\$/, '$2y$');
    const scrypted = await hashPassword('scrypt-pass', { ln: 10, r: 8, p: 1 });
    gw = await startGateway({
      _format_version: '3.0',
      services: [{ name: 'svc', url: up.url, routes: [route('default'), route('realm', { realm: 'admin area' }), route('hide', { hide_credentials: true }), route('anon', { anonymous: 'guest' })] }],
      consumers: [
        { username: 'alice', custom_id: 'A-1', basicauth_credentials: [{ username: 'alice-login', password: 'plain-pass:with:colons' }] },
        { username: 'bob', basicauth_credentials: [{ username: 'bob', password: bcrypted }] },
        { username: 'carol', basicauth_credentials: [{ username: 'carol', password: scrypted }] },
        { username: 'guest' },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  const lastUpstream = () => up.requests[up.requests.length - 1]!;

  it('plain, bcrypt and scrypt users authenticate; X-Credential-Identifier is the credential username', async () => {
    const res = await send(`${gw.url}/default`, { headers: { authorization: basic('alice-login', 'plain-pass:with:colons') } });
    assert.equal(res.status, 200);
    const h = lastUpstream().headers;
    assert.equal(h['x-consumer-id'], gw.gateway.snapshot.consumers.find('alice')!.id);
    assert.equal(h['x-consumer-username'], 'alice');
    assert.equal(h['x-consumer-custom-id'], 'A-1');
    assert.equal(h['x-credential-identifier'], 'alice-login');
    assert.equal(h['x-anonymous-consumer'], undefined);
    assert.equal(h.authorization, basic('alice-login', 'plain-pass:with:colons'), 'without hide_credentials the header goes upstream');
    assert.equal((await send(`${gw.url}/default`, { headers: { authorization: basic('bob', 'bcrypt-pass') } })).status, 200);
    assert.equal(lastUpstream().headers['x-credential-identifier'], 'bob');
    assert.equal((await send(`${gw.url}/default`, { headers: { authorization: basic('carol', 'scrypt-pass') } })).status, 200);
    // The second request is answered from the per-snapshot memo of successful checks.
    assert.equal((await send(`${gw.url}/default`, { headers: { authorization: basic('carol', 'scrypt-pass') } })).status, 200);
  });

  it('every failure is 401 Unauthorized with WWW-Authenticate: Basic realm="service"', async () => {
    const cases: (string | undefined)[] = [
      undefined,
      basic('alice-login', 'wrong'),
      basic('bob', 'scrypt-pass'),
      basic('nobody', 'plain-pass:with:colons'),
      basic('', 'x'),
      'Basic !!!notbase64',
      'Bearer abc',
      `Basic ${Buffer.from('no-colon').toString('base64')}`,
    ];
    for (const authorization of cases) {
      const res = await send(`${gw.url}/default`, { headers: authorization === undefined ? {} : { authorization } });
      assert.equal(res.status, 401, String(authorization));
      assert.equal(res.headers['www-authenticate'], 'Basic realm="service"');
      assert.equal(res.json().message, 'Unauthorized');
      assert.equal(typeof res.json().request_id, 'string');
    }
    assert.equal((await send(`${gw.url}/realm`)).headers['www-authenticate'], 'Basic realm="admin area"');
  });

  it('Proxy-Authorization is read first; Authorization when it names no known user', async () => {
    const proxyOk = await send(`${gw.url}/default`, { headers: { 'proxy-authorization': basic('bob', 'bcrypt-pass'), authorization: 'Bearer upstream-token' } });
    assert.equal(proxyOk.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'bob');
    const fallback = await send(`${gw.url}/default`, { headers: { 'proxy-authorization': basic('ghost', 'x'), authorization: basic('carol', 'scrypt-pass') } });
    assert.equal(fallback.status, 200);
    const wrong = await send(`${gw.url}/default`, { headers: { 'proxy-authorization': basic('bob', 'wrong'), authorization: basic('carol', 'scrypt-pass') } });
    assert.equal(wrong.status, 401, 'a known proxy user with a wrong password does not fall back');
  });

  it('hide_credentials removes the header it read', async () => {
    assert.equal((await send(`${gw.url}/hide`, { headers: { authorization: basic('carol', 'scrypt-pass') } })).status, 200);
    assert.equal(lastUpstream().headers.authorization, undefined);
    assert.equal((await send(`${gw.url}/hide`, { headers: { 'proxy-authorization': basic('carol', 'scrypt-pass'), authorization: 'Bearer keep-me' } })).status, 200);
    assert.equal(lastUpstream().headers['proxy-authorization'], undefined);
    assert.equal(lastUpstream().headers.authorization, 'Bearer keep-me');
  });

  it('anonymous: failures continue as the anonymous consumer', async () => {
    const res = await send(`${gw.url}/anon`, { headers: { authorization: basic('alice-login', 'wrong') } });
    assert.equal(res.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'guest');
    assert.equal(lastUpstream().headers['x-anonymous-consumer'], 'true');
  });

  it('passwords never reach the logs', () => {
    const text = JSON.stringify(gw.logs);
    for (const secret of ['plain-pass', 'bcrypt-pass', 'scrypt-pass', Buffer.from('carol:scrypt-pass').toString('base64')]) assert.ok(!text.includes(secret), secret);
  });
});
