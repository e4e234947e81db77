import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { validateAgainst } from '../../config/validate.js';
import { startGateway, startUpstream, send, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { parseHttpDate } from '../auth-common/http-date.js';
import { hmacAuth } from './index.js';

/** Kong's documented client side: sign "name: value" lines (request-line as "METHOD uri HTTP/1.1") joined by "\n". */
function authorization(opts: { username: string; secret: string; algorithm?: string; lines: [string, string | undefined][]; headerNames?: string }): string {
  const algorithm = opts.algorithm ?? 'hmac-sha256';
  // An absent header is signed as "name:".
  const signing = opts.lines.map(([name, value]) => (name === 'request-line' ? value : value === undefined ? `${name}:` : `${name}: ${value}`)).join('\n');
  const signature = createHmac(algorithm.replace('hmac-', ''), opts.secret).update(signing).digest('base64');
  const names = opts.headerNames ?? opts.lines.map(([n]) => n).join(' ');
  return `hmac username="${opts.username}", algorithm="${algorithm}", headers="${names}", signature="${signature}"`;
}

describe('hmac-auth: schema', () => {
  it("fills Kong's defaults; priority 1030", () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validateAgainst(hmacAuth.schema, config, 'config'), []);
    assert.deepEqual(config, {
      hide_credentials: false,
      clock_skew: 300,
      validate_request_body: false,
      enforce_headers: [],
      algorithms: ['hmac-sha1', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512'],
    });
    assert.equal(hmacAuth.priority, 1030);
    assert.deepEqual(validateAgainst(hmacAuth.schema, { clock_skew: 0 }, 'config'), ['config.clock_skew: must be greater than 0']);
    assert.deepEqual(validateAgainst(hmacAuth.schema, { algorithms: ['hmac-md5'] }, 'config'), ['config.algorithms[0]: must be one of: hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512']);
  });

  it('reads the three HTTP-date formats, as GMT', () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37) / 1000;
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), t);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), t);
    for (const bad of ['2024-01-01T00:00:00Z', 'Sun, 06 Nov 1994 08:49:37 PST', 'yesterday', '', 'Sun, 32 Nov 1994 08:49:37 GMT']) assert.equal(parseHttpDate(bad), undefined, bad);
  });
});

describe('hmac-auth: through the gateway', () => {
  let up: Upstream;
  let gw: TestGateway;
  const route = (name: string, config: Record<string, unknown> = {}) => ({ name, paths: [`/${name}`], strip_path: false, plugins: [{ name: 'hmac-auth', config }] });

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: up.url,
          routes: [
            route('default'),
            route('realm', { realm: 'partners' }),
            route('strict', { enforce_headers: ['date', 'request-line'], algorithms: ['hmac-sha512'] }),
            route('body', { validate_request_body: true, enforce_headers: ['digest'] }),
            route('hide', { hide_credentials: true }),
            route('skew', { clock_skew: 10 }),
            route('anon', { anonymous: 'guest' }),
          ],
        },
      ],
      consumers: [
        { username: 'alice', custom_id: 'A-1', hmacauth_credentials: [{ username: 'alice-hmac', secret: 'alice-hmac-secret' }] },
        { username: 'guest' },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  const lastUpstream = () => up.requests[up.requests.length - 1]!;
  const date = () => new Date().toUTCString();
  const alice = { username: 'alice-hmac', secret: 'alice-hmac-secret' };

  it('a valid signature over date and the request line, with each algorithm', async () => {
    for (const algorithm of ['hmac-sha1', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512']) {
      const d = date();
      const auth = authorization({ ...alice, algorithm, lines: [['date', d], ['request-line', 'GET /default?a=1&b=%20 HTTP/1.1']] });
      const res = await send(`${gw.url}/default?a=1&b=%20`, { headers: { date: d, authorization: auth } });
      assert.equal(res.status, 200, algorithm);
    }
    const h = lastUpstream().headers;
    assert.equal(h['x-consumer-id'], gw.gateway.snapshot.consumers.find('alice')!.id);
    assert.equal(h['x-consumer-username'], 'alice');
    assert.equal(h['x-consumer-custom-id'], 'A-1');
    assert.equal(h['x-credential-identifier'], 'alice-hmac');
    assert.equal(h['x-anonymous-consumer'], undefined);
    assert.match(String(h.authorization), /^hmac username=/, 'without hide_credentials the header goes upstream');
  });

  it('x-date, other signed headers, Proxy-Authorization and the path-only request line (deprecated) also verify', async () => {
    const d = date();
    const auth = authorization({ ...alice, lines: [['x-date', d], ['content-md5', 'abc'], ['x-missing', undefined]] });
    assert.equal((await send(`${gw.url}/default`, { headers: { 'x-date': d, 'content-md5': 'abc', 'proxy-authorization': auth } })).status, 200);
    const pathOnly = authorization({ ...alice, lines: [['date', d], ['request-line', 'GET /default HTTP/1.1']] });
    assert.equal((await send(`${gw.url}/default?x=1`, { headers: { date: d, authorization: pathOnly } })).status, 200);
  });

  it('failures: 401 with Kong\'s messages and WWW-Authenticate: hmac', async () => {
    const d = date();
    const old = new Date(Date.now() - 3600_000).toUTCString();
    const good = authorization({ ...alice, lines: [['date', d]] });
    const cases: [Record<string, string>, string][] = [
      [{}, 'Unauthorized'],
      [{ authorization: good }, 'HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication'],
      [{ authorization: good, date: old }, 'HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication'],
      [{ authorization: good, date: 'not a date' }, 'HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication'],
      [{ authorization: 'hmac garbage', date: d }, 'HMAC signature cannot be verified'],
      [{ authorization: good.replace('alice-hmac', 'nobody'), date: d }, 'HMAC signature cannot be verified'],
      [{ authorization: good.replace('hmac-sha256', 'hmac-md5'), date: d }, 'HMAC signature cannot be verified'],
      [{ authorization: authorization({ ...alice, secret: 'wrong', lines: [['date', d]] }), date: d }, 'HMAC signature does not match'],
      [{ authorization: good.replace(/signature="[^"]+"/, 'signature="!!!"'), date: d }, 'HMAC signature does not match'],
      [{ authorization: good.replace(/signature="[^"]+"/, 'signature="AAAA"'), date: d }, 'HMAC signature does not match'],
      [{ authorization: good, date: d, 'x-extra': '1' }, ''],
    ];
    for (const [headers, message] of cases) {
      const res = await send(`${gw.url}/default`, { headers });
      if (message === '') {
        assert.equal(res.status, 200, 'unsigned extra headers do not matter');
        continue;
      }
      assert.equal(res.status, 401, message);
      assert.equal(res.json().message, message);
      assert.equal(res.headers['www-authenticate'], 'hmac');
      assert.equal(typeof res.json().request_id, 'string');
    }
    assert.equal((await send(`${gw.url}/realm`)).headers['www-authenticate'], 'hmac realm="partners"');
  });

  it('clock_skew bounds the Date header in both directions', async () => {
    const sign = (d: string) => ({ date: d, authorization: authorization({ ...alice, lines: [['date', d]] }) });
    assert.equal((await send(`${gw.url}/skew`, { headers: sign(new Date(Date.now() - 60_000).toUTCString()) })).status, 401);
    assert.equal((await send(`${gw.url}/skew`, { headers: sign(new Date(Date.now() + 60_000).toUTCString()) })).status, 401);
    assert.equal((await send(`${gw.url}/skew`, { headers: sign(date()) })).status, 200);
  });

  it('enforce_headers and algorithms', async () => {
    const d = date();
    const onlyDate = authorization({ ...alice, algorithm: 'hmac-sha512', lines: [['date', d]] });
    assert.equal((await send(`${gw.url}/strict`, { headers: { date: d, authorization: onlyDate } })).json().message, 'HMAC signature cannot be verified');
    const sha256 = authorization({ ...alice, lines: [['date', d], ['request-line', 'GET /strict HTTP/1.1']] });
    assert.equal((await send(`${gw.url}/strict`, { headers: { date: d, authorization: sha256 } })).json().message, 'HMAC signature cannot be verified');
    const ok = authorization({ ...alice, algorithm: 'hmac-sha512', lines: [['date', d], ['request-line', 'GET /strict HTTP/1.1']] });
    assert.equal((await send(`${gw.url}/strict`, { headers: { date: d, authorization: ok } })).status, 200);
  });

  it('validate_request_body: the Digest header must match the body', async () => {
    const d = date();
    const body = '{"amount":10}';
    const digest = `SHA-256=${createHash('sha256').update(body).digest('base64')}`;
    const auth = (dg: string) => authorization({ ...alice, lines: [['date', d], ['digest', dg]] });
    const ok = await send(`${gw.url}/body`, { method: 'POST', headers: { date: d, digest, authorization: auth(digest), 'content-type': 'application/json' }, body });
    assert.equal(ok.status, 200);
    assert.equal(lastUpstream().body.toString(), body);
    const tampered = await send(`${gw.url}/body`, { method: 'POST', headers: { date: d, digest, authorization: auth(digest) }, body: '{"amount":1000}' });
    assert.equal(tampered.status, 401);
    assert.equal(tampered.json().message, 'HMAC signature does not match');
    const emptyDigest = `SHA-256=${createHash('sha256').update('').digest('base64')}`;
    assert.equal((await send(`${gw.url}/body`, { method: 'POST', headers: { date: d, digest: emptyDigest, authorization: auth(emptyDigest) } })).status, 200, 'no body, digest of ""');
  });

  it('hide_credentials removes the header it read', async () => {
    const d = date();
    assert.equal((await send(`${gw.url}/hide`, { headers: { date: d, authorization: authorization({ ...alice, lines: [['date', d]] }) } })).status, 200);
    assert.equal(lastUpstream().headers.authorization, undefined);
  });

  it('anonymous', async () => {
    const res = await send(`${gw.url}/anon`, { headers: { date: date(), authorization: 'hmac nonsense' } });
    assert.equal(res.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'guest');
    assert.equal(lastUpstream().headers['x-anonymous-consumer'], 'true');
  });

  it('secrets and signatures never reach the logs', () => {
    assert.ok(!JSON.stringify(gw.logs).includes('alice-hmac-secret'));
    assert.ok(!JSON.stringify(gw.logs).includes('signature='));
  });
});
