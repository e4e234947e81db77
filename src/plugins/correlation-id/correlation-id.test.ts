import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { validateAgainst } from '../../config/validate.js';
import { createLogger } from '../../observability/logger.js';
import { Exchange } from '../../pipeline/exchange.js';
import type { PluginDeps } from '../types.js';
import { ConsumerIndex } from '../../config/consumers.js';
import { GatewayScope } from '../../runtime/gateway-scope.js';
import { startGateway, startUpstream, send } from '../../../test/helpers/harness.js';
import { correlationId } from './index.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const deps: PluginDeps = {
  logger: createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
  nodeId: '00000000-0000-4000-8000-000000000001',
  workerId: 0,
  version: 'test',
  consumers: new ConsumerIndex([], []),
  scope: new GatewayScope(),
};

function configOf(input: Record<string, unknown>) {
  const config = structuredClone(input);
  const errors = validateAgainst(correlationId.schema, config, 'config');
  assert.deepEqual(errors, []);
  return config as never;
}

function exchange(headers: Record<string, string> = {}, socket: object = { localAddress: '127.0.0.1', localPort: 8000 }): Exchange {
  const req = { method: 'GET', headers, socket } as unknown as IncomingMessage;
  const ex = new Exchange(req, {} as ServerResponse, 'rid', 0);
  ex.upstreamHeaders = { ...headers };
  return ex;
}

describe('correlation-id: schema', () => {
  it('fills Kong defaults', () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validateAgainst(correlationId.schema, config, 'config'), []);
    assert.deepEqual(config, { header_name: 'Kong-Request-ID', generator: 'uuid#counter', echo_downstream: false });
  });

  it('rejects an unknown generator, an unknown field and a bad header name', () => {
    assert.deepEqual(validateAgainst(correlationId.schema, { generator: 'ulid' }, 'config'), [
      'config.generator: must be one of uuid, uuid#counter, tracker',
    ]);
    assert.deepEqual(validateAgainst(correlationId.schema, { header: 'x' }, 'config'), ['config.header: unknown field']);
    assert.deepEqual(validateAgainst(correlationId.schema, { header_name: 'a b' }, 'config'), [
      'config.header_name: must be a valid header name',
    ]);
  });

  it('has Kong priority 100001', () => {
    assert.equal(correlationId.priority, 100001);
  });
});

describe('correlation-id: generators', () => {
  it('uuid: a fresh v4 UUID per request', () => {
    const p = correlationId.create(configOf({ generator: 'uuid' }), deps);
    const a = exchange();
    const b = exchange();
    p.access!(a);
    p.access!(b);
    const ida = a.upstreamHeaders['kong-request-id'] as string;
    assert.match(ida, UUID);
    assert.notEqual(ida, b.upstreamHeaders['kong-request-id']);
  });

  it('uuid#counter: one UUID per instance, counter from 1', () => {
    const p = correlationId.create(configOf({}), deps);
    const ids = [exchange(), exchange(), exchange()].map((ex) => {
      p.access!(ex);
      return ex.upstreamHeaders['kong-request-id'] as string;
    });
    const [base] = ids[0]!.split('#');
    assert.match(base!, UUID);
    assert.deepEqual(ids, [`${base}#1`, `${base}#2`, `${base}#3`]);
    // A second instance (e.g. the next config snapshot) has its own UUID and counter.
    const other = exchange();
    correlationId.create(configOf({}), deps).access!(other);
    assert.match(other.upstreamHeaders['kong-request-id'] as string, /#1$/);
    assert.notEqual((other.upstreamHeaders['kong-request-id'] as string).split('#')[0], base);
  });

  it('tracker: addr-port-pid-connection-requests-time', () => {
    const p = correlationId.create(configOf({ generator: 'tracker' }), deps);
    const socketA = { localAddress: '::ffff:10.0.0.5', localPort: 8000 };
    const socketB = { localAddress: '10.0.0.5', localPort: 8443 };
    const ids = [exchange({}, socketA), exchange({}, socketA), exchange({}, socketB)].map((ex) => {
      p.access!(ex);
      return ex.upstreamHeaders['kong-request-id'] as string;
    });
    const re = new RegExp(`^10\\.0\\.0\\.5-(\\d+)-${process.pid}-(\\d+)-(\\d+)-(\\d+\\.\\d{3})$`);
    const parsed = ids.map((id) => re.exec(id));
    assert.ok(parsed.every(Boolean), ids.join(' '));
    assert.deepEqual(parsed.map((m) => [m![1], m![2], m![3]]), [
      ['8000', '1', '1'],
      ['8000', '1', '2'],
      ['8443', '2', '1'],
    ]);
    assert.ok(Math.abs(Number(parsed[0]![4]) - Date.now() / 1000) < 5);
  });
});

describe('correlation-id: hooks', () => {
  it('keeps a non-empty incoming value and forwards it unchanged', () => {
    const p = correlationId.create(configOf({ header_name: 'X-Correlation-ID', echo_downstream: true }), deps);
    const ex = exchange({ 'x-correlation-id': 'abc' });
    p.access!(ex);
    assert.equal(ex.upstreamHeaders['x-correlation-id'], 'abc');
    p.response!(ex);
    assert.equal(ex.responseHeaders['x-correlation-id'], 'abc');
  });

  it('replaces an empty incoming value with a generated one', () => {
    const p = correlationId.create(configOf({ generator: 'uuid' }), deps);
    const ex = exchange({ 'kong-request-id': '' });
    p.access!(ex);
    assert.match(ex.upstreamHeaders['kong-request-id'] as string, UUID);
  });

  it('echo_downstream: the response carries the value sent upstream, replacing an upstream one', () => {
    const p = correlationId.create(configOf({ echo_downstream: true }), deps);
    const ex = exchange();
    p.access!(ex);
    ex.responseHeaders = { 'kong-request-id': 'from-upstream' };
    p.response!(ex);
    assert.equal(ex.responseHeaders['kong-request-id'], ex.upstreamHeaders['kong-request-id']);
  });

  it('without echo_downstream the response is untouched', () => {
    const p = correlationId.create(configOf({}), deps);
    const ex = exchange();
    p.access!(ex);
    p.response!(ex);
    assert.deepEqual(ex.responseHeaders, {});
  });

  it('echo_downstream when access did not run: incoming value, else a generated one', () => {
    const p = correlationId.create(configOf({ echo_downstream: true, generator: 'uuid' }), deps);
    const withHeader = exchange({ 'kong-request-id': 'given' });
    p.response!(withHeader);
    assert.equal(withHeader.responseHeaders['kong-request-id'], 'given');
    const without = exchange();
    p.response!(without);
    assert.match(without.responseHeaders['kong-request-id'] as string, UUID);
  });
});

describe('correlation-id: through the gateway', () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let gw: Awaited<ReturnType<typeof startGateway>>;

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 's',
          url: up.url,
          routes: [
            { name: 'echo', paths: ['/echo'], plugins: [{ name: 'correlation-id', config: { echo_downstream: true } }] },
            { name: 'quiet', paths: ['/quiet'], plugins: [{ name: 'correlation-id', config: { header_name: 'X-Trace', generator: 'uuid' } }] },
            {
              name: 'terminated',
              paths: ['/terminated'],
              plugins: [
                { name: 'correlation-id', config: { echo_downstream: true } },
                { name: 'request-termination', config: { status_code: 418, message: 'teapot' } },
              ],
            },
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it('generates uuid#counter IDs, sends them upstream and echoes them', async () => {
    const a = await send(`${gw.url}/echo`);
    const b = await send(`${gw.url}/echo`);
    assert.equal(a.status, 200);
    const ida = a.headers['kong-request-id'] as string;
    const idb = b.headers['kong-request-id'] as string;
    assert.match(ida, /^[0-9a-f-]{36}#\d+$/);
    assert.equal(a.json().headers['kong-request-id'], ida);
    assert.equal(idb.split('#')[0], ida.split('#')[0]);
    assert.equal(Number(idb.split('#')[1]), Number(ida.split('#')[1]) + 1);
  });

  it('keeps the client value', async () => {
    const res = await send(`${gw.url}/echo`, { headers: { 'Kong-Request-ID': 'client-123' } });
    assert.equal(res.headers['kong-request-id'], 'client-123');
    assert.equal(res.json().headers['kong-request-id'], 'client-123');
  });

  it('without echo_downstream only the upstream sees the header', async () => {
    const res = await send(`${gw.url}/quiet`);
    assert.match(res.json().headers['x-trace'], UUID);
    assert.equal(res.headers['x-trace'], undefined);
  });

  it('echoes on local replies too', async () => {
    const before = up.requests.length;
    const res = await send(`${gw.url}/terminated`);
    assert.equal(res.status, 418);
    assert.deepEqual(res.json(), { message: 'teapot' });
    assert.match(res.headers['kong-request-id'] as string, /#\d+$/);
    assert.equal(up.requests.length, before);
  });
});
