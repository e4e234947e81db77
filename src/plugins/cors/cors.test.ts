import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateAgainst } from '../../config/validate.js';
import { startGateway, startUpstream, send, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { cors } from './index.js';
import { normalizeOrigin } from './origins.js';
import type { CorsConfig } from './schema.js';

const PREFLIGHT = { origin: 'https://app.example.com', 'access-control-request-method': 'POST' };
const acHeaders = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => k.startsWith('access-control-') || k === 'vary'));

describe('cors: schema and origins', () => {
  it('Kong defaults: all nine methods', () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validateAgainst(cors.schema, config, 'config'), []);
    assert.deepEqual(config, {
      methods: ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'],
      credentials: false,
      private_network: false,
      preflight_continue: false,
      allow_origin_absent: true,
    });
    assert.equal(cors.check!({ origins: ['(bad'] } as CorsConfig), "config.origins[0]: '(bad' is not a valid regex");
    assert.equal(cors.priority, 2000);
  });

  it('normalises origins: default ports dropped', () => {
    assert.deepEqual(normalizeOrigin('https://a.example.com:443'), { origin: 'https://a.example.com', host: 'a.example.com' });
    assert.deepEqual(normalizeOrigin('http://a.example.com:80/x'), { origin: 'http://a.example.com', host: 'a.example.com' });
    assert.deepEqual(normalizeOrigin('http://a.example.com:8080'), { origin: 'http://a.example.com:8080', host: 'a.example.com' });
  });
});

describe('cors: through the gateway', () => {
  let up: Upstream;
  let gw: TestGateway;
  const route = (name: string, config: Record<string, unknown>) => ({ name, paths: [`/${name}`], plugins: [{ name: 'cors', config }] });

  before(async () => {
    up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', vary: 'Accept-Encoding', 'access-control-allow-origin': 'https://upstream.example' });
      res.end(req.method);
    });
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 's',
          url: up.url,
          routes: [
            route('open', {}),
            route('single', { origins: ['https://only.example.com'], exposed_headers: ['X-Total', 'X-Page'], max_age: 3600, credentials: true }),
            route('list', { origins: ['https://a.example.com', 'http://b.example.com:8080', '.*\\.trusted\\.com', 'https://(dev|qa)\\.example\\.org'], headers: ['Content-Type', 'Authorization'], methods: ['GET', 'POST'] }),
            route('starcreds', { origins: ['https://x.example.com', '*'], credentials: true }),
            route('continue', { preflight_continue: true }),
            route('pna', { private_network: true }),
            route('absent', { allow_origin_absent: false }),
          ],
        },
      ],
    });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it('preflight: 200, empty body, echoed request headers, all methods; not proxied', async () => {
    const calls = up.requests.length;
    const res = await send(`${gw.url}/open`, { method: 'OPTIONS', headers: { ...PREFLIGHT, 'access-control-request-headers': 'X-Foo, Content-Type' } });
    assert.equal(res.status, 200);
    assert.equal(res.body, '');
    assert.equal(res.headers['content-length'], '0');
    assert.deepEqual(acHeaders(res.headers), {
      'access-control-allow-origin': '*',
      'access-control-allow-headers': 'X-Foo, Content-Type',
      'access-control-allow-methods': 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT',
    });
    assert.equal(up.requests.length, calls);
  });

  it('an OPTIONS without Access-Control-Request-Method is not a preflight: proxied, with CORS headers', async () => {
    const res = await send(`${gw.url}/open`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com' } });
    assert.equal(res.body, 'OPTIONS');
    assert.equal(res.headers['access-control-allow-origin'], '*');
  });

  it('one plain origin is always sent as configured, with Vary, credentials, max age; exposed headers on actual responses only', async () => {
    const pre = await send(`${gw.url}/single`, { method: 'OPTIONS', headers: PREFLIGHT });
    assert.deepEqual(acHeaders(pre.headers), {
      'access-control-allow-origin': 'https://only.example.com',
      'access-control-allow-credentials': 'true',
      'access-control-allow-methods': 'GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT',
      'access-control-max-age': '3600',
      vary: 'Origin',
    });
    const actual = await send(`${gw.url}/single`, { headers: { origin: 'https://evil.example.com' } });
    assert.deepEqual(acHeaders(actual.headers), {
      'access-control-allow-origin': 'https://only.example.com',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'X-Total,X-Page',
      vary: 'Accept-Encoding, Origin',
    });
  });

  it('a list: exact origins (default port ignored), host regexes and full-origin regexes, anchored', async () => {
    const origin = async (o: string) => (await send(`${gw.url}/list`, { headers: { origin: o } })).headers['access-control-allow-origin'];
    assert.equal(await origin('https://a.example.com:443'), 'https://a.example.com');
    assert.equal(await origin('http://b.example.com:8080'), 'http://b.example.com:8080');
    assert.equal(await origin('http://b.example.com'), undefined);
    assert.equal(await origin('https://api.trusted.com'), 'https://api.trusted.com', 'a regex without ":" matches the host');
    assert.equal(await origin('http://api.trusted.com:9000'), 'http://api.trusted.com:9000');
    assert.equal(await origin('https://api.trusted.com.evil.net'), undefined, 'anchored at the end');
    assert.equal(await origin('https://qa.example.org'), 'https://qa.example.org');
    assert.equal(await origin('http://qa.example.org'), undefined);
    assert.equal(await origin('https://evil.com'), undefined, 'no match: the upstream ACAO is removed too');
    const pre = await send(`${gw.url}/list`, { method: 'OPTIONS', headers: { origin: 'https://a.example.com', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'X-Other' } });
    assert.equal(pre.headers['access-control-allow-headers'], 'Content-Type,Authorization');
    assert.equal(pre.headers['access-control-allow-methods'], 'GET,POST');
    assert.equal(pre.headers.vary, 'Origin');
  });

  it('credentials with a wildcard echo the request origin', async () => {
    const res = await send(`${gw.url}/starcreds`, { headers: { origin: 'https://whoever.example' } });
    assert.equal(res.headers['access-control-allow-origin'], 'https://whoever.example');
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
    assert.match(String(res.headers.vary), /Origin/);
    const noOrigin = await send(`${gw.url}/starcreds`);
    assert.equal(noOrigin.headers['access-control-allow-origin'], '*');
    assert.equal(noOrigin.headers['access-control-allow-credentials'], undefined);
  });

  it('preflight_continue proxies the preflight and adds no CORS headers', async () => {
    const res = await send(`${gw.url}/continue`, { method: 'OPTIONS', headers: PREFLIGHT });
    assert.equal(res.body, 'OPTIONS');
    assert.equal(res.headers['access-control-allow-origin'], 'https://upstream.example');
    assert.equal(res.headers['access-control-allow-methods'], undefined);
  });

  it('private_network only when asked for', async () => {
    const asked = await send(`${gw.url}/pna`, { method: 'OPTIONS', headers: { ...PREFLIGHT, 'access-control-request-private-network': 'true' } });
    assert.equal(asked.headers['access-control-allow-private-network'], 'true');
    const not = await send(`${gw.url}/pna`, { method: 'OPTIONS', headers: PREFLIGHT });
    assert.equal(not.headers['access-control-allow-private-network'], undefined);
  });

  it('allow_origin_absent: false adds nothing to requests without Origin', async () => {
    const res = await send(`${gw.url}/absent`);
    assert.equal(res.headers['access-control-allow-origin'], 'https://upstream.example');
    assert.equal((await send(`${gw.url}/absent`, { headers: { origin: 'https://x.example' } })).headers['access-control-allow-origin'], '*');
  });
});
