import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateAgainst } from '../../config/validate.js';
import { startGateway, startUpstream, send, rawRequest, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { keyAuth } from './index.js';

const validate = (config: Record<string, unknown>) => validateAgainst(keyAuth.schema, config, 'config');

describe('key-auth: schema', () => {
  it("fills Kong's defaults; priority 1250", () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validate(config), []);
    assert.deepEqual(config, { key_names: ['apikey'], hide_credentials: false, key_in_header: true, key_in_query: true, key_in_body: false, run_on_preflight: true });
    assert.equal(keyAuth.priority, 1250);
  });

  it('key names must be header names; realm must fit in a quoted parameter', () => {
    assert.deepEqual(validate({ key_names: ['api key'] }), ["config.key_names[0]: bad header name, allowed characters are A-Z, a-z, 0-9, '_', and '-'"]);
    assert.deepEqual(validate({ key_names: [] }), ['config.key_names: must NOT have fewer than 1 items']);
    assert.deepEqual(validate({ realm: 'a"b' }), ['config.realm: must not contain double quotes, backslashes or control characters']);
    assert.deepEqual(validate({ anonymous: '' }), ['config.anonymous: must NOT have fewer than 1 characters']);
  });
});

describe('key-auth: through the gateway', () => {
  let up: Upstream;
  let gw: TestGateway;
  const route = (name: string, config: Record<string, unknown> = {}) => ({ name, paths: [`/${name}`], plugins: [{ name: 'key-auth', config }] });

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
            route('realm', { realm: 'orders' }),
            route('hide', { hide_credentials: true, key_in_body: true }),
            route('names', { key_names: ['x_api_key', 'token'], key_in_header: false }),
            route('body', { key_in_body: true, key_in_header: false, key_in_query: false }),
            route('preflight', { run_on_preflight: false }),
            route('anon', { anonymous: 'guest' }),
            route('ghost', { anonymous: 'nobody-here' }),
          ],
        },
      ],
      consumers: [
        { username: 'alice', custom_id: 'A-1', keyauth_credentials: [{ key: 'alice-secret-key' }] },
        { custom_id: 'only-custom', keyauth_credentials: [{ key: 'custom-key' }] },
        { username: 'old', keyauth_credentials: [{ key: 'expired-key', ttl: 1, created_at: 1_000_000 }] },
        { username: 'guest' },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  const lastUpstream = () => up.requests[up.requests.length - 1]!;

  it('a valid key: 200, and the upstream receives the identity headers', async () => {
    const res = await send(`${gw.url}/default`, { headers: { apikey: 'alice-secret-key' } });
    assert.equal(res.status, 200);
    const h = lastUpstream().headers;
    const alice = gw.gateway.snapshot.consumers.find('alice')!;
    const credential = gw.gateway.snapshot.consumers.credentials('keyauth_credentials').find((c) => c.consumer === alice)!;
    assert.equal(h['x-consumer-id'], alice.id);
    assert.equal(h['x-consumer-username'], 'alice');
    assert.equal(h['x-consumer-custom-id'], 'A-1');
    assert.equal(h['x-credential-identifier'], credential.id, "X-Credential-Identifier is the credential's id");
    assert.equal(h['x-anonymous-consumer'], undefined);
    assert.equal(h.apikey, 'alice-secret-key', 'without hide_credentials the key goes upstream');
  });

  it('a consumer without username gets no X-Consumer-Username; keys are found in the query too', async () => {
    const res = await send(`${gw.url}/default?apikey=custom-key`);
    assert.equal(res.status, 200);
    const h = lastUpstream().headers;
    assert.equal(h['x-consumer-username'], undefined);
    assert.equal(h['x-consumer-custom-id'], 'only-custom');
  });

  it('no key: 401 "No API key found in request" with WWW-Authenticate: Key and a request_id', async () => {
    const res = await send(`${gw.url}/default`);
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], 'Key');
    const body = res.json();
    assert.equal(body.message, 'No API key found in request');
    assert.equal(typeof body.request_id, 'string');
    const realm = await send(`${gw.url}/realm`);
    assert.equal(realm.headers['www-authenticate'], 'Key realm="orders"');
  });

  it('an empty key or a bare ?apikey counts as no key', async () => {
    assert.equal((await send(`${gw.url}/default`, { headers: { apikey: '' } })).json().message, 'No API key found in request');
    assert.equal((await send(`${gw.url}/default?apikey`)).json().message, 'No API key found in request');
    assert.equal((await send(`${gw.url}/default?apikey=`)).json().message, 'No API key found in request');
  });

  it('an invalid or expired key: 401 Unauthorized, WWW-Authenticate on every key-auth 401', async () => {
    for (const key of ['wrong', 'expired-key', 'alice-secret-ke', 'alice-secret-key2', 'ALICE-SECRET-KEY']) {
      const res = await send(`${gw.url}/realm`, { headers: { apikey: key } });
      assert.equal(res.status, 401, key);
      assert.equal(res.json().message, 'Unauthorized');
      assert.equal(res.headers['www-authenticate'], 'Key realm="orders"');
    }
  });

  it('a key sent twice: 401 "Duplicate API key found"', async () => {
    const header = await send(`${gw.url}/default`, { headers: { apikey: ['alice-secret-key', 'custom-key'] } });
    assert.equal(header.status, 401);
    assert.equal(header.json().message, 'Duplicate API key found');
    assert.equal(header.headers['www-authenticate'], 'Key');
    const query = await send(`${gw.url}/default?apikey=alice-secret-key&apikey=alice-secret-key`);
    assert.equal(query.json().message, 'Duplicate API key found');
  });

  it('key_names are searched in order; "_" names also match "-" headers only when headers are read', async () => {
    assert.equal((await send(`${gw.url}/names?token=alice-secret-key`)).status, 200);
    assert.equal((await send(`${gw.url}/names?x_api_key=custom-key&token=wrong`)).status, 200, 'the first name found wins');
    assert.equal((await send(`${gw.url}/names`, { headers: { 'x-api-key': 'alice-secret-key' } })).status, 401, 'key_in_header: false');
  });

  it('key_in_body: JSON, form and multipart bodies', async () => {
    const json = await send(`${gw.url}/body`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"apikey":"alice-secret-key","x":1}' });
    assert.equal(json.status, 200);
    const form = await send(`${gw.url}/body`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&apikey=custom-key' });
    assert.equal(form.status, 200);
    const multipart = await send(`${gw.url}/body`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=XyZ' },
      body: '--XyZ\r\nContent-Disposition: form-data; name="apikey"\r\n\r\nalice-secret-key\r\n--XyZ--\r\n',
    });
    assert.equal(multipart.status, 200);
    const nested = await send(`${gw.url}/body`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"apikey":["a","b"]}' });
    assert.equal(nested.json().message, 'Duplicate API key found');
    const broken = await send(`${gw.url}/body`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"apikey":' });
    assert.equal(broken.json().message, 'No API key found in request');
  });

  it('hide_credentials removes the key from the header, the query and the body sent upstream', async () => {
    const fromHeader = await send(`${gw.url}/hide?keep=1`, { headers: { apikey: 'alice-secret-key' } });
    assert.equal(fromHeader.status, 200);
    assert.equal(lastUpstream().headers.apikey, undefined);
    const fromQuery = await send(`${gw.url}/hide?a=%2F&apikey=alice-secret-key&b`);
    assert.equal(fromQuery.status, 200);
    assert.equal(lastUpstream().url, '/?a=%2F&b', 'the other arguments are kept byte for byte');
    const fromBody = await send(`${gw.url}/hide`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"apikey":"alice-secret-key","x":1}' });
    assert.equal(fromBody.status, 200);
    assert.deepEqual(JSON.parse(lastUpstream().body.toString()), { x: 1 });
    const form = await send(`${gw.url}/hide`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&apikey=custom-key&b=2' });
    assert.equal(form.status, 200);
    assert.equal(lastUpstream().body.toString(), 'a=1&b=2');
    assert.equal(lastUpstream().headers['content-length'], '7');
  });

  it('run_on_preflight: false lets OPTIONS through without a key', async () => {
    assert.equal((await send(`${gw.url}/preflight`, { method: 'OPTIONS' })).status, 200);
    assert.equal((await send(`${gw.url}/preflight`)).status, 401);
    assert.equal((await send(`${gw.url}/default`, { method: 'OPTIONS' })).status, 401);
  });

  it('anonymous: a failed authentication goes on as the anonymous consumer; a missing one is a 500', async () => {
    const res = await send(`${gw.url}/anon`, { headers: { apikey: 'wrong', 'x-consumer-id': 'forged', 'x-credential-identifier': 'forged' } });
    assert.equal(res.status, 200);
    const h = lastUpstream().headers;
    assert.equal(h['x-consumer-id'], gw.gateway.snapshot.consumers.find('guest')!.id);
    assert.equal(h['x-consumer-username'], 'guest');
    assert.equal(h['x-anonymous-consumer'], 'true');
    assert.equal(h['x-credential-identifier'], undefined);
    const ok = await send(`${gw.url}/anon`, { headers: { apikey: 'alice-secret-key' } });
    assert.equal(ok.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'alice');
    const ghost = await send(`${gw.url}/ghost`);
    assert.equal(ghost.status, 500);
    assert.equal(ghost.json().message, "anonymous consumer nobody-here is configured but doesn't exist");
  });

  it('Connection: apikey does not hide the key from key-auth; Connection: X-Consumer-ID does not remove the identity', async () => {
    const byConnection = await send(`${gw.url}/default`, { headers: { apikey: 'alice-secret-key', connection: 'apikey' } });
    assert.equal(byConnection.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-username'], 'alice');
    const invalid = await send(`${gw.url}/default`, { headers: { apikey: 'wrong', connection: 'apikey' } });
    assert.equal(invalid.status, 401, 'a key named in Connection is still checked');
    const raw = await rawRequest(
      gw.port,
      `GET /default HTTP/1.1\r\nHost: x\r\napikey: alice-secret-key\r\nConnection: close, X-Consumer-ID, X-Consumer-Username\r\nX-Consumer-ID: forged\r\n\r\n`,
    );
    assert.match(raw, /^HTTP\/1\.1 200/);
    const h = lastUpstream().headers;
    assert.equal(h['x-consumer-id'], gw.gateway.snapshot.consumers.find('alice')!.id);
    assert.equal(h['x-consumer-username'], 'alice');
  });

  it('keys never reach the logs', async () => {
    await send(`${gw.url}/default?apikey=alice-secret-key`);
    await send(`${gw.url}/default`, { headers: { apikey: 'custom-key' } });
    const text = JSON.stringify(gw.logs);
    assert.ok(!text.includes('alice-secret-key') && !text.includes('custom-key'));
  });
});
