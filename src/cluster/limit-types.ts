/** Rate-limit periods, in Kong's order (shortest first). */
export const PERIODS = ['second', 'minute', 'hour', 'day', 'month', 'year'] as const;
export type Period = (typeof PERIODS)[number];

export type LimitAlgorithm = 'fixed-window' | 'sliding-window' | 'token-bucket';

/**
 * Kong's window lengths in seconds (kong/plugins/rate-limiting/expiration.lua): a month is always
 * 30 days and a year 365 days for RateLimit-Reset, even though fixed windows start on calendar
 * boundaries.
 */
export const PERIOD_SECONDS: Readonly<Record<Period, number>> = {
  second: 1,
  minute: 60,
  hour: 3600,
  day: 86400,
  month: 2592000,
  year: 31536000,
};

/** One configured period of one limit. */
export interface LimitWindow {
  period: Period;
  /** Requests allowed per period. */
  limit: number;
  /** Token bucket only: most tokens the bucket holds (defaults to `limit`). */
  capacity: number;
}

/** One request to count against every window of one identity, atomically. */
export interface LimitRequest {
  /** Identity of the counter: plugin, limit_by and identifier. Windows are appended to it. */
  key: string;
  algorithm: LimitAlgorithm;
  windows: readonly LimitWindow[];
  /** Milliseconds since the epoch (the caller's clock, so tests can control it). */
  now: number;
}

/**
 * What the store answers, before interpretation. `blocked` is 1 when any window refused (and then
 * nothing was counted). Per window, in request order:
 * - fixed-window: [count] (after this request when allowed, before it when blocked)
 * - sliding-window: [previous bucket count, current bucket count] (same rule)
 * - token-bucket: [tokens left] (after this request when allowed)
 */
export interface RawLimitResult {
  blocked: 0 | 1;
  values: number[];
}

export interface WindowState {
  period: Period;
  limit: number;
  /** Requests still allowed in this window after this one (never below 0). */
  remaining: number;
  /** Seconds until the window resets or, when exhausted, until it lets a request through (at least 1). */
  reset: number;
}

export interface LimitResult {
  allowed: boolean;
  windows: WindowState[];
}

/** A place that counts: in-process (synchronous), the cluster primary over IPC, or Redis. */
export interface LimitStore {
  consume(request: LimitRequest): RawLimitResult | Promise<RawLimitResult>;
}
