import { ageOf, deltaSeconds, freshnessLifetime, parseCacheControl, parseVary, type Directives } from '../../cache/cache-control.js';
import { ContentTypeMatcher } from '../../cache/mime-type.js';
import { CACHE_FORMAT_VERSION, type CachedResponse } from '../../cache/types.js';
import type { HeaderMap } from '../../pipeline/exchange.js';
import type { ProxyCacheConfig } from './schema.js';

/**
 * What may be stored and for how long, and whether a stored response may be served: pure
 * functions over a policy compiled once from the plugin config.
 */
export interface Policy {
  codes: ReadonlySet<number>;
  contentTypes: ContentTypeMatcher;
  cacheControl: boolean;
  cacheTtl: number;
  storageTtl: number | undefined;
  staleWhileRevalidate: number;
  staleIfError: number;
}

export function compilePolicy(config: ProxyCacheConfig): Policy {
  return {
    codes: new Set(config.response_code),
    contentTypes: new ContentTypeMatcher(config.content_type),
    cacheControl: config.cache_control,
    cacheTtl: config.cache_ttl,
    storageTtl: config.storage_ttl,
    staleWhileRevalidate: config.stale_while_revalidate,
    staleIfError: config.stale_if_error,
  };
}

export type Verdict =
  | { ok: true; ttl: number; initialAge: number; staleWhileRevalidate: number; staleIfError: number; mustRevalidate: boolean; vary: string[] }
  | { ok: false; reason: string };

/**
 * May this upstream response be stored? Kong's rules (status, exact content type, and with
 * cache_control a positive lifetime), plus the ones an HTTP cache must never break whatever the
 * config: no Set-Cookie, no private / no-store / no-cache, no `Vary: *`, no partial content.
 */
export function judgeResponse(policy: Policy, status: number, headers: Record<string, string | string[] | undefined>, now: number, maxBodySize: number): Verdict {
  if (!policy.codes.has(status) || status === 206 || status === 304) return { ok: false, reason: `status ${status}` };
  if (!policy.contentTypes.matches(headers['content-type'])) return { ok: false, reason: 'content type' };
  if (headers['set-cookie'] !== undefined) return { ok: false, reason: 'set-cookie' };
  const cc = parseCacheControl(headers['cache-control']);
  if (cc.has('private') || cc.has('no-store') || cc.has('no-cache')) return { ok: false, reason: 'cache-control' };
  const vary = parseVary(headers.vary);
  if (vary === '*') return { ok: false, reason: 'vary *' };
  const length = headers['content-length'];
  if (typeof length === 'string' && Number(length) > maxBodySize) return { ok: false, reason: 'body too large' };
  const mustRevalidate = cc.has('must-revalidate') || cc.has('proxy-revalidate') || cc.has('s-maxage');
  if (!policy.cacheControl) {
    return { ok: true, ttl: policy.cacheTtl, initialAge: 0, staleWhileRevalidate: policy.staleWhileRevalidate, staleIfError: policy.staleIfError, mustRevalidate, vary };
  }
  const ttl = freshnessLifetime(cc, headers, now);
  const initialAge = ageOf(headers);
  if (ttl - initialAge <= 0) return { ok: false, reason: 'no freshness lifetime' };
  return {
    ok: true,
    ttl,
    initialAge,
    staleWhileRevalidate: deltaSeconds(cc, 'stale-while-revalidate') ?? policy.staleWhileRevalidate,
    staleIfError: deltaSeconds(cc, 'stale-if-error') ?? policy.staleIfError,
    mustRevalidate,
    vary,
  };
}

/**
 * Response headers that are not replayed from the cache: framing (recomputed), the cache's own,
 * and per-request values the gateway or a plugin adds (request id, latencies, rate-limit counters,
 * which Kong also drops on a hit).
 */
const NOT_STORED = new Set([
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
  'age',
  'set-cookie',
  'x-cache-status',
  'x-cache-key',
]);

function isPerRequest(name: string): boolean {
  return name.startsWith('x-gatehouse-') || name.includes('ratelimit');
}

export function headersToStore(headers: HeaderMap): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    if (NOT_STORED.has(name) || isPerRequest(name)) continue;
    const v = headers[name]!;
    out[name] = Array.isArray(v) ? [...v] : v;
  }
  return out;
}

/**
 * Headers for a stored response replayed in place of another (a 304 that refreshed it, or an
 * upstream error replaced by a stale copy): the stored ones, plus the per-request ones of the
 * response being replaced (gateway headers, CORS and rate-limit headers other plugins added).
 */
export function replayHeaders(entry: CachedResponse, current: HeaderMap): HeaderMap {
  const out: HeaderMap = { ...entry.headers };
  for (const name in current) {
    if (isPerRequest(name) || name.startsWith('access-control-') || (name === 'server' && out.server === undefined)) out[name] = current[name]!;
  }
  return out;
}

export function buildEntry(
  status: number,
  headers: Record<string, string | string[]>,
  body: Buffer,
  verdict: Extract<Verdict, { ok: true }>,
  now: number,
  varyValues: string,
): CachedResponse {
  return {
    kind: 'response',
    version: CACHE_FORMAT_VERSION,
    status,
    headers,
    body,
    storedAt: now,
    ttl: verdict.ttl,
    initialAge: verdict.initialAge,
    staleWhileRevalidate: verdict.staleWhileRevalidate,
    staleIfError: verdict.staleIfError,
    mustRevalidate: verdict.mustRevalidate,
    vary: verdict.vary,
    varyValues,
  };
}

/**
 * A stored response validated by a 304 (RFC 9111 4.3.4): the 304's headers replace the stored
 * ones (Content-Length excepted), and freshness restarts. Undefined when the updated headers no
 * longer allow storing it (it is still sent for this request).
 */
export function refreshEntry(policy: Policy, entry: CachedResponse, notModified: HeaderMap, now: number, maxBodySize: number): CachedResponse | undefined {
  if (notModified['set-cookie'] !== undefined) return undefined;
  const headers: Record<string, string | string[]> = { ...entry.headers };
  const update = headersToStore(notModified);
  for (const name in update) headers[name] = update[name]!;
  const verdict = judgeResponse(policy, entry.status, { ...headers, age: notModified.age }, now, maxBodySize);
  if (!verdict.ok) return undefined;
  return buildEntry(entry.status, headers, entry.body, { ...verdict, vary: entry.vary }, now, entry.varyValues);
}

/** How long the store keeps an entry (ms; 0: until evicted). */
export function retentionMs(policy: Policy, entry: CachedResponse): number {
  if (policy.storageTtl !== undefined) return policy.storageTtl * 1000;
  const hasValidator = entry.headers.etag !== undefined || entry.headers['last-modified'] !== undefined;
  const extra = Math.max(entry.staleWhileRevalidate, entry.staleIfError, hasValidator ? entry.ttl : 0);
  return Math.max(1, (entry.ttl - entry.initialAge + extra) * 1000);
}

/** Current age in seconds (RFC 9111 4.2.3, with the age it had on arrival). */
export function currentAge(entry: CachedResponse, now: number): number {
  return entry.initialAge + Math.max(0, now - entry.storedAt) / 1000;
}

export type Usability = 'fresh' | 'stale-while-revalidate' | 'stale';

/**
 * Can this entry answer the request? `fresh`: serve it. `stale-while-revalidate`: serve it and
 * refresh it in the background. `stale`: go upstream (conditionally when it has validators).
 * Request directives count only with cache_control (`reqCc` given).
 */
export function usability(entry: CachedResponse, now: number, reqCc: Directives | undefined): Usability {
  const age = currentAge(entry, now);
  const fresh = age <= entry.ttl;
  if (reqCc && reqCc.size) {
    const maxAge = deltaSeconds(reqCc, 'max-age');
    if (maxAge !== undefined && age > maxAge) return 'stale';
    const minFresh = deltaSeconds(reqCc, 'min-fresh');
    if (minFresh !== undefined && entry.ttl - age < minFresh) return 'stale';
    if (!fresh && reqCc.has('max-stale') && !entry.mustRevalidate) {
      const maxStale = deltaSeconds(reqCc, 'max-stale');
      if (maxStale === undefined || age - entry.ttl <= maxStale) return 'fresh';
    }
  }
  if (fresh) return 'fresh';
  if (!entry.mustRevalidate && age - entry.ttl <= entry.staleWhileRevalidate) return 'stale-while-revalidate';
  return 'stale';
}

export function staleIfErrorAllowed(entry: CachedResponse, now: number): boolean {
  return !entry.mustRevalidate && entry.staleIfError > 0 && currentAge(entry, now) - entry.ttl <= entry.staleIfError;
}
