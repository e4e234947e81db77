import { createHash } from 'node:crypto';
import type { Exchange, LocalReply, Outcome } from '../../pipeline/exchange.js';
import { errorReply } from '../../pipeline/reply.js';
import { interpret, MemoryLimitStore } from '../../cluster/limit-algorithms.js';
import { PERIODS, type LimitResult, type LimitStore, type LimitWindow, type RawLimitResult } from '../../cluster/limit-types.js';
import { RedisLimitStore } from '../../cluster/redis-limits.js';
import type { SharedRedis } from '../../cluster/redis.js';
import { connectionOf } from '../../cluster/redis-config.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { effectiveRedis, type RateLimitingConfig } from './schema.js';

/** Counters a test or a future metrics endpoint reads. */
export interface RateLimitingStats {
  allowed: number;
  limited: number;
  /** The counter store failed or timed out. */
  storeErrors: number;
  /** Requests let through because of a store failure (fault_tolerant = true). */
  failedOpen: number;
  /** Requests refused with 503 because of a store failure (fault_tolerant = false). */
  failedClosed: number;
}

export interface RateLimitingInstance extends PluginInstance {
  readonly stats: RateLimitingStats;
}

const TITLE: Record<string, string> = { second: 'second', minute: 'minute', hour: 'hour', day: 'day', month: 'month', year: 'year' };
const SHARED_KEY = 'rate-limiting:headers';

function isThenable(v: unknown): v is Promise<RawLimitResult> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** Kong's client headers: per period, then the RateLimit-* trio for the window with the fewest remaining (ties: the longer one). */
export function rateLimitHeaders(result: LimitResult): { headers: Record<string, string>; reset: number } {
  const headers: Record<string, string> = {};
  let best: LimitResult['windows'][number] | undefined;
  for (const w of result.windows) {
    headers[`x-ratelimit-limit-${TITLE[w.period]}`] = String(w.limit);
    headers[`x-ratelimit-remaining-${TITLE[w.period]}`] = String(w.remaining);
    // Windows come shortest first, so `<=` lets the longer window win a tie.
    if (!best || w.remaining <= best.remaining) best = w;
  }
  headers['ratelimit-limit'] = String(best!.limit);
  headers['ratelimit-remaining'] = String(best!.remaining);
  headers['ratelimit-reset'] = String(best!.reset);
  return { headers, reset: best!.reset };
}

export function create(config: RateLimitingConfig, deps: PluginDeps): RateLimitingInstance {
  const windows: LimitWindow[] = [];
  for (const period of PERIODS) {
    const limit = config[period];
    if (limit === undefined) continue;
    // `burst` sizes the bucket of the shortest period; the others hold their own limit.
    const capacity = windows.length === 0 && config.burst !== undefined ? config.burst : limit;
    windows.push({ period, limit, capacity });
  }
  const now = deps.now ?? Date.now;
  const algorithm = config.algorithm;
  const stats: RateLimitingStats = { allowed: 0, limited: 0, storeErrors: 0, failedOpen: 0, failedClosed: 0 };
  const headerName = config.header_name?.toLowerCase();

  let redis: SharedRedis | undefined;
  let ownStore: MemoryLimitStore | undefined;
  let store: LimitStore;
  if (config.policy === 'redis') {
    if (!deps.redis) throw new Error('the redis policy needs the gateway\'s Redis registry');
    const r = effectiveRedis(config);
    redis = deps.redis.acquire(connectionOf(r));
    store = new RedisLimitStore(redis, r.timeout);
  } else {
    store = deps.counters ?? (ownStore = new MemoryLimitStore());
  }

  /** The plugin entity id, found once in the chain that runs this instance: counters survive reloads that keep it. */
  let scope: string | undefined = deps.pluginId;
  const fallbackScope = createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 32);

  function identify(ex: Exchange): string {
    let id: string | undefined;
    switch (config.limit_by) {
      case 'consumer':
        id = ex.consumer?.id;
        break;
      case 'credential':
        id = ex.credential?.id;
        break;
      case 'service':
        id = ex.service?.id;
        break;
      case 'header': {
        const v = ex.req.headersDistinct[headerName!]?.[0];
        if (v) id = v;
        break;
      }
      case 'path':
        if (ex.path === config.path) id = ex.path;
        break;
      default:
        break;
    }
    id ??= ex.clientIp;
    // Long identifiers (header values) are hashed so keys stay short.
    return id.length > 128 ? `sha256:${createHash('sha256').update(id).digest('base64url')}` : id;
  }

  function decide(ex: Exchange, at: number, raw: RawLimitResult): Outcome {
    const result = interpret(algorithm, windows, raw, at);
    if (result.allowed) stats.allowed++;
    else stats.limited++;
    if (config.hide_client_headers) {
      return result.allowed ? undefined : errorReply(ex, config.error_code, config.error_message, 'rate-limiting: limit exceeded');
    }
    const { headers, reset } = rateLimitHeaders(result);
    ex.shared[SHARED_KEY] = headers;
    if (result.allowed) return undefined;
    return errorReply(ex, config.error_code, config.error_message, 'rate-limiting: limit exceeded', { ...headers, 'retry-after': String(reset) });
  }

  function failed(ex: Exchange, err: unknown): LocalReply | undefined {
    stats.storeErrors++;
    if (config.fault_tolerant) {
      stats.failedOpen++;
      return undefined;
    }
    stats.failedClosed++;
    const what = config.policy === 'redis' ? 'redis' : 'node counters';
    return errorReply(ex, 503, 'Rate limiting is temporarily unavailable', `rate-limiting: ${what} unavailable (${(err as Error).message})`);
  }

  const instance: RateLimitingInstance = {
    stats,

    access(ex) {
      scope ??= ex.chain?.all.find((p) => p.instance === instance)?.id;
      const at = now();
      const request = { key: `${scope ?? fallbackScope}:${identify(ex)}`, algorithm, windows, now: at };
      let raw: RawLimitResult | Promise<RawLimitResult>;
      try {
        raw = store.consume(request);
      } catch (err) {
        return failed(ex, err);
      }
      if (isThenable(raw)) {
        return raw.then(
          (r) => decide(ex, at, r),
          (err) => failed(ex, err),
        );
      }
      return decide(ex, at, raw);
    },

    response(ex) {
      const headers = ex.shared[SHARED_KEY] as Record<string, string> | undefined;
      if (headers) Object.assign(ex.responseHeaders, headers);
    },

    async dispose() {
      ownStore?.close();
      if (redis) await deps.redis!.release(redis);
    },
  };
  return instance;
}
