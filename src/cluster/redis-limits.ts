import { fixedWindowEnd, fixedWindowStart, periodMs } from './limit-algorithms.js';
import { FIXED_WINDOW_LUA, SLIDING_WINDOW_LUA, TOKEN_BUCKET_LUA } from './limit-scripts.js';
import type { LimitRequest, LimitStore, RawLimitResult } from './limit-types.js';
import type { SharedRedis } from './redis.js';

const SCRIPTS = {
  'fixed-window': ['gatehouseFixedWindow', FIXED_WINDOW_LUA],
  'sliding-window': ['gatehouseSlidingWindow', SLIDING_WINDOW_LUA],
  'token-bucket': ['gatehouseTokenBucket', TOKEN_BUCKET_LUA],
} as const;

/** The redis policy: one script call per request, exact across every gateway sharing the Redis. */
export class RedisLimitStore implements LimitStore {
  private readonly redis: SharedRedis;
  private readonly timeoutMs: number;
  private readonly prefix: string;

  constructor(redis: SharedRedis, timeoutMs: number, prefix = 'gatehouse:rl:') {
    this.redis = redis;
    this.timeoutMs = timeoutMs;
    this.prefix = prefix;
    for (const [name, lua] of Object.values(SCRIPTS)) redis.defineScript(name, lua);
  }

  consume(req: LimitRequest): Promise<RawLimitResult> {
    const { keys, args } = scriptCall(req, this.prefix);
    return this.redis.run(SCRIPTS[req.algorithm][0], keys, args, this.timeoutMs).then(parseReply);
  }
}

/** The KEYS and ARGV of the script for one request (exported for tests). */
export function scriptCall(req: LimitRequest, prefix: string): { keys: string[]; args: (string | number)[] } {
  // The hash tag keeps every key of one identity in one Cluster slot.
  const base = `${prefix}{${req.key}}:`;
  const now = req.now;
  const keys: string[] = [];
  const args: (string | number)[] = [];
  if (req.algorithm === 'fixed-window') {
    for (const w of req.windows) {
      const start = fixedWindowStart(w.period, now);
      keys.push(`${base}${w.period}:${start}`);
      args.push(w.limit, fixedWindowEnd(w.period, start) - now + 1000);
    }
  } else if (req.algorithm === 'sliding-window') {
    for (const w of req.windows) {
      const size = periodMs(w.period);
      const start = Math.floor(now / size) * size;
      keys.push(`${base}${w.period}:${start - size}`, `${base}${w.period}:${start}`);
      args.push(w.limit, size, now - start, start + 2 * size - now + 1000);
    }
  } else {
    args.push(now);
    for (const w of req.windows) {
      keys.push(`${base}${w.period}:tb`);
      args.push(w.limit, periodMs(w.period), w.capacity);
    }
  }
  return { keys, args };
}

function parseReply(reply: unknown): RawLimitResult {
  if (!Array.isArray(reply) || reply.length < 1) throw new Error(`unexpected reply from the rate-limit script: ${JSON.stringify(reply)}`);
  const values = reply.slice(1).map(Number);
  return { blocked: Number(reply[0]) ? 1 : 0, values };
}
