/**
 * The cache store interface shared by the memory LRU and Redis, and the objects they hold. A store
 * only keeps bytes and metadata: what may be stored and when an object is fresh is decided by the
 * caller (the proxy-cache plugin).
 */

/** A value, or a promise of it: the memory store answers synchronously so a hit needs no await. */
export type MaybePromise<T> = T | Promise<T>;

/** Bumped when the stored shape changes; objects of another version read as absent. */
export const CACHE_FORMAT_VERSION = 1;

/** A stored response. */
export interface CachedResponse {
  kind: 'response';
  version: number;
  status: number;
  /** Response headers as they are replayed (lower-case names; per-request headers removed). */
  headers: Record<string, string | string[]>;
  body: Buffer;
  /** Milliseconds since the epoch when the response was received (or last revalidated). */
  storedAt: number;
  /** Freshness lifetime in seconds. */
  ttl: number;
  /** Age the response already had when it was received (upstream `Age`), in seconds. */
  initialAge: number;
  /** Seconds after going stale during which it may be served while a refresh runs in the background. */
  staleWhileRevalidate: number;
  /** Seconds after going stale during which it may be served when the upstream fails. */
  staleIfError: number;
  /** `must-revalidate` / `proxy-revalidate` / `s-maxage`: never served stale. */
  mustRevalidate: boolean;
  /** Request headers named by the upstream's `Vary` (lower-case, sorted); empty when none. */
  vary: string[];
  /** The values of those headers in the request that produced the response (see varyValues). */
  varyValues: string;
}

/**
 * Stored at a response's primary key when the upstream answered with `Vary`: the responses
 * themselves live under secondary keys made of the primary key, the generation and the request's
 * values for `names`. A new generation (a purge, or another Vary list) orphans the old variants.
 */
export interface VaryIndex {
  kind: 'vary';
  version: number;
  names: string[];
  generation: string;
  storedAt: number;
}

export type CacheObject = CachedResponse | VaryIndex;

export interface CacheStats {
  entries: number;
  bytes: number;
  evictions: number;
}

export interface CacheStore {
  readonly kind: 'memory' | 'redis';
  /** Largest body this store accepts (bytes). */
  readonly maxBodySize: number;
  get(key: string): MaybePromise<CacheObject | undefined>;
  /** `retentionMs` is how long the store keeps the object (0: until evicted). */
  set(key: string, value: CacheObject, retentionMs: number): MaybePromise<void>;
  /** True when something was deleted. */
  delete(key: string): MaybePromise<boolean>;
  /** Removes every object of this store (its namespace only). */
  flush(): MaybePromise<void>;
}

export function isThenable<T>(v: unknown): v is Promise<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
