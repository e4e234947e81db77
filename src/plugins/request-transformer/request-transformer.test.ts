import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateAgainst } from '../../config/validate.js';
import { startGateway, startUpstream, send } from '../../../test/helpers/harness.js';
import { decodeArgs, encodeArgs } from './args.js';
import { transformArgs, transformFormBody, transformJsonBody, transformMultipartBody, type Ops } from './body.js';
import { requestTransformer } from './index.js';
import { MultipartBody } from './multipart.js';
import { luaAppend, parsePair } from './pairs.js';
import { compileTemplate, scopeOf, TemplateError } from './template.js';

function validate(input: Record<string, unknown>): string[] {
  const config = structuredClone(input);
  const errors = validateAgainst(requestTransformer.schema, config, 'config');
  if (errors.length) return errors;
  const problem = requestTransformer.check!(config as never);
  return problem ? [problem] : [];
}

const noScope = scopeOf({});

function ops(partial: Partial<Record<keyof Ops, string[]>>): Ops {
  const pairs = (entries: string[] = []) =>
    entries.map((e) => {
      const p = parsePair(e)!;
      return { name: p.name, value: compileTemplate(p.value) };
    });
  return {
    remove: partial.remove ?? [],
    rename: pairs(partial.rename),
    replace: pairs(partial.replace),
    add: pairs(partial.add),
    append: pairs(partial.append),
  };
}

const json = (b: Buffer | undefined) => (b === undefined ? undefined : JSON.parse(b.toString()));

describe('request-transformer: name:value entries', () => {
  it("parses like Kong's ^([^:]+):*(.-)$", () => {
    assert.deepEqual(parsePair('x:a:b'), { name: 'x', value: 'a:b' });
    assert.deepEqual(parsePair('x::y'), { name: 'x', value: 'y' });
    assert.deepEqual(parsePair('x:'), { name: 'x', value: '' });
    assert.deepEqual(parsePair('x'), { name: 'x', value: '' });
    assert.equal(parsePair(':x'), undefined);
  });

  it('append semantics of Lua tables', () => {
    assert.deepEqual(luaAppend(undefined, 'v'), ['v']);
    assert.deepEqual(luaAppend('a', 'v'), ['a', 'v']);
    assert.deepEqual(luaAppend(['a'], 'v'), ['a', 'v']);
    assert.deepEqual(luaAppend(1, 'v'), ['v']);
    assert.deepEqual(luaAppend(null, 'v'), ['v']);
    assert.deepEqual(luaAppend({}, 'v'), ['v']);
    assert.deepEqual(luaAppend({ k: 1 }, 'v'), { k: 1, 1: 'v' });
  });
});

describe('request-transformer: schema', () => {
  it('fills every list with [] and leaves http_method and replace.uri unset', () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validateAgainst(requestTransformer.schema, config, 'config'), []);
    const empty = { body: [], headers: [], querystring: [] };
    assert.deepEqual(config, { remove: empty, rename: empty, replace: empty, add: empty, append: empty });
    assert.equal(requestTransformer.priority, 801);
  });

  it('rejects entries without a value, bad header names and unknown fields', () => {
    assert.deepEqual(validate({ add: { body: ['x'] } }), ["config.add.body[0]: key 'x' has no value"]);
    assert.deepEqual(validate({ append: { querystring: ['a:1', 'b:'] } }), ["config.append.querystring[1]: key 'b' has no value"]);
    assert.deepEqual(validate({ replace: { headers: ['x-a'] } }), ["config.replace.headers[0]: key 'x-a' has no value"]);
    assert.deepEqual(validate({ add: { headers: ['x y:1'] } }), ["config.add.headers[0]: 'x y' is not a valid header"]);
    assert.deepEqual(validate({ rename: { headers: ['x-a:x b'] } }), ["config.rename.headers[0]: 'x b' is not a valid header"]);
    assert.deepEqual(validate({ remove: { headers: ['x.y'] } }), ["config.remove.headers[0]: 'x.y' is not a valid header"]);
    assert.deepEqual(validate({ remove: { body: ['anything goes'] } }), []);
    assert.deepEqual(validate({ add: { cookies: [] } }), ['config.add.cookies: unknown field']);
    assert.deepEqual(validate({ http_method: 'post' }), ['config.http_method: must be an HTTP method in upper case, e.g. POST']);
  });

  it('rejects templates it cannot evaluate', () => {
    assert.deepEqual(validate({ add: { headers: ['x-a:$(headers.b)', 'x-c:$(os.getenv)'] } }), [
      "config.add.headers[1]: value '$(os.getenv)' is not in supported format, error: 'os' is not supported (use headers, query_params, uri_captures or shared)",
    ]);
    assert.match(validate({ add: { body: ['x:$(os.exit())'] } })[0]!, /^config\.add\.body\[0\]: value .* is not in supported format/);
    // Without a closing parenthesis it is plain text, as in Penlight.
    assert.deepEqual(validate({ replace: { uri: '/$(uri_captures.a' } }), []);
    assert.match(validate({ replace: { uri: '/$(uri_captures.a + 1)' } })[0]!, /^config\.replace\.uri: value .* is not in supported format/);
  });
});

describe('request-transformer: templates', () => {
  const scope = scopeOf({
    headers: { 'x-api-key': 'k1', multi: ['a', 'b'] },
    query_params: { q: 'search', flag: true },
    uri_captures: { id: '42', 1: '42' },
    shared: { tenant: 't1', n: 7 },
  });

  it('evaluates the supported expressions', () => {
    const r = (s: string) => compileTemplate(s).render(scope);
    assert.equal(r('$(headers.x_api_key)'), 'k1');
    assert.equal(r('$(headers["X-API-Key"])'), 'k1');
    assert.equal(r("$(headers['multi'][2])"), 'b');
    assert.equal(r('$(headers.multi)'), 'a, b');
    assert.equal(r('$(query_params.q)-$(query_params.flag)'), 'search-true');
    assert.equal(r('/users/$(uri_captures.id)/$(uri_captures[1])'), '/users/42/42');
    assert.equal(r('$(shared.tenant):$(shared.n)'), 't1:7');
    assert.equal(r('$(headers.missing)'), '');
    assert.equal(r("$(headers.missing or query_params.q)"), 'search');
    assert.equal(r("$(headers.missing or 'default')"), 'default');
    assert.equal(r('plain $ (text)'), 'plain $ (text)');
  });

  it('constant templates are precomputed', () => {
    assert.equal(compileTemplate('abc').constant, 'abc');
    assert.equal(compileTemplate('$(headers.a)').constant, undefined);
  });

  it('never evaluates code', () => {
    for (const src of ['$(require("fs"))', '$(headers.a .. "x")', '$(function() end)', '$(_G)']) {
      assert.throws(() => compileTemplate(src), TemplateError, src);
    }
  });
});

describe('request-transformer: query strings', () => {
  it('decodes and encodes like ngx.decode_args/encode_args', () => {
    const args = decodeArgs('a=1&a=2&flag&e=&sp=x+y%20z&&=skip');
    assert.deepEqual([...args], [['a', ['1', '2']], ['flag', true], ['e', ''], ['sp', 'x y z']]);
    assert.equal(encodeArgs(args), 'a=1&a=2&flag&e=&sp=x%20y%20z');
  });

  it('remove, rename, replace, add, append in that order', () => {
    const args = decodeArgs('drop=1&old=v&keep=k&rep=r&flag');
    transformArgs(ops({ remove: ['drop'], rename: ['old:new'], replace: ['rep:R', 'absent:x'], add: ['keep:no', 'added:yes'], append: ['keep:2', 'flag:f', 'fresh:1'] }), args, noScope);
    assert.equal(encodeArgs(args), 'keep=k&keep=2&rep=R&flag=f&new=v&added=yes&fresh=1');
  });

  it('rename of an absent argument clears the new name (as Kong)', () => {
    const args = decodeArgs('b=1');
    transformArgs(ops({ rename: ['a:b'] }), args, noScope);
    assert.equal(encodeArgs(args), '');
  });
});

describe('request-transformer: JSON bodies', () => {
  it('applies operations to top-level keys; values are strings', () => {
    const body = Buffer.from('{"drop":1,"old":{"x":1},"rep":true,"f":false,"n":null,"s":"a","arr":[1]}');
    const out = transformJsonBody(
      ops({ remove: ['drop'], rename: ['old:new'], replace: ['rep:R', 'f:F', 'n:N', 'none:x'], add: ['f:added', 'n:no', 'num:1'], append: ['s:b', 'arr:2', 'fresh:1'] }),
      body,
      noScope,
    );
    assert.deepEqual(json(out), { rep: 'R', f: 'added', n: 'N', s: ['a', 'b'], arr: [1, '2'], new: { x: 1 }, num: '1', fresh: ['1'] });
  });

  it('add and append work on an empty body; remove/rename/replace do not', () => {
    assert.deepEqual(json(transformJsonBody(ops({ add: ['a:1'], append: ['b:2'] }), Buffer.alloc(0), noScope)), { a: '1', b: ['2'] });
    assert.equal(transformJsonBody(ops({ remove: ['a'], replace: ['a:1'] }), Buffer.alloc(0), noScope), undefined);
  });

  it('leaves invalid JSON and non-objects untouched', () => {
    assert.equal(transformJsonBody(ops({ add: ['a:1'] }), Buffer.from('{oops'), noScope), undefined);
    assert.equal(transformJsonBody(ops({ add: ['a:1'] }), Buffer.from('[1,2]'), noScope), undefined);
  });

  it('handles a "__proto__" key as data', () => {
    assert.equal(transformJsonBody(ops({ add: ['__proto__:x'] }), Buffer.from('{}'), noScope)!.toString(), '{"__proto__":"x"}');
  });

  it('renders templates', () => {
    const out = transformJsonBody(ops({ add: ['user:$(headers.x_user)'] }), Buffer.from('{}'), scopeOf({ headers: { 'x-user': 'ann' } }));
    assert.deepEqual(json(out), { user: 'ann' });
  });
});

describe('request-transformer: form bodies', () => {
  it('applies operations and re-encodes', () => {
    const out = transformFormBody(
      ops({ remove: ['drop'], rename: ['old:new'], replace: ['rep:R'], add: ['rep:no', 'e:no', 'added:a b'], append: ['rep:2'] }),
      Buffer.from('drop=1&old=v&rep=r&e='),
      noScope,
    );
    assert.equal(out!.toString(), 'rep=R&rep=2&e=&new=v&added=a%20b');
  });

  it('only add and append on an empty body', () => {
    assert.equal(transformFormBody(ops({ add: ['a:1'] }), Buffer.alloc(0), noScope)!.toString(), 'a=1');
    assert.equal(transformFormBody(ops({ remove: ['a'] }), Buffer.alloc(0), noScope), undefined);
  });
});

describe('request-transformer: multipart bodies', () => {
  const ct = 'multipart/form-data; boundary=XyZ';
  const body = Buffer.from(
    '--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n' +
      '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="f.txt"\r\nContent-Type: text/plain\r\n\r\nline1\r\nline2\r\n' +
      '--XyZ\r\nContent-Disposition: form-data; name="old"\r\n\r\nv\r\n' +
      '--XyZ--\r\n',
  );

  it('parses parts with their headers and raw bytes', () => {
    const form = MultipartBody.parse(body, 'XyZ');
    assert.deepEqual(form.parts.map((p) => p.name), ['a', 'file', 'old']);
    assert.equal(form.get('file')!.toString(), 'line1\r\nline2');
    assert.equal(form.toBuffer().toString(), body.toString());
  });

  it('rename before remove, replace moves to the end, add only when absent', () => {
    const out = transformMultipartBody(ops({ rename: ['old:new'], remove: ['new'], replace: ['a:2'], add: ['file:x', 'b:3'] }), body, ct, noScope)!;
    const form = MultipartBody.parse(out, 'XyZ');
    assert.deepEqual(form.parts.map((p) => [p.name, p.value.toString()]), [
      ['file', 'line1\r\nline2'],
      ['a', '2'],
      ['b', '3'],
    ]);
    assert.ok(out.toString().endsWith('--XyZ--\r\n'));
  });

  it('adds to an empty body using the boundary of the Content-Type', () => {
    const out = transformMultipartBody(ops({ add: ['a:1'] }), Buffer.alloc(0), 'multipart/form-data; boundary="q"', noScope)!;
    assert.equal(out.toString(), '--q\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--q--\r\n');
  });
});

describe('request-transformer: through the gateway', () => {
  let up: Awaited<ReturnType<typeof startUpstream>>;
  let gw: Awaited<ReturnType<typeof startGateway>>;

  const route = (name: string, config: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    name,
    paths: [`/${name}`],
    ...extra,
    plugins: [{ name: 'request-transformer', config }],
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
            route('headers', {
              remove: { headers: ['x-remove'] },
              rename: { headers: ['x-old:X-New'] },
              replace: { headers: ['x-rep:replaced', 'x-absent:no', 'host:upstream.example'] },
              add: { headers: ['x-add:added', 'x-rep:not-added', 'x-from-query:$(query_params.who)'] },
              append: { headers: ['x-app:second', 'x-app-new:1'] },
            }),
            route('query', {
              remove: { querystring: ['drop'] },
              rename: { querystring: ['old:new'] },
              replace: { querystring: ['rep:R'] },
              add: { querystring: ['added:yes', 'keep:no'] },
              append: { querystring: ['keep:2'] },
            }),
            route('json', { remove: { body: ['secret'] }, add: { body: ['source:gw'] }, append: { body: ['tags:new'] } }),
            route('form', { replace: { body: ['a:X'] }, add: { body: ['b:2'] } }),
            route('uri', { replace: { uri: '/users/$(uri_captures.id)/profile' } }, { paths: ['~/uri/(?<id>\\d+)$'] }),
            route('method', { http_method: 'GET' }),
            route('badpath', { replace: { uri: '$(query_params.p)' } }),
            route('encoded', { replace: { uri: '/p/$(query_params.x)' }, add: { headers: ['x-client-host:$(headers.host)', 'x-q:$(query_params.x)'] } }),
          ],
        },
      ],
    });
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it('headers: remove, rename, replace (host always), add, append with repeated lines', async () => {
    const res = await send(`${gw.url}/headers?who=alice`, {
      headers: { 'x-remove': '1', 'x-old': 'moved', 'x-rep': 'orig', 'x-app': 'first' },
    });
    assert.equal(res.status, 200);
    const h = up.requests.at(-1)!;
    assert.equal(h.headers['x-remove'], undefined);
    assert.equal(h.headers['x-old'], undefined);
    assert.equal(h.headers['x-new'], 'moved');
    assert.equal(h.headers['x-rep'], 'replaced');
    assert.equal(h.headers['x-absent'], undefined);
    assert.equal(h.headers.host, 'upstream.example');
    assert.equal(h.headers['x-add'], 'added');
    assert.equal(h.headers['x-from-query'], 'alice');
    const appLines = h.rawHeaders.filter((_, i) => i % 2 === 0 && h.rawHeaders[i]!.toLowerCase() === 'x-app').length;
    assert.equal(appLines, 2);
    assert.equal(h.headers['x-app'], 'first, second');
    assert.equal(h.headers['x-app-new'], '1');
  });

  it('query string operations', async () => {
    await send(`${gw.url}/query?drop=1&old=v&rep=r&keep=k`);
    assert.equal(up.requests.at(-1)!.url, '/?rep=R&keep=k&keep=2&new=v&added=yes');
  });

  it('JSON body: re-encoded, Content-Length updated', async () => {
    const res = await send(`${gw.url}/json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: '{"secret":"s","tags":"old","n":1}',
    });
    assert.equal(res.status, 200);
    const got = up.requests.at(-1)!;
    assert.deepEqual(JSON.parse(got.body.toString()), { tags: ['old', 'new'], n: 1, source: 'gw' });
    assert.equal(got.headers['content-length'], String(got.body.length));
  });

  it('JSON body: add works on a request without a body', async () => {
    await send(`${gw.url}/json`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    assert.deepEqual(JSON.parse(up.requests.at(-1)!.body.toString()), { source: 'gw', tags: ['new'] });
  });

  it('other content types are not touched', async () => {
    await send(`${gw.url}/json`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'secret' });
    assert.equal(up.requests.at(-1)!.body.toString(), 'secret');
  });

  it('form body', async () => {
    await send(`${gw.url}/form`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&c=3' });
    assert.equal(up.requests.at(-1)!.body.toString(), 'a=X&c=3&b=2');
  });

  it('replace.uri with a regex capture', async () => {
    await send(`${gw.url}/uri/42?x=1`);
    assert.equal(up.requests.at(-1)!.url, '/users/42/profile?x=1');
  });

  it('http_method GET moves form fields into the query string', async () => {
    await send(`${gw.url}/method?q=1`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'q=2&f=v' });
    const got = up.requests.at(-1)!;
    assert.equal(got.method, 'GET');
    assert.equal(got.url, '/?q=1&q=2&f=v');
  });

  it('rendered values are made safe: path characters encoded, control characters dropped from headers', async () => {
    await send(`${gw.url}/encoded?x=a%3Fb%20c%23%0D%0Ax-evil:1`, { headers: { host: 'client.example' } });
    const got = up.requests.at(-1)!;
    assert.equal(got.url, '/p/a%3Fb%20c%23%0D%0Ax-evil:1?x=a%3Fb%20c%23%0D%0Ax-evil:1');
    assert.equal(got.headers['x-q'], 'a?b c#x-evil:1');
    assert.equal(got.headers['x-evil'], undefined);
    assert.equal(got.headers['x-client-host'], 'client.example');
  });

  it('replace.uri rendering to something that is not a path is a 500', async () => {
    const res = await send(`${gw.url}/badpath?p=nope`);
    assert.equal(res.status, 500);
    assert.equal(res.json().message, 'An unexpected error occurred');
  });
});
