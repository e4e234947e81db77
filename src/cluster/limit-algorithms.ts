import { PERIOD_SECONDS, type LimitAlgorithm, type LimitRequest, type LimitResult, type LimitWindow, type Period, type RawLimitResult, type WindowState } from './limit-types.js';

/*
 * The three limit algorithms, once: the window arithmetic shared by every store, the in-memory
 * implementation used by the local policy, and the interpretation of what a store answers
 * (remaining, reset). The Redis scripts in limit-scripts.ts implement the same decisions with the
 * same floating-point expressions, so both policies agree request for request.
 */

/** Start of the fixed window that contains `now`: calendar-aligned in UTC, as Kong does. */
export function fixedWindowStart(period: Period, now: number): number {
  if (period === 'month' || period === 'year') {
    const d = new Date(now);
    return period === 'month' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) : Date.UTC(d.getUTCFullYear(), 0, 1);
  }
  const size = PERIOD_SECONDS[period] * 1000;
  return Math.floor(now / size) * size;
}

/** End (exclusive) of the fixed window starting at `start`: the next calendar month or year for those. */
export function fixedWindowEnd(period: Period, start: number): number {
  if (period === 'month' || period === 'year') {
    const d = new Date(start);
    return period === 'month' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) : Date.UTC(d.getUTCFullYear() + 1, 0, 1);
  }
  return start + PERIOD_SECONDS[period] * 1000;
}

/** Sliding windows and buckets use fixed lengths (a month is 30 days, a year 365). */
export function periodMs(period: Period): number {
  return PERIOD_SECONDS[period] * 1000;
}

/** The weighted sliding-window estimate; the Lua script evaluates the same expression. */
export function slidingWouldExceed(prev: number, cur: number, size: number, elapsed: number, limit: number): boolean {
  return (prev * (size - elapsed)) / size + cur + 1 > limit;
}

/** Milliseconds until a sliding window lets one more request through (0: it already does). */
export function slidingWaitMs(prev: number, cur: number, size: number, elapsed: number, limit: number): number {
  if (!slidingWouldExceed(prev, cur, size, elapsed, limit)) return 0;
  // A limit below 1 never lets a request through; say "one window" rather than divide by zero.
  if (limit < 1) return size;
  if (cur + 1 <= limit) {
    // Still in this bucket: wait until the previous bucket's weight has dropped enough.
    return Math.max(0, size - elapsed - ((limit - 1 - cur) * size) / prev);
  }
  // Only the next bucket, where this bucket's count becomes the weighted previous one.
  return size - elapsed + size * (1 - (limit - 1) / cur);
}

const secondsAtLeastOne = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));

/** Turns a store's raw answer into remaining counts and reset times per window. */
export function interpret(algorithm: LimitAlgorithm, windows: readonly LimitWindow[], raw: RawLimitResult, now: number): LimitResult {
  const out: WindowState[] = [];
  const v = raw.values;
  for (let i = 0; i < windows.length; i++) {
    const w = windows[i]!;
    let remaining: number;
    let reset: number;
    if (algorithm === 'fixed-window') {
      const count = v[i]!;
      remaining = Math.max(0, w.limit - count);
      // Kong: max(1, window - floor((now - period_start) / 1000)), with its fixed month and year lengths.
      reset = Math.max(1, PERIOD_SECONDS[w.period] - Math.floor((now - fixedWindowStart(w.period, now)) / 1000));
    } else if (algorithm === 'sliding-window') {
      const prev = v[2 * i]!;
      const cur = v[2 * i + 1]!;
      const size = periodMs(w.period);
      const elapsed = now - Math.floor(now / size) * size;
      const estimate = (prev * (size - elapsed)) / size + cur;
      remaining = Math.max(0, Math.floor(w.limit - estimate));
      const wait = slidingWaitMs(prev, cur, size, elapsed, w.limit);
      reset = secondsAtLeastOne(wait > 0 ? wait : size - elapsed);
    } else {
      const tokens = v[i]!;
      const ratePerMs = w.limit / periodMs(w.period);
      remaining = Math.max(0, Math.floor(tokens));
      reset = secondsAtLeastOne(tokens < 1 ? (1 - tokens) / ratePerMs : (w.capacity - tokens) / ratePerMs);
    }
    out.push({ period: w.period, limit: w.limit, remaining, reset });
  }
  return { allowed: raw.blocked === 0, windows: out };
}

interface Entry {
  /** A count, or the tokens of a bucket. */
  v: number;
  /** Bucket: when it was last refilled. */
  t: number;
  /** Expiry (ms since the epoch, on the callers' clock). */
  exp: number;
}

/**
 * The counters of one node, in memory. Synchronous: the local policy counts without awaiting.
 * Expired entries are dropped when read and by a periodic sweep.
 */
export class MemoryLimitStore {
  private readonly entries = new Map<string, Entry>();
  /** The latest clock value seen: the sweep expires against the callers' clock, not the wall clock. */
  private latest = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(sweepEveryMs = 5000) {
    this.timer = setInterval(() => this.sweep(), sweepEveryMs);
    this.timer.unref();
  }

  get size(): number {
    return this.entries.size;
  }

  consume(req: LimitRequest): RawLimitResult {
    const now = req.now;
    if (now > this.latest) this.latest = now;
    switch (req.algorithm) {
      case 'fixed-window':
        return this.fixed(req, now);
      case 'sliding-window':
        return this.sliding(req, now);
      default:
        return this.bucket(req, now);
    }
  }

  sweep(): void {
    const now = this.latest;
    for (const [k, e] of this.entries) if (e.exp <= now) this.entries.delete(k);
  }

  close(): void {
    clearInterval(this.timer);
    this.entries.clear();
  }

  private live(key: string, now: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e && e.exp <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  private fixed(req: LimitRequest, now: number): RawLimitResult {
    const ws = req.windows;
    const keys: string[] = [];
    const values: number[] = [];
    let blocked: 0 | 1 = 0;
    for (const w of ws) {
      const key = `${req.key}|${w.period}|${fixedWindowStart(w.period, now)}`;
      keys.push(key);
      const count = this.live(key, now)?.v ?? 0;
      values.push(count);
      if (count + 1 > w.limit) blocked = 1;
    }
    if (!blocked) {
      for (let i = 0; i < ws.length; i++) {
        const key = keys[i]!;
        let e = this.live(key, now);
        if (!e) {
          const period = ws[i]!.period;
          e = { v: 0, t: 0, exp: fixedWindowEnd(period, fixedWindowStart(period, now)) + 1000 };
          this.entries.set(key, e);
        }
        values[i] = ++e.v;
      }
    }
    return { blocked, values };
  }

  private sliding(req: LimitRequest, now: number): RawLimitResult {
    const ws = req.windows;
    const values: number[] = [];
    const curKeys: string[] = [];
    let blocked: 0 | 1 = 0;
    for (const w of ws) {
      const size = periodMs(w.period);
      const start = Math.floor(now / size) * size;
      const prev = this.live(`${req.key}|${w.period}|${start - size}`, now)?.v ?? 0;
      const curKey = `${req.key}|${w.period}|${start}`;
      curKeys.push(curKey);
      const cur = this.live(curKey, now)?.v ?? 0;
      values.push(prev, cur);
      if (slidingWouldExceed(prev, cur, size, now - start, w.limit)) blocked = 1;
    }
    if (!blocked) {
      for (let i = 0; i < ws.length; i++) {
        const key = curKeys[i]!;
        let e = this.live(key, now);
        if (!e) {
          const size = periodMs(ws[i]!.period);
          e = { v: 0, t: 0, exp: Math.floor(now / size) * size + 2 * size + 1000 };
          this.entries.set(key, e);
        }
        values[2 * i + 1] = ++e.v;
      }
    }
    return { blocked, values };
  }

  private bucket(req: LimitRequest, now: number): RawLimitResult {
    const ws = req.windows;
    const values: number[] = [];
    const stamps: number[] = [];
    let blocked: 0 | 1 = 0;
    for (const w of ws) {
      const rate = w.limit / periodMs(w.period);
      const e = this.live(`${req.key}|${w.period}|tb`, now);
      let tokens: number;
      let stamp: number;
      if (!e) {
        tokens = w.capacity;
        stamp = now;
      } else {
        const dt = Math.max(0, now - e.t);
        tokens = Math.min(w.capacity, e.v + dt * rate);
        stamp = Math.max(e.t, now);
      }
      values.push(tokens);
      stamps.push(stamp);
      if (tokens < 1) blocked = 1;
    }
    if (!blocked) {
      for (let i = 0; i < ws.length; i++) {
        const w = ws[i]!;
        const rate = w.limit / periodMs(w.period);
        const tokens = values[i]! - 1;
        values[i] = tokens;
        this.entries.set(`${req.key}|${w.period}|tb`, { v: tokens, t: stamps[i]!, exp: stamps[i]! + Math.ceil((w.capacity - tokens) / rate) + 1000 });
      }
    }
    return { blocked, values };
  }
}
