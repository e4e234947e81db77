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
import { responseTransformer } from './index.js';
import type { ResponseTransformerConfig } from './schema.js';
import { compileHeaderOps, compileJsonOps, isJsonContentType, jsonValue, luaToNumber, transformHeaders, transformJson } from './transform.js';

const deps: PluginDeps = {
  logger: createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) }),
  nodeId: 'node',
  workerId: 0,
  version: 'test',
  consumers: new ConsumerIndex([], []),
  scope: new GatewayScope(),
};

function configOf(input: Record<string, unknown>): ResponseTransformerConfig {
  const config = structuredClone(input);
  assert.deepEqual(validateAgainst(responseTransformer.schema, config, 'config'), []);
  assert.equal(responseTransformer.check!(config as never), undefined);
  return config as ResponseTransformerConfig;
}

function validate(input: Record<string, unknown>): string[] {
  const config = structuredClone(input);
  const errors = validateAgainst(responseTransformer.schema, config, 'config');
  if (errors.length) return errors;
  const problem = responseTransformer.check!(config as never);
  return problem ? [problem] : [];
}

const body = (config: Record<string, unknown>, input: string) => {
  const out = transformJson(compileJsonOps(configOf(config)), Buffer.from(input));
  return out === undefined ? undefined : JSON.parse(out.toString());
};

describe('response-transformer: schema', () => {
  it('fills every list with []', () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validateAgainst(responseTransformer.schema, config, 'config'), []);
    const typed = { json: [], json_types: [], headers: [] };
    assert.deepEqual(config, { remove: { json: [], headers: [] }, rename: { json: [], headers: [] }, replace: typed, add: typed, append: typed });
    assert.equal(responseTransformer.priority, 800);
  });

  it('rejects bad json_types, entries without a value, bad header names, unknown fields', () => {
    assert.deepEqual(validate({ add: { json_types: ['integer'] } }), ['config.add.json_types[0]: must be boolean, number or string']);
    assert.deepEqual(validate({ add: { json: ['k'] } }), ["config.add.json[0]: key 'k' has no value"]);
    assert.deepEqual(validate({ append: { headers: ['x a:1'] } }), ["config.append.headers[0]: 'x a' is not a valid header"]);
    assert.deepEqual(validate({ rename: { headers: ['x-a:'] } }), ["config.rename.headers[0]: key 'x-a' has no value"]);
    assert.deepEqual(validate({ remove: { body: [] } }), ['config.remove.body: unknown field']);
  });
});

describe('response-transformer: headers', () => {
  it('remove, rename, replace, add, append; conditions see the headers as received', () => {
    const h: Record<string, string | string[]> = { 'x-remove': '1', 'x-old': 'v', 'x-rep': 'r', 'x-keep': 'k', vary: 'a' };
    const config = configOf({
      remove: { headers: ['X-Remove'] },
      rename: { headers: ['X-Old:X-New'] },
      replace: { headers: ['x-rep:R', 'x-absent:no', 'x-remove:back'] },
      add: { headers: ['x-keep:no', 'x-added:yes', 'x-remove:again'] },
      append: { headers: ['vary:b', 'x-fresh:1'] },
    });
    transformHeaders(compileHeaderOps(config), h);
    // Kong checks a copy taken before the operations: x-remove was present, so replace sets it
    // back and add does not.
    assert.deepEqual(h, { 'x-rep': 'R', 'x-keep': 'k', vary: ['a', 'b'], 'x-new': 'v', 'x-remove': 'back', 'x-added': 'yes', 'x-fresh': '1' });
  });
});

describe('response-transformer: JSON values', () => {
  it('typed values (json_types lines up with json by index)', () => {
    assert.equal(jsonValue('12.5', 'number'), 12.5);
    assert.equal(jsonValue('0x10', 'number'), 16);
    assert.equal(jsonValue('abc', 'number'), undefined);
    assert.equal(jsonValue('true', 'boolean'), true);
    assert.equal(jsonValue('yes', 'boolean'), false);
    assert.equal(jsonValue('a/b "q"', 'string'), 'a/b "q"');
    assert.equal(jsonValue('a\\b', undefined), 'a\\\\b');
    assert.equal(luaToNumber(' 1e3 '), 1000);
    assert.equal(luaToNumber(''), undefined);
  });

  it('content types', () => {
    assert.ok(isJsonContentType('application/json'));
    assert.ok(isJsonContentType('Application/JSON; charset=utf-8'));
    assert.ok(!isJsonContentType('application/problem+json'));
    assert.ok(!isJsonContentType('text/html'));
    assert.ok(!isJsonContentType(undefined));
  });
});

describe('response-transformer: JSON bodies', () => {
  it('remove, rename, replace (not false, null counts), add (absent or false), append', () => {
    const out = body(
      {
        remove: { json: ['secret'] },
        rename: { json: ['old:new'] },
        replace: { json: ['t:1', 'f:1', 'n:1', 'none:1'], json_types: ['number', 'number', 'number', 'number'] },
        add: { json: ['f:added', 'n:no', 'fresh:true'], json_types: ['string', 'string', 'boolean'] },
        append: { json: ['s:b', 'arr:2', 'num:x', 'obj:v'] },
      },
      '{"secret":1,"old":"o","t":"x","f":false,"n":null,"s":"a","arr":[1],"num":3,"obj":{"k":1}}',
    );
    assert.deepEqual(out, { t: 1, f: 'added', n: 1, s: ['a', 'b'], arr: [1, '2'], num: ['x'], obj: { k: 1, 1: 'v' }, new: 'o', fresh: true });
  });

  it('an entry whose number does not parse is skipped', () => {
    assert.deepEqual(body({ add: { json: ['a:x', 'b:2'], json_types: ['number', 'number'] } }, '{}'), { b: 2 });
  });

  it('leaves bodies that do not parse, or are not objects, unchanged', () => {
    assert.equal(body({ add: { json: ['a:1'] } }, 'not json'), undefined);
    assert.equal(body({ add: { json: ['a:1'] } }, '[1]'), undefined);
  });

  it('hooks: buffers only JSON responses with json operations configured', () => {
    const plugin = responseTransformer.create(configOf({ add: { json: ['a:1'] } }), deps);
    const ex = new Exchange({ headers: {} } as IncomingMessage, {} as ServerResponse, 'rid', 0);
    ex.responseHeaders = { 'content-type': 'application/json; charset=utf-8' };
    assert.equal(plugin.needsResponseBody!(ex), true);
    assert.equal(plugin.responseBody!(ex, Buffer.from('{"b":2}')).toString(), '{"b":2,"a":"1"}');
    assert.equal(plugin.responseBody!(ex, Buffer.from('oops')).toString(), 'oops');
    ex.responseHeaders = { 'content-type': 'text/plain' };
    assert.equal(plugin.needsResponseBody!(ex), false);
    // Called anyway (another plugin buffered the body): unchanged.
    assert.equal(plugin.responseBody!(ex, Buffer.from('{"b":2}')).toString(), '{"b":2}');
    const headersOnly = responseTransformer.create(configOf({ add: { headers: ['x:1'] } }), deps);
    ex.responseHeaders = { 'content-type': 'application/json' };
    assert.equal(headersOnly.needsResponseBody!(ex), false);
  });
});

describe('response-transformer: through the gateway', () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let gw: Awaited<ReturnType<typeof startGateway>>;

  const route = (name: string, plugins: object[]) => ({ name, paths: [`/${name}`], strip_path: false, plugins });
  const config = {
    remove: { headers: ['x-upstream-secret'], json: ['secret'] },
    rename: { headers: ['x-old:x-new'] },
    add: { headers: ['x-added:yes'], json: ['added:1'], json_types: ['number'] },
    append: { headers: ['x-multi:two'], json: ['list:b'] },
  };

  before(async () => {
    up = await startUpstream((req, res) => {
      if (req.url?.startsWith('/text')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-old': 'o' });
        res.end('{"secret":1}');
        return;
      }
      const text = JSON.stringify({ secret: 's', list: 'a', path: '/a/b' });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
        'x-upstream-secret': 'x',
        'x-old': 'o',
        'x-multi': 'one',
      });
      res.end(text);
    });
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: up.url,
          routes: [
            route('json', [{ name: 'response-transformer', config }]),
            route('text', [{ name: 'response-transformer', config }]),
            route('local', [
              { name: 'response-transformer', config: { add: { headers: ['x-added:yes'], json: ['extra:1'] } } },
              { name: 'request-termination', config: { status_code: 403, message: 'no' } },
            ]),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it('transforms headers and the JSON body; Content-Length matches the new body', async () => {
    const res = await send(`${gw.url}/json`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json(), { list: ['a', 'b'], path: '/a/b', added: 1 });
    assert.equal(res.headers['content-length'], String(Buffer.byteLength(res.body)));
    assert.equal(res.headers['x-upstream-secret'], undefined);
    assert.equal(res.headers['x-old'], undefined);
    assert.equal(res.headers['x-new'], 'o');
    assert.equal(res.headers['x-added'], 'yes');
    const multi = res.rawHeaders.filter((_, i) => i % 2 === 0 && res.rawHeaders[i]!.toLowerCase() === 'x-multi').length;
    assert.equal(multi, 2);
  });

  it('leaves non-JSON bodies alone but still transforms headers', async () => {
    const res = await send(`${gw.url}/text`);
    assert.equal(res.body, '{"secret":1}');
    assert.equal(res.headers['x-new'], 'o');
  });

  it('applies to local replies', async () => {
    const res = await send(`${gw.url}/local`);
    assert.equal(res.status, 403);
    assert.equal(res.headers['x-added'], 'yes');
    assert.deepEqual(res.json(), { message: 'no', extra: '1' });
  });
});
