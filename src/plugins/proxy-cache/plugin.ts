import { createHash, randomBytes } from 'node:crypto';
import { parseCacheControl, type Directives } from '../../cache/cache-control.js';
import { KeyHasher, headerValue, headersKeyPart, keepParams, parseQuery, queryKeyPart, sha256Hex, variantKey, type QueryParam } from '../../cache/key.js';
import { CacheRegistry, type CacheOwner } from '../../cache/registry.js';
import { RedisCacheStore } from '../../cache/redis-store.js';
import { SingleFlight, type Flight } from '../../cache/single-flight.js';
import { CACHE_FORMAT_VERSION, isThenable, type CachedResponse, type CacheObject, type CacheStore, type VaryIndex } from '../../cache/types.js';
import type { SharedRedis } from '../../cluster/redis.js';
import type { Exchange, HeaderMap, LocalReply, Outcome } from '../../pipeline/exchange.js';
import { connectionOf } from '../../cluster/redis-config.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { answerAdmin } from './admin.js';
import { backgroundFetch } from './background-fetch.js';
import {
  buildEntry,
  compilePolicy,
  currentAge,
  headersToStore,
  judgeResponse,
  refreshEntry,
  replayHeaders,
  retentionMs,
  staleIfErrorAllowed,
  usability,
  type Verdict,
} from './policy.js';
import type { ProxyCacheConfig } from './schema.js';

type CacheStatus = 'Hit' | 'Miss' | 'Refresh' | 'Bypass';

/**
 * `bypass`: the cache is not involved (only X-Cache-Status). `lookup`: served from the cache when
 * possible, else passed upstream and not stored (HEAD, Range). `store`: a miss whose response may
 * be stored.
 */
type Mode = 'bypass' | 'lookup' | 'store';

interface Pending {
  status: number;
  headers: Record<string, string | string[]>;
  verdict: Extract<Verdict, { ok: true }>;
}

/** Per-request state, from access to log. */
interface RequestState {
  mode: Mode;
  status: CacheStatus | undefined;
  key: string | undefined;
  debug: boolean;
  params: QueryParam[];
  /** The entry this request is answered with (Age is computed from it). */
  served: CachedResponse | undefined;
  /** A stored entry that could not answer: validators for a conditional request, stale-if-error. */
  stale: CachedResponse | undefined;
  /** The coalescing slot this request leads. */
  flight: Flight<FlightResult> | undefined;
  /** Validators of `stale` were sent upstream. */
  conditional: boolean;
  /** Upstream request headers before the cache edited them: the values Vary refers to. */
  requestHeaders: HeaderMap | undefined;
  /** The response may be stored once its body is complete. */
  pending: Pending | undefined;
  /** A stored entry to send instead of the upstream body: validated by a 304, or stale-if-error on a 5xx. */
  substitute: { entry: CachedResponse; why: 'not-modified' | 'stale-if-error' } | undefined;
}

/** What a leading request hands to the requests that waited for it. */
interface FlightResult {
  entry: CachedResponse;
  staleIfError: boolean;
}

export interface ProxyCacheStats {
  hits: number;
  misses: number;
  refreshes: number;
  bypasses: number;
  stored: number;
  /** Requests that waited for another one instead of going upstream. */
  coalesced: number;
  staleWhileRevalidate: number;
  staleIfError: number;
  /** Background refreshes started. */
  revalidations: number;
  /** Responses refreshed by a 304. */
  notModified: number;
  storeErrors: number;
}

export interface ProxyCacheInstance extends PluginInstance {
  readonly store: CacheStore;
  readonly stats: ProxyCacheStats;
  /** Requests currently leading a coalesced miss (for tests). */
  readonly inFlight: number;
}

/** Upstream request headers that some frameworks honour to change the response, but that are not in the key. */
const UNKEYED_REQUEST_HEADERS = [
  'x-original-url',
  'x-rewrite-url',
  'x-original-host',
  'x-forwarded-server',
  'x-host',
  'x-forwarded-scheme',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'forwarded',
];
const SERVER_ERRORS = new Set([500, 502, 503, 504]);
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);
/** How long a key whose response could not be stored skips coalescing (so uncacheable URLs never queue). */
const PASS_MS_MAX = 60_000;
const PASS_KEYS_MAX = 10_000;

export function create(config: ProxyCacheConfig, deps: PluginDeps): ProxyCacheInstance {
  const now = deps.now ?? Date.now;
  const policy = compilePolicy(config);
  const methods = new Set<string>(config.request_method);
  const bodyMethods: string[] = config.request_method.filter((m) => BODY_METHODS.has(m));
  const varyParams = config.vary_query_params?.length ? new Set(config.vary_query_params) : undefined;
  const varyHeaders = (config.vary_headers ?? []).map((h) => h.toLowerCase());
  const keyedHeaders = new Set(varyHeaders);
  const unkeyed = UNKEYED_REQUEST_HEADERS.filter((h) => !keyedHeaders.has(h));
  const toggles = config.response_headers;
  const passMs = Math.min(config.cache_ttl * 1000, PASS_MS_MAX);

  const registry = deps.scope.get('proxy-cache', () => new CacheRegistry());
  const token = {};
  let redis: SharedRedis | undefined;
  let store: CacheStore;
  if (config.strategy === 'redis') {
    if (!deps.redis) throw new Error("the redis strategy needs the gateway's Redis registry");
    const r = config.redis;
    redis = deps.redis.acquire(connectionOf(r));
    store = new RedisCacheStore(redis, { prefix: r.prefix, timeoutMs: r.timeout, maxBodySize: r.max_body_size, logger: deps.logger });
  } else {
    store = registry.acquireMemory(config.memory.dictionary_name, token, { maxBytes: config.memory.size, maxBodySize: config.memory.max_body_size, now });
  }

  const stats: ProxyCacheStats = { hits: 0, misses: 0, refreshes: 0, bypasses: 0, stored: 0, coalesced: 0, staleWhileRevalidate: 0, staleIfError: 0, revalidations: 0, notModified: 0, storeErrors: 0 };
  const states = new WeakMap<Exchange, RequestState>();
  const flights = new SingleFlight<FlightResult>(config.coalescing_timeout * 1000);
  const hasher = new KeyHasher();
  const passUntil = new Map<string, number>();
  const revalidating = new Set<string>();
  let disposed = false;
  /** The plugin entity id (from deps; learned from the first request's chain when a test builds the plugin by hand). */
  let pluginId: string | undefined = deps.pluginId;
  const owner: CacheOwner = { store, id: () => pluginId };
  registry.register(owner);

  const BYPASS: RequestState = Object.freeze(newState('bypass', 'Bypass', undefined, false, [])) as RequestState;
  const BYPASS_DEBUG: RequestState = Object.freeze(newState('bypass', 'Bypass', undefined, true, [])) as RequestState;

  function newState(mode: Mode, status: CacheStatus | undefined, key: string | undefined, debug: boolean, params: QueryParam[]): RequestState {
    return { mode, status, key, debug, params, served: undefined, stale: undefined, flight: undefined, conditional: false, requestHeaders: undefined, pending: undefined, substitute: undefined };
  }

  function storeFailed(err: unknown): void {
    stats.storeErrors++;
    deps.logger.debug({ err: { message: (err as Error).message }, plugin: 'proxy-cache' }, 'cache store call failed');
  }

  /** Runs a store call; a failure is logged and counted, never thrown (the cache fails open). */
  function safely<T>(run: () => T | Promise<T>, fallback: T): T | Promise<T> {
    try {
      const out = run();
      return isThenable<T>(out) ? out.catch((err: unknown) => (storeFailed(err), fallback)) : out;
    } catch (err) {
      storeFailed(err);
      return fallback;
    }
  }

  function then<T, R>(v: T | Promise<T>, f: (value: T) => R | Promise<R>): R | Promise<R> {
    return isThenable<T>(v) ? v.then(f) : f(v);
  }

  function computeKey(ex: Exchange, method: string, params: QueryParam[], authorization: string | undefined): string {
    const route = ex.route!;
    const service = ex.service!;
    const consumer = ex.consumer;
    // Kong's prefix: consumer and route, or the route. Without a consumer, an Authorization header
    // (only cached with cache_authenticated) is part of the key, so two callers never share.
    let prefix = consumer ? `${consumer.id}:${route.id}` : route.id;
    if (!consumer && authorization !== undefined) prefix += `:${sha256Hex(authorization)}`;
    const lower = config.ignore_uri_case;
    const up = ex.upstreamHeaders;
    return hasher.key([
      CACHE_FORMAT_VERSION,
      prefix,
      method === 'HEAD' ? 'GET' : method,
      lower ? ex.path.toLowerCase() : ex.path,
      queryKeyPart(params, varyParams),
      headersKeyPart(ex.req.headers, varyHeaders),
      // Where the request goes, and what the upstream is told about the origin the client used:
      // responses that embed these (links, redirects) cannot leak from one host or scheme to another.
      `${service.protocol}://${service.host}:${service.port}`,
      lower ? ex.upstreamPath.toLowerCase() : ex.upstreamPath,
      ex.upstreamQuery === ex.query ? null : ex.upstreamQuery,
      headerValue(up, 'host') ?? null,
      headerValue(up, 'x-forwarded-proto') ?? null,
      headerValue(up, 'x-forwarded-host') ?? null,
      headerValue(up, 'x-forwarded-port') ?? null,
      headerValue(up, 'x-forwarded-prefix') ?? null,
      BODY_METHODS.has(method) ? createHash('sha256').update(ex.requestBody ?? '').digest('hex') : null,
    ]);
  }

  function decorate(h: HeaderMap, st: RequestState, at: number): void {
    if (st.status !== undefined && (st.debug || toggles['X-Cache-Status'])) h['x-cache-status'] = st.status;
    if (st.key !== undefined && (st.debug || toggles['X-Cache-Key'])) h['x-cache-key'] = st.key;
    if (st.status === 'Hit' && st.served && (st.debug || toggles.age)) h.age = String(Math.floor(currentAge(st.served, at)));
  }

  function finishFlight(st: RequestState, result: FlightResult | undefined, holdUntil?: Promise<unknown>): void {
    const flight = st.flight;
    if (!flight) return;
    st.flight = undefined;
    flights.finish(flight, result, holdUntil);
  }

  function markPass(key: string, at: number): void {
    if (passUntil.size >= PASS_KEYS_MAX) passUntil.delete(passUntil.keys().next().value!);
    passUntil.set(key, at + passMs);
  }

  function passing(key: string, at: number): boolean {
    const until = passUntil.get(key);
    if (until === undefined) return false;
    if (until > at) return true;
    passUntil.delete(key);
    return false;
  }

  function hit(st: RequestState, entry: CachedResponse): LocalReply {
    st.status = 'Hit';
    st.served = entry;
    stats.hits++;
    return { status: entry.status, headers: entry.headers, body: entry.body, reason: 'proxy-cache: hit' };
  }

  /** Values of the request headers an entry varies on. */
  function varyValuesOf(names: readonly string[], headers: HeaderMap): string {
    return headersKeyPart(headers, names);
  }

  /** Edits the upstream request of a miss whose response may be stored. */
  function prepareUpstream(ex: Exchange, st: RequestState): void {
    const h = ex.upstreamHeaders;
    st.requestHeaders = { ...h };
    for (const name of unkeyed) if (h[name] !== undefined) delete h[name];
    // The client's own validators would get a 304 that cannot be stored; the response is sent whole.
    delete h['if-none-match'];
    delete h['if-modified-since'];
    const stale = st.stale;
    if (stale) {
      const etag = stale.headers.etag;
      const lastModified = stale.headers['last-modified'];
      if (typeof etag === 'string') h['if-none-match'] = etag;
      if (typeof lastModified === 'string') h['if-modified-since'] = lastModified;
      st.conditional = typeof etag === 'string' || typeof lastModified === 'string';
    }
    // Parameters outside vary_query_params are not in the key: they must not reach the upstream of
    // a response that may be stored. (A query a plugin rewrote is left alone.)
    if (varyParams && ex.upstreamQuery === ex.query) ex.upstreamQuery = keepParams(st.params, varyParams);
  }

  /** Stores an entry (under its Vary index when it has one); resolves when written. */
  function write(primary: string, entry: CachedResponse): void | Promise<void> {
    const retention = retentionMs(policy, entry);
    if (entry.vary.length === 0) return safely(() => store.set(primary, entry, retention), undefined);
    const names = entry.vary;
    const current = safely<CacheObject | undefined>(() => store.get(primary), undefined);
    return then(current, (found) => {
      const reuse = found?.kind === 'vary' && found.names.length === names.length && found.names.every((n, i) => n === names[i]);
      const index: VaryIndex = reuse
        ? { ...(found as VaryIndex), storedAt: entry.storedAt }
        : { kind: 'vary', version: CACHE_FORMAT_VERSION, names, generation: randomBytes(8).toString('hex'), storedAt: entry.storedAt };
      const a = safely(() => store.set(primary, index, retention), undefined);
      const b = safely(() => store.set(variantKey(primary, index.generation, entry.varyValues), entry, retention), undefined);
      if (isThenable(a) || isThenable(b)) return Promise.all([a, b]).then(() => undefined);
      return undefined;
    });
  }

  /** The stored object that answers this request: the response at the key, or the variant its Vary index points to. */
  function lookup(ex: Exchange, key: string): CachedResponse | undefined | Promise<CachedResponse | undefined> {
    return then(safely<CacheObject | undefined>(() => store.get(key), undefined), (found) => {
      if (found?.kind !== 'vary') return found;
      const variant = variantKey(key, found.generation, varyValuesOf(found.names, ex.upstreamHeaders));
      return then(safely<CacheObject | undefined>(() => store.get(variant), undefined), (v) => (v?.kind === 'response' ? v : undefined));
    });
  }

  /** stale-while-revalidate: one background GET per entry refreshes it. */
  function revalidate(ex: Exchange, st: RequestState, entry: CachedResponse): void {
    const key = st.key!;
    const slot = `${key}|${entry.varyValues}`;
    if (revalidating.has(slot) || disposed) return;
    revalidating.add(slot);
    stats.revalidations++;
    const service = ex.service!;
    const snapshot: HeaderMap = { ...ex.upstreamHeaders };
    const headers: HeaderMap = { ...snapshot };
    for (const name of unkeyed) delete headers[name];
    for (const name of ['content-length', 'transfer-encoding', 'expect', 'if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range']) delete headers[name];
    if (typeof entry.headers.etag === 'string') headers['if-none-match'] = entry.headers.etag;
    if (typeof entry.headers['last-modified'] === 'string') headers['if-modified-since'] = entry.headers['last-modified'];
    const query = varyParams && ex.upstreamQuery === ex.query ? keepParams(st.params, varyParams) : ex.upstreamQuery;
    const path = query === null ? ex.upstreamPath : `${ex.upstreamPath}?${query}`;
    // A balanced service has no single origin: the refresh goes to one of its targets.
    let dispatcher = service.pool.dispatcher;
    if (service.upstream) {
      const target = service.upstream.pickFor(ex);
      if (!target) {
        revalidating.delete(slot);
        return;
      }
      dispatcher = target.pool.dispatcher;
      if (headers.host === service.hostHeader) headers.host = target.hostHeader;
    }
    backgroundFetch(dispatcher, { path, headers: headers as Record<string, string | string[]>, timeoutMs: service.readTimeout, maxBodySize: store.maxBodySize })
      .then((res) => {
        if (disposed) return undefined;
        const at = now();
        if (res.kind === 'not-modified') {
          stats.notModified++;
          const updated = refreshEntry(policy, entry, res.headers, at, store.maxBodySize);
          return updated ? write(key, updated) : undefined;
        }
        if (res.kind !== 'response') return undefined;
        const verdict = judgeResponse(policy, res.status, res.headers, at, store.maxBodySize);
        if (!verdict.ok) return undefined;
        stats.stored++;
        return write(key, buildEntry(res.status, headersToStore(res.headers), res.body, verdict, at, varyValuesOf(verdict.vary, snapshot)));
      })
      .catch((err: unknown) => deps.logger.debug({ err: { message: (err as Error).message }, plugin: 'proxy-cache' }, 'background revalidation failed'))
      .finally(() => revalidating.delete(slot));
  }

  /** After a lookup: serve, refresh in the background, wait for a request in flight, or go upstream. */
  function decide(ex: Exchange, st: RequestState, entry: CachedResponse | undefined, reqCc: Directives | undefined): Outcome | Promise<Outcome> {
    const at = now();
    if (entry) {
      const use = usability(entry, at, reqCc);
      if (use === 'fresh') return hit(st, entry);
      if (use === 'stale-while-revalidate') {
        stats.staleWhileRevalidate++;
        revalidate(ex, st, entry);
        return hit(st, entry);
      }
      st.stale = entry;
    }
    if (reqCc?.has('only-if-cached')) {
      st.status = undefined;
      return { status: 504, reason: 'proxy-cache: only-if-cached and not cached' };
    }
    const method = ex.req.method;
    if (method === 'HEAD' || ex.req.headers.range !== undefined) {
      // Not stored (no body, or a part of one), but a GET in flight may answer it.
      st.mode = 'lookup';
      st.status = 'Bypass';
      stats.bypasses++;
      const waiting = config.request_coalescing ? flights.join(st.key!) : undefined;
      return waiting ? waiting.then((r) => afterWait(ex, st, r)) : undefined;
    }
    st.mode = 'store';
    st.status = st.stale ? 'Refresh' : 'Miss';
    if (config.request_coalescing && !passing(st.key!, at)) {
      const waiting = flights.join(st.key!);
      if (waiting) {
        stats.coalesced++;
        return waiting.then((r) => afterWait(ex, st, r));
      }
      st.flight = flights.lead(st.key!);
    }
    if (st.status === 'Miss') stats.misses++;
    else stats.refreshes++;
    prepareUpstream(ex, st);
    return undefined;
  }

  /** A request that waited for another: served from its result when it matches, else upstream on its own. */
  function afterWait(ex: Exchange, st: RequestState, result: FlightResult | undefined): Outcome {
    if (result) {
      const entry = result.entry;
      if (entry.vary.length === 0 || varyValuesOf(entry.vary, ex.upstreamHeaders) === entry.varyValues) return hit(st, entry);
    }
    if (st.mode === 'store') {
      if (st.status === 'Miss') stats.misses++;
      else stats.refreshes++;
      prepareUpstream(ex, st);
    }
    return undefined;
  }

  const instance: ProxyCacheInstance = {
    store,
    stats,
    get inFlight() {
      return flights.size;
    },

    access(ex) {
      pluginId ??= ex.chain?.all.find((p) => p.instance === instance)?.id;
      const req = ex.req;
      const method = req.method ?? 'GET';
      const debug = req.headers['kong-debug'] !== undefined;
      const bypass = () => {
        stats.bypasses++;
        states.set(ex, debug ? BYPASS_DEBUG : BYPASS);
        return undefined;
      };
      if (!methods.has(method)) return bypass();
      const reqCc = config.cache_control ? parseCacheControl(req.headers['cache-control']) : undefined;
      if (reqCc && (reqCc.has('no-store') || reqCc.has('no-cache'))) return bypass();
      const authorization = req.headers.authorization;
      if (!config.cache_authenticated && (authorization !== undefined || (ex.consumer !== undefined && ex.credential !== undefined))) return bypass();
      const params = parseQuery(ex.query);
      const st = newState('bypass', undefined, computeKey(ex, method, params, authorization), debug, params);
      states.set(ex, st);
      return then(lookup(ex, st.key!), (entry) => decide(ex, st, entry, reqCc));
    },

    response(ex) {
      const st = states.get(ex);
      if (!st) return;
      const at = now();
      const h = ex.responseHeaders;
      if (st.mode === 'store') {
        // A new response phase (a retry, or the gateway's own error after a failed attempt):
        // nothing decided for an earlier attempt applies to it.
        st.pending = undefined;
        st.substitute = undefined;
      }
      if (ex.localReply) {
        if (st.served) return decorate(h, st, at);
        // The upstream failed (connection, timeout): a stale copy may answer instead.
        if (st.mode === 'store' && st.stale && ex.proxyLatency >= 0 && SERVER_ERRORS.has(ex.status) && staleIfErrorAllowed(st.stale, at)) {
          const entry = st.stale;
          ex.status = entry.status;
          ex.responseHeaders = replayHeaders(entry, h);
          ex.responseBody = entry.body;
          st.status = 'Hit';
          st.served = entry;
          stats.staleIfError++;
          decorate(ex.responseHeaders, st, at);
          finishFlight(st, { entry, staleIfError: true });
          return;
        }
        if (st.mode === 'store') st.status = 'Bypass';
        decorate(h, st, at);
        finishFlight(st, undefined);
        return;
      }
      if (st.mode !== 'store') return decorate(h, st, at);
      const stale = st.stale;
      if (ex.status === 304 && st.conditional && stale) {
        // Our validators matched: the stored body is current. Refresh it and answer with it.
        stats.notModified++;
        const updated = refreshEntry(policy, stale, h, at, store.maxBodySize);
        const entry = updated ?? stale;
        const written = updated ? write(st.key!, updated) : undefined;
        ex.status = entry.status;
        ex.responseHeaders = replayHeaders(entry, h);
        st.served = entry;
        // The body is sent from responseBody (the core buffers the empty 304 body for it).
        st.substitute = { entry, why: 'not-modified' };
        decorate(ex.responseHeaders, st, at);
        finishFlight(st, updated ? { entry: updated, staleIfError: false } : undefined, isThenable(written) ? written : undefined);
        return;
      }
      if (stale && SERVER_ERRORS.has(ex.status) && staleIfErrorAllowed(stale, at)) {
        // Swapped in responseBody, once the error body is complete: if it is too large to buffer,
        // the core streams the upstream error as it is, and the headers must say so.
        st.substitute = { entry: stale, why: 'stale-if-error' };
        st.status = 'Bypass';
        decorate(h, st, at);
        finishFlight(st, { entry: stale, staleIfError: true });
        return;
      }
      const verdict = judgeResponse(policy, ex.status, h, at, store.maxBodySize);
      if (!verdict.ok) {
        st.status = 'Bypass';
        decorate(h, st, at);
        markPass(st.key!, at);
        finishFlight(st, undefined);
        return;
      }
      st.pending = { status: ex.status, headers: headersToStore(h), verdict };
      decorate(h, st, at);
    },

    needsResponseBody(ex) {
      const st = states.get(ex);
      return st !== undefined && (st.pending !== undefined || st.substitute !== undefined);
    },

    responseBody(ex, body) {
      const st = states.get(ex);
      if (!st) return body;
      const substitute = st.substitute;
      if (substitute) {
        st.substitute = undefined;
        const entry = substitute.entry;
        if (substitute.why === 'not-modified') return entry.body;
        // stale-if-error on an upstream 5xx: the whole error arrived, replace it.
        ex.status = entry.status;
        ex.responseHeaders = replayHeaders(entry, ex.responseHeaders);
        st.status = 'Hit';
        st.served = entry;
        stats.staleIfError++;
        decorate(ex.responseHeaders, st, now());
        return entry.body;
      }
      const pending = st.pending;
      if (!pending || ex.localReply) return body;
      st.pending = undefined;
      if (body.length > store.maxBodySize) {
        st.status = 'Bypass';
        decorate(ex.responseHeaders, st, now());
        markPass(st.key!, now());
        finishFlight(st, undefined);
        return body;
      }
      const entry = buildEntry(pending.status, pending.headers, body, pending.verdict, now(), varyValuesOf(pending.verdict.vary, st.requestHeaders ?? ex.upstreamHeaders));
      stats.stored++;
      const written = write(st.key!, entry);
      finishFlight(st, { entry, staleIfError: false }, isThenable(written) ? written : undefined);
      return body;
    },

    log(ex) {
      const st = states.get(ex);
      // A response that never completed (client gone, upstream failed mid-body, body too large to
      // buffer): nothing was stored; waiting requests go upstream.
      if (st?.flight) finishFlight(st, undefined);
    },

    admin(request) {
      if (!request.path.startsWith('/proxy-cache')) return undefined;
      return answerAdmin(request, registry);
    },

    async dispose() {
      disposed = true;
      registry.unregister(owner);
      if (config.strategy === 'memory') registry.releaseMemory(config.memory.dictionary_name, token);
      if (redis) await deps.redis!.release(redis);
    },
  };
  if (bodyMethods.length) instance.needsRequestBody = (ex) => bodyMethods.includes(ex.req.method ?? '');
  return instance;
}
