import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateAgainst } from '../../config/validate.js';
import { send } from '../../../test/helpers/harness.js';
import { proxyCache } from './index.js';
import { compilePolicy, judgeResponse, usability, retentionMs, buildEntry, refreshEntry } from './policy.js';
import type { ProxyCacheConfig } from './schema.js';
import { cached, clock, countingHandler, startCacheGateway, startSwitchableUpstream, type CacheGateway, type SwitchableUpstream } from './test-support.js';
import { parseCacheControl } from '../../cache/cache-control.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function validate(input: Record<string, unknown>): string[] {
  const config = structuredClone(input);
  const errors = validateAgainst(proxyCache.schema, config, 'config');
  if (errors.length) return errors;
  const problem = proxyCache.check!(config as never);
  return problem ? [problem] : [];
}

function configOf(input: Record<string, unknown>): ProxyCacheConfig {
  const config = structuredClone(input);
  assert.deepEqual(validateAgainst(proxyCache.schema, config, 'config'), []);
  return config as ProxyCacheConfig;
}

async function setup(config: Record<string, unknown> = {}, route: Record<string, unknown> = {}, now?: () => number): Promise<{ up: SwitchableUpstream; gw: CacheGateway }> {
  const up = await startSwitchableUpstream();
  cleanup.push(up.close);
  const gw = await startCacheGateway(cached(up.url, config, route), now);
  cleanup.push(gw.close);
  return { up, gw };
}

describe('proxy-cache: schema (Kong fields and defaults)', () => {
  it('fills Kong defaults; priority 100', () => {
    const config = configOf({ strategy: 'memory' });
    assert.equal(proxyCache.priority, 100);
    assert.deepEqual(config.response_code, [200, 301, 404]);
    assert.deepEqual(config.request_method, ['GET', 'HEAD']);
    assert.deepEqual(config.content_type, ['text/plain', 'application/json']);
    assert.equal(config.cache_ttl, 300);
    assert.equal(config.cache_control, false);
    assert.equal(config.ignore_uri_case, false);
    assert.equal(config.storage_ttl, undefined);
    assert.equal(config.memory.dictionary_name, 'kong_db_cache');
    assert.equal(config.vary_query_params, undefined);
    assert.equal(config.vary_headers, undefined);
    assert.deepEqual(config.response_headers, { age: true, 'X-Cache-Status': true, 'X-Cache-Key': true });
    assert.equal(config.cache_authenticated, false);
    assert.equal(config.request_coalescing, true);
  });

  it('strategy is required (no default); bad values are named', () => {
    assert.deepEqual(validate({}), ['config.strategy: required field missing']);
    assert.deepEqual(validate({ strategy: 'disk' }), ['config.strategy: expected one of: memory, redis']);
    assert.deepEqual(validate({ strategy: 'memory', request_method: ['DELETE'] }), ['config.request_method[0]: expected one of: HEAD, GET, POST, PATCH, PUT']);
    assert.deepEqual(validate({ strategy: 'memory', response_code: [99] }), ['config.response_code[0]: value should be between 100 and 900']);
    assert.deepEqual(validate({ strategy: 'memory', response_code: [] }), ['config.response_code: must NOT have fewer than 1 items']);
    assert.deepEqual(validate({ strategy: 'memory', cache_ttl: 0 }), ['config.cache_ttl: value must be greater than 0']);
    assert.deepEqual(validate({ strategy: 'memory', vary_headers: ['bad header'] }), ['config.vary_headers[0]: must be a valid header name']);
    assert.deepEqual(validate({ strategy: 'memory', nope: 1 }), ['config.nope: unknown field']);
  });

  it('206 and 304 cannot be cacheable codes; redis needs somewhere to connect', () => {
    assert.deepEqual(validate({ strategy: 'memory', response_code: [200, 206] }), ['config.response_code: 206 (partial content) cannot be cached']);
    assert.match(validate({ strategy: 'memory', response_code: [304] })[0]!, /^config.response_code: 304 cannot be cached/);
    assert.deepEqual(validate({ strategy: 'redis' }), ['config.redis.host: required field missing']);
    assert.deepEqual(validate({ strategy: 'redis', redis: { host: '127.0.0.1' } }), []);
    assert.deepEqual(validate({ strategy: 'memory', memory: { size: 65536, max_body_size: 70000 } }), ['config.memory.max_body_size: must not be larger than memory.size']);
  });
});

describe('proxy-cache: policy (pure decisions)', () => {
  const now = Date.UTC(2026, 0, 1);
  const policy = compilePolicy(configOf({ strategy: 'memory' }));
  const cc = compilePolicy(configOf({ strategy: 'memory', cache_control: true, stale_if_error: 60 }));
  const json = { 'content-type': 'application/json' };

  it('never stores what an HTTP cache must not, whatever the config', () => {
    assert.equal(judgeResponse(policy, 200, json, now, 1e6).ok, true);
    assert.equal(judgeResponse(policy, 200, { ...json, 'set-cookie': 'a=b' }, now, 1e6).ok, false);
    assert.equal(judgeResponse(policy, 200, { ...json, 'cache-control': 'private' }, now, 1e6).ok, false);
    assert.equal(judgeResponse(policy, 200, { ...json, 'cache-control': 'no-store' }, now, 1e6).ok, false);
    assert.equal(judgeResponse(policy, 200, { ...json, vary: 'Accept, *' }, now, 1e6).ok, false);
    assert.equal(judgeResponse(policy, 200, { ...json, 'content-length': '11' }, now, 10).ok, false);
    assert.equal(judgeResponse(policy, 500, json, now, 1e6).ok, false);
    assert.equal(judgeResponse(policy, 404, json, now, 1e6).ok, true, "404 is in Kong's default response_code");
  });

  it('cache_control: the lifetime comes from the response, minus its Age; none means not stored', () => {
    const v = judgeResponse(cc, 200, { ...json, 'cache-control': 'max-age=60, stale-while-revalidate=5', age: '10' }, now, 1e6);
    assert.ok(v.ok);
    assert.equal(v.ttl, 60);
    assert.equal(v.initialAge, 10);
    assert.equal(v.staleWhileRevalidate, 5);
    assert.equal(v.staleIfError, 60, 'the config value when the response has no directive');
    assert.equal(judgeResponse(cc, 200, json, now, 1e6).ok, false);
    assert.equal(judgeResponse(cc, 200, { ...json, 'cache-control': 'max-age=5', age: '5' }, now, 1e6).ok, false);
  });

  it('freshness, stale windows and request directives', () => {
    const v = judgeResponse(cc, 200, { ...json, 'cache-control': 'max-age=10, stale-while-revalidate=20' }, now, 1e6);
    assert.ok(v.ok);
    const e = buildEntry(200, json, Buffer.from('x'), v, now, '');
    assert.equal(usability(e, now + 10_000, undefined), 'fresh');
    assert.equal(usability(e, now + 10_001, undefined), 'stale-while-revalidate');
    assert.equal(usability(e, now + 31_000, undefined), 'stale');
    assert.equal(usability(e, now + 5_000, parseCacheControl('max-age=4')), 'stale');
    assert.equal(usability(e, now + 5_000, parseCacheControl('min-fresh=6')), 'stale');
    assert.equal(usability(e, now + 40_000, parseCacheControl('max-stale=30')), 'fresh');
    assert.equal(usability(e, now + 41_000, parseCacheControl('max-stale=30')), 'stale');
    const strict = buildEntry(200, json, Buffer.from('x'), { ...v, mustRevalidate: true }, now, '');
    assert.equal(usability(strict, now + 10_001, undefined), 'stale', 'must-revalidate: never served stale');
    assert.equal(usability(strict, now + 10_001, parseCacheControl('max-stale')), 'stale');
  });

  it('retention: storage_ttl, else lifetime + stale windows (+ a lifetime with a validator)', () => {
    const v = judgeResponse(policy, 200, json, now, 1e6);
    assert.ok(v.ok);
    assert.equal(retentionMs(policy, buildEntry(200, json, Buffer.from(''), v, now, '')), 300_000);
    assert.equal(retentionMs(policy, buildEntry(200, { ...json, etag: '"a"' }, Buffer.from(''), v, now, '')), 600_000);
    assert.equal(retentionMs(compilePolicy(configOf({ strategy: 'memory', storage_ttl: 7 })), buildEntry(200, json, Buffer.from(''), v, now, '')), 7_000);
  });

  it('a 304 updates the stored headers (not the body) and restarts freshness', () => {
    const v = judgeResponse(policy, 200, json, now, 1e6);
    assert.ok(v.ok);
    const e = buildEntry(200, { ...json, etag: '"1"', 'x-old': 'a' }, Buffer.from('body'), v, now, '');
    const r = refreshEntry(policy, e, { etag: '"1"', 'x-old': 'b', 'content-length': '0', 'x-gatehouse-request-id': 'r' }, now + 500_000, 1e6)!;
    assert.equal(r.body.toString(), 'body');
    assert.equal(r.storedAt, now + 500_000);
    assert.deepEqual(r.headers, { ...json, etag: '"1"', 'x-old': 'b' });
    assert.equal(refreshEntry(policy, e, { 'set-cookie': 'a=1' }, now, 1e6), undefined);
  });
});

describe('proxy-cache: Miss, Hit, Refresh, Bypass (Kong behaviour)', () => {
  it('Miss then Hit: X-Cache-Key is a SHA-256, Age only on hits, one upstream request', async () => {
    const { up, gw } = await setup();
    const miss = await send(`${gw.url}/a`);
    assert.equal(miss.status, 200);
    assert.equal(miss.headers['x-cache-status'], 'Miss');
    assert.match(String(miss.headers['x-cache-key']), /^[0-9a-f]{64}$/);
    assert.equal(miss.headers.age, undefined);
    const hit = await send(`${gw.url}/a`);
    assert.equal(hit.headers['x-cache-status'], 'Hit');
    assert.equal(hit.headers['x-cache-key'], miss.headers['x-cache-key']);
    assert.equal(hit.headers.age, '0');
    assert.equal(hit.body, miss.body);
    assert.equal(hit.headers['content-type'], 'application/json');
    assert.equal(hit.headers['content-length'], String(Buffer.byteLength(hit.body)));
    assert.notEqual(hit.headers['x-gatehouse-request-id'], miss.headers['x-gatehouse-request-id'], 'per-request headers are not replayed');
    assert.equal(up.hits, 1);
    assert.equal(gw.cache().stats.hits, 1);
  });

  it('a request method outside request_method is Bypass, without X-Cache-Key', async () => {
    const { up, gw } = await setup();
    const r = await send(`${gw.url}/a`, { method: 'POST', body: 'x' });
    assert.equal(r.headers['x-cache-status'], 'Bypass');
    assert.equal(r.headers['x-cache-key'], undefined);
    await send(`${gw.url}/a`, { method: 'POST', body: 'x' });
    assert.equal(up.hits, 2);
  });

  it("content_type is matched exactly, as Kong does: a charset parameter makes it Bypass", async () => {
    const { up, gw } = await setup();
    up.handler = countingHandler({ 'content-type': 'application/json; charset=utf-8' });
    const r = await send(`${gw.url}/a`);
    assert.equal(r.headers['x-cache-status'], 'Bypass');
    assert.match(String(r.headers['x-cache-key']), /^[0-9a-f]{64}$/, 'a response-side Bypass still names the key');
    assert.equal((await send(`${gw.url}/a`)).headers['x-cache-status'], 'Bypass');
    assert.equal(up.hits, 2);
    const { up: up2, gw: gw2 } = await setup({ content_type: ['application/json; charset=utf-8'] });
    up2.handler = countingHandler({ 'content-type': 'application/json;charset=utf-8' });
    await send(`${gw2.url}/a`);
    assert.equal((await send(`${gw2.url}/a`)).headers['x-cache-status'], 'Hit');
  });

  it('after cache_ttl a kept entry is refreshed (Refresh), then served again', async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_ttl: 10, storage_ttl: 60 }, {}, c.now);
    await send(`${gw.url}/a`);
    c.advance(10);
    const fresh = await send(`${gw.url}/a`);
    assert.equal(fresh.headers['x-cache-status'], 'Hit');
    assert.equal(fresh.headers.age, '10');
    c.advance(1);
    const refresh = await send(`${gw.url}/a`);
    assert.equal(refresh.headers['x-cache-status'], 'Refresh');
    assert.equal(JSON.parse(refresh.body).n, 2);
    const again = await send(`${gw.url}/a`);
    assert.equal(again.headers['x-cache-status'], 'Hit');
    assert.equal(JSON.parse(again.body).n, 2);
    assert.equal(up.hits, 2);
  });

  it('without storage_ttl an expired entry is gone from the store: Miss, as in Kong', async () => {
    const c = clock();
    const { gw } = await setup({ cache_ttl: 10 }, {}, c.now);
    await send(`${gw.url}/a`);
    c.advance(11);
    assert.equal((await send(`${gw.url}/a`)).headers['x-cache-status'], 'Miss');
  });

  it('response_headers toggles hide the headers; a Kong-Debug request header shows them all', async () => {
    const { gw } = await setup({ response_headers: { age: false, 'X-Cache-Status': false, 'X-Cache-Key': false } });
    await send(`${gw.url}/a`);
    const hidden = await send(`${gw.url}/a`);
    assert.equal(hidden.headers['x-cache-status'], undefined);
    assert.equal(hidden.headers['x-cache-key'], undefined);
    assert.equal(hidden.headers.age, undefined);
    const debug = await send(`${gw.url}/a`, { headers: { 'kong-debug': '1' } });
    assert.equal(debug.headers['x-cache-status'], 'Hit');
    assert.ok(debug.headers['x-cache-key']);
    assert.equal(debug.headers.age, '0');
  });

  it('404 is cached by default, 500 and 503 are not', async () => {
    const { up, gw } = await setup();
    up.handler = countingHandler({}, 404);
    await send(`${gw.url}/missing`);
    assert.equal((await send(`${gw.url}/missing`)).headers['x-cache-status'], 'Hit');
    for (const status of [500, 503]) {
      up.handler = countingHandler({}, status);
      const first = await send(`${gw.url}/e${status}`);
      assert.equal(first.status, status);
      assert.equal(first.headers['x-cache-status'], 'Bypass');
      assert.equal((await send(`${gw.url}/e${status}`)).headers['x-cache-status'], 'Bypass');
    }
  });
});

describe('proxy-cache: cache_control (RFC 9111)', () => {
  it('the upstream max-age is the lifetime; without one nothing is stored', async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_control: true }, {}, c.now);
    up.handler = countingHandler({ 'cache-control': 'public, max-age=5' });
    await send(`${gw.url}/a`);
    c.advance(5);
    assert.equal((await send(`${gw.url}/a`)).headers['x-cache-status'], 'Hit');
    c.advance(1);
    assert.equal((await send(`${gw.url}/a`)).headers['x-cache-status'], 'Miss');
    up.handler = countingHandler();
    assert.equal((await send(`${gw.url}/b`)).headers['x-cache-status'], 'Bypass');
  });

  it('Expires - Date and the upstream Age count; Age on a hit includes the upstream Age', async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_control: true }, {}, c.now);
    const date = new Date(c.t).toUTCString();
    up.handler = countingHandler({ expires: new Date(c.t + 60_000).toUTCString(), date, age: '20' });
    await send(`${gw.url}/a`);
    c.advance(30);
    const hit = await send(`${gw.url}/a`);
    assert.equal(hit.headers['x-cache-status'], 'Hit');
    assert.equal(hit.headers.age, '50');
    c.advance(11);
    assert.equal((await send(`${gw.url}/a`)).headers['x-cache-status'], 'Miss');
  });

  it('request no-cache / no-store bypass; max-age=0 refreshes; only-if-cached misses are 504 with no body', async () => {
    const { up, gw } = await setup({ cache_control: true });
    up.handler = countingHandler({ 'cache-control': 'max-age=60' });
    await send(`${gw.url}/a`);
    assert.equal((await send(`${gw.url}/a`, { headers: { 'cache-control': 'no-cache' } })).headers['x-cache-status'], 'Bypass');
    assert.equal((await send(`${gw.url}/a`, { headers: { 'cache-control': 'no-store' } })).headers['x-cache-status'], 'Bypass');
    assert.equal((await send(`${gw.url}/a`, { headers: { 'cache-control': 'max-age=0' } })).headers['x-cache-status'], 'Refresh');
    assert.equal((await send(`${gw.url}/a`, { headers: { 'cache-control': 'only-if-cached' } })).headers['x-cache-status'], 'Hit');
    const hits = up.hits;
    const miss = await send(`${gw.url}/never`, { headers: { 'cache-control': 'only-if-cached' } });
    assert.equal(miss.status, 504);
    assert.equal(miss.body, '');
    assert.equal(up.hits, hits);
  });

  it('Authorization bypasses by default even without cache_control (stricter than Kong)', async () => {
    const { up, gw } = await setup();
    await send(`${gw.url}/a`, { headers: { authorization: 'Bearer x' } });
    const r = await send(`${gw.url}/a`, { headers: { authorization: 'Bearer x' } });
    assert.equal(r.headers['x-cache-status'], 'Bypass');
    assert.equal(up.hits, 2);
  });
});

describe('proxy-cache: the key (vary_query_params, vary_headers, ignore_uri_case)', () => {
  it('vary_query_params: other parameters are not keyed and not forwarded on a miss', async () => {
    const { up, gw } = await setup({ vary_query_params: ['page'] });
    const miss = await send(`${gw.url}/list?page=2&callback=evil`);
    assert.equal(JSON.parse(miss.body).url, '/list?page=2');
    const hit = await send(`${gw.url}/list?callback=other&page=2`);
    assert.equal(hit.headers['x-cache-status'], 'Hit');
    assert.equal((await send(`${gw.url}/list?page=3`)).headers['x-cache-status'], 'Miss');
    assert.equal(up.hits, 2);
  });

  it('all query parameters are keyed by default', async () => {
    const { gw } = await setup();
    await send(`${gw.url}/a?x=1`);
    assert.equal((await send(`${gw.url}/a?x=2`)).headers['x-cache-status'], 'Miss');
    assert.equal((await send(`${gw.url}/a?x=1`)).headers['x-cache-status'], 'Hit');
  });

  it('vary_headers: the named request headers are part of the key', async () => {
    const { up, gw } = await setup({ vary_headers: ['X-Tenant'] });
    await send(`${gw.url}/a`, { headers: { 'x-tenant': 'a' } });
    assert.equal((await send(`${gw.url}/a`, { headers: { 'x-tenant': 'b' } })).headers['x-cache-status'], 'Miss');
    assert.equal((await send(`${gw.url}/a`)).headers['x-cache-status'], 'Miss');
    assert.equal((await send(`${gw.url}/a`, { headers: { 'x-tenant': 'a' } })).headers['x-cache-status'], 'Hit');
    assert.equal(up.hits, 3);
  });

  it('ignore_uri_case: /A and /a share an entry', async () => {
    const { gw } = await setup({ ignore_uri_case: true });
    await send(`${gw.url}/Path`);
    assert.equal((await send(`${gw.url}/pATH`)).headers['x-cache-status'], 'Hit');
    const { gw: strict } = await setup();
    await send(`${strict.url}/Path`);
    assert.equal((await send(`${strict.url}/pATH`)).headers['x-cache-status'], 'Miss');
  });

  it('POST (when configured) is keyed by its body', async () => {
    const { up, gw } = await setup({ request_method: ['POST'] });
    const a = await send(`${gw.url}/graphql`, { method: 'POST', body: '{"q":1}', headers: { 'content-type': 'application/json' } });
    assert.equal(a.headers['x-cache-status'], 'Miss');
    assert.equal((await send(`${gw.url}/graphql`, { method: 'POST', body: '{"q":1}' })).headers['x-cache-status'], 'Hit');
    assert.equal((await send(`${gw.url}/graphql`, { method: 'POST', body: '{"q":2}' })).headers['x-cache-status'], 'Miss');
    assert.equal(up.hits, 2);
  });
});

describe('proxy-cache: HEAD, coalescing, reloads', () => {
  it('HEAD is answered from the cached GET; a HEAD miss is passed upstream and stores nothing', async () => {
    const { up, gw } = await setup();
    const headMiss = await send(`${gw.url}/a`, { method: 'HEAD' });
    assert.equal(headMiss.headers['x-cache-status'], 'Bypass');
    assert.equal(up.requests.at(-1)!.method, 'HEAD');
    assert.equal((await send(`${gw.url}/a`)).headers['x-cache-status'], 'Miss');
    const get = await send(`${gw.url}/a`);
    const head = await send(`${gw.url}/a`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['x-cache-status'], 'Hit');
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], String(Buffer.byteLength(get.body)));
    assert.equal(up.hits, 2);
  });

  it('100 concurrent misses for one key make one upstream request', async () => {
    const { up, gw } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inner = countingHandler();
    up.handler = (req, res, body) => void gate.then(() => inner(req, res, body));
    const all = Promise.all(Array.from({ length: 100 }, () => send(`${gw.url}/hot`)));
    // Let every request reach the gateway before the upstream answers.
    while (gw.cache().stats.coalesced < 99) await new Promise((r) => setTimeout(r, 10));
    release();
    const responses = await all;
    assert.equal(up.hits, 1);
    assert.ok(responses.every((r) => r.status === 200 && JSON.parse(r.body).n === 1));
    assert.equal(responses.filter((r) => r.headers['x-cache-status'] === 'Miss').length, 1);
    assert.equal(responses.filter((r) => r.headers['x-cache-status'] === 'Hit').length, 99);
    assert.equal(gw.cache().inFlight, 0);
  });

  it('an uncacheable response releases the waiters at once, and later misses for it do not wait', async () => {
    const { up, gw } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inner = countingHandler({ 'set-cookie': 'session=1' });
    up.handler = (req, res, body) => void gate.then(() => inner(req, res, body));
    const all = Promise.all(Array.from({ length: 5 }, () => send(`${gw.url}/private`)));
    while (gw.cache().stats.coalesced < 4) await new Promise((r) => setTimeout(r, 10));
    release();
    const responses = await all;
    assert.ok(responses.every((r) => r.headers['x-cache-status'] === 'Bypass'));
    assert.equal(up.hits, 5);
    const before = gw.cache().stats.coalesced;
    await Promise.all(Array.from({ length: 5 }, () => send(`${gw.url}/private`)));
    assert.equal(gw.cache().stats.coalesced, before, 'hit-for-pass: no more queueing behind this key');
  });

  it('a config reload keeps the memory dictionary (entries of unchanged routes survive)', async () => {
    const { up, gw } = await setup();
    await send(`${gw.url}/a`);
    gw.gateway.reload(cached(up.url, { cache_ttl: 600 }));
    assert.equal((await send(`${gw.url}/a`)).headers['x-cache-status'], 'Hit');
    assert.equal(up.hits, 1);
  });
});
