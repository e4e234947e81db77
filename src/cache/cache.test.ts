import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLruStore, sizeOf } from './memory-store.js';
import { decode, encode } from './codec.js';
import { cacheKey, KeyHasher, keepParams, parseQuery, queryKeyPart, headersKeyPart } from './key.js';
import { ageOf, freshnessLifetime, parseCacheControl, parseVary, deltaSeconds } from './cache-control.js';
import { ContentTypeMatcher, parseMediaType } from './mime-type.js';
import { SingleFlight } from './single-flight.js';
import { CacheRegistry } from './registry.js';
import { CACHE_FORMAT_VERSION, type CachedResponse, type VaryIndex } from './types.js';

function response(body: string, extra: Partial<CachedResponse> = {}): CachedResponse {
  return {
    kind: 'response',
    version: CACHE_FORMAT_VERSION,
    status: 200,
    headers: { 'content-type': 'text/plain' },
    body: Buffer.from(body),
    storedAt: 1_000,
    ttl: 300,
    initialAge: 0,
    staleWhileRevalidate: 0,
    staleIfError: 0,
    mustRevalidate: false,
    vary: [],
    varyValues: '',
    ...extra,
  };
}

describe('cache: memory LRU bounded by bytes', () => {
  it('evicts the least recently used objects once the byte budget is exceeded', () => {
    const one = response('x'.repeat(1000));
    const size = sizeOf(one);
    const store = new MemoryLruStore({ maxBytes: size * 3, maxBodySize: 10_000 });
    store.set('a', one, 0);
    store.set('b', response('y'.repeat(1000)), 0);
    store.set('c', response('z'.repeat(1000)), 0);
    assert.equal(store.stats.entries, 3);
    assert.ok(store.get('a'), 'reading a makes b the least recently used');
    store.set('d', response('w'.repeat(1000)), 0);
    assert.equal(store.get('b'), undefined);
    assert.ok(store.get('a') && store.get('c') && store.get('d'));
    assert.equal(store.stats.evictions, 1);
    assert.ok(store.stats.bytes <= size * 3);
  });

  it('bytes, not entries: one large object pushes out many small ones', () => {
    const store = new MemoryLruStore({ maxBytes: 20_000, maxBodySize: 20_000 });
    for (let i = 0; i < 20; i++) store.set(`s${i}`, response('s'), 0);
    assert.equal(store.stats.entries, 20);
    store.set('big', response('b'.repeat(15_000)), 0);
    assert.ok(store.get('big'));
    assert.ok(store.stats.entries < 20);
    assert.ok(store.stats.bytes <= 20_000);
  });

  it('refuses bodies above max_body_size and objects larger than the budget', () => {
    const store = new MemoryLruStore({ maxBytes: 5_000, maxBodySize: 100 });
    store.set('a', response('a'.repeat(101)), 0);
    assert.equal(store.get('a'), undefined);
    store.resize(5_000, 100_000);
    store.set('a', response('a'.repeat(6_000)), 0);
    assert.equal(store.get('a'), undefined);
    assert.equal(store.stats.bytes, 0);
  });

  it('drops objects past their retention; replacing a key does not leak bytes', () => {
    let now = 0;
    const store = new MemoryLruStore({ maxBytes: 100_000, maxBodySize: 100_000, now: () => now });
    store.set('a', response('1'), 1000);
    store.set('a', response('22'), 1000);
    assert.equal(store.stats.entries, 1);
    assert.equal(store.stats.bytes, sizeOf(response('22')));
    now = 1000;
    assert.ok(store.get('a'));
    now = 1001;
    assert.equal(store.get('a'), undefined);
    assert.equal(store.stats.bytes, 0);
    store.set('b', response('b'), 0);
    now = 1e12;
    assert.ok(store.get('b'), 'retention 0 keeps it until evicted');
    assert.equal(store.delete('b'), true);
    assert.equal(store.delete('b'), false);
  });

  it('shrinking the budget evicts at once', () => {
    const store = new MemoryLruStore({ maxBytes: 100_000, maxBodySize: 100_000 });
    for (let i = 0; i < 10; i++) store.set(`k${i}`, response('x'.repeat(1000)), 0);
    store.resize(3_000, 1_000);
    assert.ok(store.stats.bytes <= 3_000);
    assert.ok(store.get('k9'), 'the most recent survive');
  });
});

describe('cache: codec (Redis values)', () => {
  it('round-trips responses with binary bodies and vary indexes', () => {
    const body = Buffer.from([0, 255, 1, 254, 0x47, 0x43]);
    const r = response('', { body, headers: { 'content-type': 'application/octet-stream', 'x-multi': ['a', 'b'] }, vary: ['accept'], varyValues: '["x"]' });
    assert.deepEqual(decode(encode(r)), r);
    const v: VaryIndex = { kind: 'vary', version: CACHE_FORMAT_VERSION, names: ['accept', 'accept-language'], generation: 'abc', storedAt: 5 };
    assert.deepEqual(decode(encode(v)), v);
  });

  it('reads foreign or older bytes as absent', () => {
    assert.equal(decode(Buffer.from('hello world')), undefined);
    assert.equal(decode(null), undefined);
    const bytes = encode(response('x'));
    bytes[2] = CACHE_FORMAT_VERSION + 1;
    assert.equal(decode(bytes), undefined);
    assert.equal(decode(encode(response('x')).subarray(0, 10)), undefined);
  });
});

describe('cache: keys', () => {
  const q = (s: string | null, only?: string[]) => queryKeyPart(parseQuery(s), only ? new Set(only) : undefined);

  it('sorts parameters by name and decodes them', () => {
    assert.equal(q('x=1&y=2'), q('y=2&x=1'));
    assert.equal(q('a=%41'), q('a=A'));
    assert.equal(q('a=b+c'), q('a=b%20c'));
    assert.equal(q(null), q(''));
    assert.equal(q('&&'), '');
  });

  it('never confuses an encoded separator with a real one', () => {
    assert.notEqual(q('a=1%26b%3D2'), q('a=1&b=2'));
    assert.notEqual(q('a=1:b=2'), q('a=1&b=2'));
    assert.notEqual(q('a'), q('a='));
    assert.notEqual(q('a=%zz'), q('a=%25zz'), 'a malformed escape is not its decoded twin');
  });

  it('keeps the order of repeated values (an upstream may read the first or the last)', () => {
    assert.notEqual(q('a=1&a=2'), q('a=2&a=1'));
    assert.equal(q('b=0&a=1&a=2'), q('a=1&a=2&b=0'));
  });

  it('vary_query_params restricts the key and the forwarded query', () => {
    assert.equal(q('page=1&utm=x', ['page']), q('page=1&utm=y', ['page']));
    assert.equal(keepParams(parseQuery('utm=x&page=1&page=2'), new Set(['page'])), 'page=1&page=2');
    assert.equal(keepParams(parseQuery('utm=x'), new Set(['page'])), null);
  });

  it('header parts tell an absent header from an empty one', () => {
    assert.notEqual(headersKeyPart({}, ['x-a']), headersKeyPart({ 'x-a': '' }, ['x-a']));
    assert.equal(headersKeyPart({ 'x-a': ['1', '2'] }, ['x-a']), headersKeyPart({ 'x-a': '1, 2' }, ['x-a']));
    assert.equal(headersKeyPart({ 'x-a': '1' }, []), '');
  });

  it('is a SHA-256 hex digest of unambiguous components', () => {
    const k = cacheKey(['route', 'GET', '/a', 'x=1']);
    assert.match(k, /^[0-9a-f]{64}$/);
    assert.notEqual(cacheKey(['a|b', 'c']), cacheKey(['a', 'b|c']));
    const hasher = new KeyHasher(2);
    for (const parts of [['a'], ['b'], ['a'], ['c'], ['a']]) assert.equal(hasher.key(parts), cacheKey(parts));
  });
});

describe('cache: Cache-Control, freshness, Vary', () => {
  it('parses directives (case-insensitive names, quoted arguments, several lines)', () => {
    const cc = parseCacheControl(['Public, MAX-AGE=60', 's-maxage="30", no-cache="set-cookie, x"']);
    assert.equal(cc.get('public'), true);
    assert.equal(deltaSeconds(cc, 'max-age'), 60);
    assert.equal(deltaSeconds(cc, 's-maxage'), 30);
    assert.equal(cc.get('no-cache'), 'set-cookie, x');
    assert.equal(deltaSeconds(parseCacheControl('max-age=-1'), 'max-age'), undefined);
    assert.equal(deltaSeconds(parseCacheControl('max-age=10, max-age=20'), 'max-age'), 10, 'the first of a repeated directive');
  });

  it('freshness lifetime: s-maxage, then max-age, then Expires - Date', () => {
    const now = Date.UTC(2026, 0, 1);
    assert.equal(freshnessLifetime(parseCacheControl('max-age=60, s-maxage=5'), {}, now), 5);
    assert.equal(freshnessLifetime(parseCacheControl('max-age=60'), { expires: 'Thu, 01 Jan 2099 00:00:00 GMT' }, now), 60);
    const date = new Date(now - 3600_000).toUTCString();
    const expires = new Date(now - 3600_000 + 120_000).toUTCString();
    assert.equal(freshnessLifetime(parseCacheControl(undefined), { expires, date }, now), 120);
    assert.equal(freshnessLifetime(parseCacheControl(undefined), { expires: '0' }, now), 0, 'an invalid Expires is already expired');
    assert.equal(freshnessLifetime(parseCacheControl('public'), {}, now), 0);
  });

  it('Age and Vary', () => {
    assert.equal(ageOf({ age: '17' }), 17);
    assert.equal(ageOf({ age: 'x' }), 0);
    assert.deepEqual(parseVary('Accept-Encoding, accept-language,ACCEPT-ENCODING'), ['accept-encoding', 'accept-language']);
    assert.equal(parseVary(['accept', '*']), '*');
    assert.deepEqual(parseVary(undefined), []);
  });
});

describe("cache: Kong's content_type matching", () => {
  it('parses like Kong (no stray whitespace, quoted values)', () => {
    assert.deepEqual(parseMediaType('application/json; charset=utf-8'), { type: 'application', subtype: 'json', params: new Map([['charset', 'utf-8']]) });
    assert.deepEqual(parseMediaType('text/plain ;a="b c";d=e')?.params, new Map([['a', 'b c'], ['d', 'e']]));
    assert.equal(parseMediaType('application/json '), undefined);
    assert.equal(parseMediaType(' application/json'), undefined);
    assert.equal(parseMediaType('application/json; charset = utf-8'), undefined);
    assert.equal(parseMediaType('application'), undefined);
    assert.deepEqual(parseMediaType('*'), { type: '*', subtype: '*', params: new Map() });
  });

  it('exact match, parameters included; wildcards in the configured value', () => {
    const m = new ContentTypeMatcher(['text/plain', 'application/json']);
    assert.equal(m.matches('application/json'), true);
    assert.equal(m.matches('application/json; charset=utf-8'), false, 'the default list does not cache JSON with a charset');
    assert.equal(m.matches('Application/JSON'), false, 'Kong compares case-sensitively');
    assert.equal(m.matches(undefined), false);
    assert.equal(m.matches(''), false);
    assert.equal(m.matches(['text/plain', 'text/plain']), false);
    const charset = new ContentTypeMatcher(['application/json; charset=utf-8']);
    assert.equal(charset.matches('application/json;charset=utf-8'), true);
    assert.equal(charset.matches('application/json; charset=utf-8; q=1'), false, 'the parameter count must be equal');
    assert.equal(charset.matches('application/json'), false);
    const wild = new ContentTypeMatcher(['text/*', '*/json']);
    assert.equal(wild.matches('text/html'), true);
    assert.equal(wild.matches('application/json'), true);
    assert.equal(wild.matches('text/html; charset=utf-8'), false);
  });
});

describe('cache: single flight (request coalescing)', () => {
  it('one leader; waiters get its result; late joiners too while it is held', async () => {
    const f = new SingleFlight<string>(10_000);
    const lead = f.lead('k')!;
    assert.equal(f.lead('k'), undefined);
    const waiting = [f.join('k')!, f.join('k')!];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    f.finish(lead, 'value', held);
    assert.deepEqual(await Promise.all(waiting), ['value', 'value']);
    assert.equal(await f.join('k'), 'value');
    release();
    await held;
    await new Promise((r) => setImmediate(r));
    assert.equal(f.join('k'), undefined);
    assert.equal(f.size, 0);
  });

  it('waiters give up after the timeout and newcomers stop waiting', async () => {
    const f = new SingleFlight<string>(20);
    const lead = f.lead('k')!;
    // The flight's timer does not hold the process open (a server does): this one does.
    const alive = setTimeout(() => {}, 5000);
    assert.equal(await f.join('k'), undefined);
    clearTimeout(alive);
    assert.equal(f.join('k'), undefined);
    f.finish(lead, 'late');
    assert.equal(f.size, 0);
  });
});

describe('cache: registry', () => {
  it('memory dictionaries are shared by name, sized by the largest owner, freed with the last', () => {
    const r = new CacheRegistry();
    const a = {};
    const b = {};
    const s1 = r.acquireMemory('d', a, { maxBytes: 1000, maxBodySize: 10, now: Date.now });
    const s2 = r.acquireMemory('d', b, { maxBytes: 5000, maxBodySize: 20, now: Date.now });
    assert.equal(s1, s2);
    assert.equal(s1.budget, 5000);
    r.releaseMemory('d', b);
    assert.equal(s1.budget, 1000);
    r.releaseMemory('d', a);
    assert.equal(r.memory('d'), undefined);
  });
});
