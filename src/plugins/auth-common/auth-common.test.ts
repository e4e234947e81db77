import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Exchange } from '../../pipeline/exchange.js';
import { startGateway, startUpstream, send, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { decodeJwt } from './compact-jwt.js';
import { cookieValue, decodeBase64, headerValue, headerValues, removeQueryArg, removeUpstreamHeader, utf8 } from './request.js';
import { digestsEqual, Fingerprinter, secretsEqual } from './secrets.js';
import { findTokens } from './tokens.js';

/** An Exchange over a fake request with the given raw headers and URL. */
function exchange(url: string, headers: [string, string][]): Exchange {
  const rawHeaders = headers.flat();
  const distinct: Record<string, string[]> = {};
  for (const [k, v] of headers) (distinct[k.toLowerCase()] ??= []).push(v);
  const req = { url, method: 'GET', rawHeaders, headersDistinct: distinct, headers: {} } as unknown as IncomingMessage;
  const ex = new Exchange(req, undefined as never, 'rid', 0);
  const q = url.indexOf('?');
  ex.query = q < 0 ? null : url.slice(q + 1);
  return ex;
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('auth-common helpers', () => {
  it('strict base64: malformed input is refused, not silently skipped', () => {
    assert.equal(decodeBase64('dXNlcjpwYXNz')?.toString(), 'user:pass');
    assert.equal(decodeBase64('dXNlcjpwYXM')?.toString(), 'user:pas', 'padding is optional');
    assert.equal(decodeBase64('dXNlcjpwYXM=')?.toString(), 'user:pas');
    for (const bad of ['dXNlcjpwYXNz!', 'dXNl cjpw', 'a', 'dXNlcjpwYXM==', 'ab=c']) assert.equal(decodeBase64(bad), undefined, bad);
    assert.equal(decodeBase64('-_-_', 'standard'), undefined);
    assert.deepEqual(decodeBase64('-_-_', 'url'), Buffer.from([0xfb, 0xff, 0xbf]));
    assert.equal(utf8(Buffer.from([0xc3, 0x28])), undefined);
    assert.equal(utf8(Buffer.from('Zoë')), 'Zoë');
  });

  it('constant-time comparisons and keyed fingerprints', () => {
    assert.equal(secretsEqual('abc', 'abc'), true);
    assert.equal(secretsEqual('abc', 'abcd'), false);
    assert.equal(digestsEqual(Buffer.from('ab'), Buffer.from('abc')), false);
    const f = new Fingerprinter();
    assert.equal(f.of('a', 'bc'), f.of('a', 'bc'));
    assert.notEqual(f.of('a', 'bc'), f.of('ab', 'c'));
    assert.notEqual(f.of('k'), new Fingerprinter().of('k'), 'the key is random per instance');
  });

  it('query and header edits keep everything else as it was', () => {
    assert.equal(removeQueryArg('a=%2F&apikey=1&apikey&b=2&api%6Bey=3', 'apikey'), 'a=%2F&b=2');
    assert.equal(removeQueryArg(null, 'apikey'), null);
    const h = { apikey: 'x', 'x-user': 'a', x_user: 'b', 'x_user-id': 'c', other: 'd' };
    removeUpstreamHeader(h, 'x-user');
    assert.deepEqual(h, { apikey: 'x', 'x_user-id': 'c', other: 'd' });
    const k = { 'x-api-key': 'a', x_api_key: 'b', other: 'd' };
    removeUpstreamHeader(k, 'x_api_key');
    assert.deepEqual(k, { other: 'd' });
    assert.equal(headerValue('a\r\nb'), 'ab');
    assert.equal(Buffer.from(headerValue('Zoë'), 'latin1').toString('utf8'), 'Zoë');
  });

  it('headers: case-insensitive, "_" names also find "-" headers, repeats are kept; cookies', () => {
    const ex = exchange('/', [['X-Api-Key', 'a'], ['x-api-key', 'b'], ['Cookie', 'a=1; Session=tok; session=other'], ['Cookie', 'z=2']]);
    assert.deepEqual(headerValues(ex, 'X-API-KEY'), ['a', 'b']);
    assert.deepEqual(headerValues(ex, 'x_api_key'), ['a', 'b']);
    assert.equal(headerValues(ex, 'apikey'), undefined);
    assert.equal(cookieValue(ex, 'session'), 'tok');
    assert.equal(cookieValue(ex, 'z'), '2');
    assert.equal(cookieValue(ex, 'missing'), undefined);
  });

  it("token search follows Kong's jwt: query, cookies, Bearer headers; duplicates collapse", () => {
    const sources = { uri_param_names: ['jwt'], cookie_names: ['tok'], header_names: ['authorization'] };
    assert.deepEqual(findTokens(exchange('/?jwt=t1', [['authorization', 'Bearer t1'], ['cookie', 'tok=t1']]), sources), { kind: 'one', token: 't1' });
    assert.deepEqual(findTokens(exchange('/?jwt=t1', [['authorization', 'Bearer t2']]), sources), { kind: 'many' });
    assert.deepEqual(findTokens(exchange('/', [['authorization', 'Basic abc']]), sources), { kind: 'none' });
    assert.deepEqual(findTokens(exchange('/', [['authorization', 'bearer   t3']]), sources), { kind: 'one', token: 't3' });
    assert.deepEqual(findTokens(exchange('/?jwt', []), sources), { kind: 'one', token: true });
    assert.deepEqual(findTokens(exchange('/?jwt=', []), sources), { kind: 'none' });
  });

  it("JWT decoding reports Kong's reasons and never throws", () => {
    const algs = new Set(['HS256', 'RS256']);
    const h = b64url({ alg: 'HS256' });
    const c = b64url({ iss: 'x' });
    assert.deepEqual(decodeJwt(`${h}.${c}.c2ln`, algs), { header: { alg: 'HS256' }, claims: { iss: 'x' }, alg: 'HS256' });
    const cases: [string, string][] = [
      ['', 'invalid JSON'],
      ['a.b', 'invalid JSON'],
      [`${h}.${c}`, 'invalid JSON'],
      [`${h}..sig`, 'invalid JSON'],
      [`x${h}.${c}.sig`, 'invalid JSON'],
      [`${b64url('str')}.${c}.sig`, 'invalid JSON'],
      [`${b64url({ alg: 'none' })}.${c}.`, 'invalid alg'],
      [`${b64url({ alg: 'HS512' })}.${c}.sig`, 'invalid alg'],
      [`${b64url({})}.${c}.sig`, 'invalid alg'],
      [`${h}.${b64url([1])}.sig`, 'invalid claims'],
      [`${h}.${b64url(5)}.sig`, 'invalid claims'],
      [`${h}.${c}.s.i.g`, 'invalid signature'],
      [`${h}.${c}.%%%`, 'invalid signature'],
      [`${'A'.repeat(16_384)}.${c}.sig`, 'invalid JSON'],
    ];
    for (const [token, reason] of cases) assert.equal(decodeJwt(token, algs), reason, token.slice(0, 30));
  });
});

describe('several auth plugins on one route (Kong\'s logical OR with anonymous)', () => {
  let up: Upstream;
  let gw: TestGateway;
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  const hs256 = async (iss: string, secret: string) => {
    const { createHmac } = await import('node:crypto');
    const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ iss })}`;
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  };

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: up.url,
          routes: [
            {
              name: 'or',
              paths: ['/or'],
              plugins: [
                { name: 'jwt', config: { anonymous: 'guest' } },
                { name: 'key-auth', config: { anonymous: 'guest' } },
                { name: 'basic-auth', config: { anonymous: 'guest' } },
              ],
            },
            { name: 'and', paths: ['/and'], plugins: [{ name: 'key-auth' }, { name: 'basic-auth' }] },
          ],
        },
      ],
      consumers: [
        { username: 'alice', keyauth_credentials: [{ key: 'alice-or-key' }], jwt_secrets: [{ key: 'alice-jwt', secret: 'alice-jwt-secret' }] },
        { username: 'bob', basicauth_credentials: [{ username: 'bob', password: 'bob-or-pass' }] },
        // The anonymous consumer gets a consumer-scoped plugin: nobody is let through unauthenticated.
        { username: 'guest', plugins: [{ name: 'request-termination', config: { status_code: 401, message: 'Authentication required' } }] },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  const lastUpstream = () => up.requests[up.requests.length - 1]!;

  it('any one plugin passing authenticates the request', async () => {
    assert.equal((await send(`${gw.url}/or`, { headers: { apikey: 'alice-or-key' } })).status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'alice');
    assert.equal((await send(`${gw.url}/or`, { headers: { authorization: basic('bob', 'bob-or-pass') } })).status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'bob');
    assert.equal(lastUpstream().headers['x-credential-identifier'], 'bob');
    assert.equal((await send(`${gw.url}/or`, { headers: { authorization: `Bearer ${await hs256('alice-jwt', 'alice-jwt-secret')}` } })).status, 200);
    assert.equal(lastUpstream().headers['x-credential-identifier'], 'alice-jwt');
  });

  it('a failed plugin sets the anonymous consumer, a later one that passes replaces it', async () => {
    const res = await send(`${gw.url}/or`, { headers: { apikey: 'wrong', authorization: basic('bob', 'bob-or-pass') } });
    assert.equal(res.status, 200);
    const h = lastUpstream().headers;
    assert.equal(h['x-consumer-username'], 'bob');
    assert.equal(h['x-anonymous-consumer'], undefined);
    assert.equal(h['x-credential-identifier'], 'bob');
  });

  it('once authenticated, later plugins with anonymous do nothing', async () => {
    const res = await send(`${gw.url}/or`, { headers: { apikey: 'alice-or-key', authorization: basic('bob', 'wrong') } });
    assert.equal(res.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'alice');
  });

  it('all failing: the anonymous consumer, whose own plugin answers 401', async () => {
    const res = await send(`${gw.url}/or`, { headers: { 'x-consumer-id': 'forged' } });
    assert.equal(res.status, 401);
    assert.equal(res.body, '{"message":"Authentication required"}');
  });

  it('without anonymous every plugin must pass (the last one names the consumer)', async () => {
    assert.equal((await send(`${gw.url}/and`, { headers: { apikey: 'alice-or-key' } })).status, 401);
    const both = await send(`${gw.url}/and`, { headers: { apikey: 'alice-or-key', authorization: basic('bob', 'bob-or-pass') } });
    assert.equal(both.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'bob');
  });

  it('no credential appears in the logs', () => {
    const text = JSON.stringify(gw.logs);
    for (const secret of ['alice-or-key', 'bob-or-pass', 'alice-jwt-secret', Buffer.from('bob:bob-or-pass').toString('base64')]) assert.ok(!text.includes(secret), secret);
  });
});
