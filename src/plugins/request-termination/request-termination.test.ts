import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { validateAgainst } from '../../config/validate.js';
import { startGateway, startUpstream, send } from '../../../test/helpers/harness.js';
import { requestTermination } from './index.js';

function validate(input: Record<string, unknown>): string[] {
  const config = structuredClone(input);
  const errors = validateAgainst(requestTermination.schema, config, 'config');
  if (errors.length) return errors;
  const problem = requestTermination.check!(config as never);
  return problem ? [problem] : [];
}

describe('request-termination: schema', () => {
  it('fills Kong defaults', () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validateAgainst(requestTermination.schema, config, 'config'), []);
    assert.deepEqual(config, { status_code: 503, echo: false });
    assert.equal(requestTermination.priority, 2);
  });

  it('status_code is an integer between 100 and 599', () => {
    assert.deepEqual(validate({ status_code: 99 }), ['config.status_code: must be an integer between 100 and 599']);
    assert.deepEqual(validate({ status_code: 600 }), ['config.status_code: must be an integer between 100 and 599']);
    assert.deepEqual(validate({ status_code: 200.5 }), ['config.status_code: must be an integer between 100 and 599']);
    assert.deepEqual(validate({ status_code: 100 }), []);
  });

  it('cross-field rules', () => {
    assert.deepEqual(validate({ message: 'm', body: 'b' }), ['config.message: cannot be set together with config.body']);
    assert.deepEqual(validate({ message: 'm', body: 'b', content_type: 't' }), ['config.message: cannot be set together with config.body']);
    assert.deepEqual(validate({ content_type: 'text/plain' }), ['config.content_type: requires config.body']);
    assert.deepEqual(validate({ echo: true, body: 'b' }), ['config.echo: cannot be set together with config.body']);
    assert.deepEqual(validate({ echo: true, message: 'm', trigger: 'x-debug' }), []);
    // Empty strings do not count as set (Kong's is_present).
    assert.deepEqual(validate({ message: 'm', body: '' }), []);
  });

  it('trigger must be a header name; unknown fields are rejected', () => {
    assert.deepEqual(validate({ trigger: 'a b' }), [
      "config.trigger: must be a header name (allowed characters are A-Z, a-z, 0-9, '_', and '-')",
    ]);
    assert.deepEqual(validate({ echo_trigger: 'x' }), ['config.echo_trigger: unknown field']);
  });
});

describe('request-termination: through the gateway', () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let gw: Awaited<ReturnType<typeof startGateway>>;

  const route = (name: string, config: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    name,
    paths: [`/${name}`],
    strip_path: false,
    ...extra,
    plugins: [{ name: 'request-termination', config }],
  });

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: up.url,
          routes: [
            route('default', {}),
            route('s404', { status_code: 404 }),
            route('s502', { status_code: 502 }),
            route('s418', { status_code: 418 }),
            route('s200', { status_code: 200, message: 'ok "quoted"' }),
            route('raw', { status_code: 451, body: '<h1>gone</h1>', content_type: 'text/html' }),
            route('rawnoct', { status_code: 200, body: 'plain' }),
            route('trigger', { status_code: 403, message: 'blocked', trigger: 'x-block' }),
            route('echo', { echo: true, status_code: 200, trigger: 'debug' }, { paths: ['~/echo/(?<id>\\d+)$'] }),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it('default: 503 {"message":"Service unavailable"}, compact JSON without request_id', async () => {
    const res = await send(`${gw.url}/default`);
    assert.equal(res.status, 503);
    assert.equal(res.body, '{"message":"Service unavailable"}');
    assert.match(res.headers['content-type'] as string, /^application\/json/);
    assert.equal(up.requests.length, 0);
  });

  it("uses the plugin's own default messages, and an empty body for other statuses", async () => {
    assert.equal((await send(`${gw.url}/s404`)).body, '{"message":"Not found"}');
    assert.equal((await send(`${gw.url}/s502`)).body, '{"message":"Bad Gateway"}');
    const teapot = await send(`${gw.url}/s418`);
    assert.equal(teapot.status, 418);
    assert.equal(teapot.body, '');
  });

  it('message is JSON-encoded', async () => {
    const res = await send(`${gw.url}/s200`);
    assert.equal(res.status, 200);
    assert.equal(res.body, '{"message":"ok \\"quoted\\""}');
  });

  it('body: sent raw with content_type, and without Content-Type when none is set', async () => {
    const html = await send(`${gw.url}/raw`);
    assert.equal(html.status, 451);
    assert.equal(html.body, '<h1>gone</h1>');
    assert.equal(html.headers['content-type'], 'text/html');
    const plain = await send(`${gw.url}/rawnoct`);
    assert.equal(plain.body, 'plain');
    assert.equal(plain.headers['content-type'], undefined);
  });

  it('trigger: only requests with the header or query argument are terminated', async () => {
    const passed = await send(`${gw.url}/trigger`);
    assert.equal(passed.status, 200);
    assert.equal(passed.json().url, '/trigger');
    const byHeader = await send(`${gw.url}/trigger`, { headers: { 'X-Block': '' } });
    assert.equal(byHeader.status, 403);
    assert.equal(byHeader.body, '{"message":"blocked"}');
    const byQuery = await send(`${gw.url}/trigger?x-block`);
    assert.equal(byQuery.status, 403);
    const other = await send(`${gw.url}/trigger?x-blocked=1`);
    assert.equal(other.status, 200);
  });

  it('echo: returns the request, the node and the matched route and service', async () => {
    const upstreamCalls = up.requests.length;
    const res = await send(`${gw.url}/echo/42?debug&a=1&a=2&b=x%20y`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-multi': ['1', '2'] },
      body: '{"k":"v"}',
    });
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'] as string, /^application\/json/);
    const body = res.json();
    assert.equal(body.message, undefined);
    assert.equal(typeof body.kong.node_id, 'string');
    assert.equal(body.kong.worker_pid, process.pid);
    assert.equal(body.kong.hostname, hostname());
    assert.equal(body.request.scheme, 'http');
    assert.equal(body.request.host, '127.0.0.1');
    assert.equal(body.request.port, gw.port);
    assert.equal(body.request.method, 'POST');
    assert.equal(body.request.path, '/echo/42');
    assert.deepEqual(body.request.query, { debug: true, a: ['1', '2'], b: 'x y' });
    assert.deepEqual(body.request.headers['x-multi'], ['1', '2']);
    assert.equal(body.request.headers['content-type'], 'application/json');
    assert.deepEqual(body.request.body, { k: 'v' });
    assert.equal(body.request.raw_body, '{"k":"v"}');
    assert.equal(body.request.uri_captures.named.id, '42');
    assert.equal(body.matched_route.name, 'echo');
    assert.equal(typeof body.matched_route.id, 'string');
    assert.equal(body.matched_service.name, 'svc');
    assert.equal(up.requests.length, upstreamCalls);
  });

  it('echo with a trigger passes requests without it', async () => {
    const res = await send(`${gw.url}/echo/7`);
    assert.equal(res.status, 200);
    assert.equal(res.json().url, '/echo/7');
  });
});
