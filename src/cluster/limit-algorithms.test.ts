import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fixedWindowEnd, fixedWindowStart, interpret, MemoryLimitStore } from './limit-algorithms.js';
import type { LimitAlgorithm, LimitRequest, LimitWindow, Period } from './limit-types.js';
import { RedisRegistry } from './redis.js';
import { RedisLimitStore } from './redis-limits.js';
import { createLogger } from '../observability/logger.js';

const T0 = Date.UTC(2025, 0, 15, 10, 20, 0); // a minute boundary
const w = (period: Period, limit: number, capacity = limit): LimitWindow => ({ period, limit, capacity });

/** A store plus a controllable clock: `hit(at)` counts one request at `at` ms. */
function limiter(algorithm: LimitAlgorithm, windows: LimitWindow[]) {
  const store = new MemoryLimitStore();
  const key = randomUUID();
  return {
    store,
    hit(at: number) {
      const raw = store.consume({ key, algorithm, windows, now: at });
      return interpret(algorithm, windows, raw, at);
    },
  };
}

describe('limit algorithms (memory store, controllable clock)', () => {
  it('calendar windows are UTC-aligned; months and years end on calendar boundaries', () => {
    const now = Date.UTC(2024, 1, 29, 23, 59, 59, 999);
    assert.equal(fixedWindowStart('second', now), Date.UTC(2024, 1, 29, 23, 59, 59));
    assert.equal(fixedWindowStart('minute', now), Date.UTC(2024, 1, 29, 23, 59));
    assert.equal(fixedWindowStart('hour', now), Date.UTC(2024, 1, 29, 23));
    assert.equal(fixedWindowStart('day', now), Date.UTC(2024, 1, 29));
    assert.equal(fixedWindowStart('month', now), Date.UTC(2024, 1, 1));
    assert.equal(fixedWindowStart('year', now), Date.UTC(2024, 0, 1));
    assert.equal(fixedWindowEnd('month', Date.UTC(2024, 1, 1)), Date.UTC(2024, 2, 1));
    assert.equal(fixedWindowEnd('year', Date.UTC(2024, 0, 1)), Date.UTC(2025, 0, 1));
  });

  it('fixed-window: the limit holds to the last millisecond of the window and resets at its edge', () => {
    const l = limiter('fixed-window', [w('minute', 2)]);
    assert.deepEqual(l.hit(T0).windows[0], { period: 'minute', limit: 2, remaining: 1, reset: 60 });
    assert.deepEqual(l.hit(T0 + 30_500).windows[0], { period: 'minute', limit: 2, remaining: 0, reset: 30 });
    const blocked = l.hit(T0 + 59_999);
    assert.equal(blocked.allowed, false);
    assert.deepEqual(blocked.windows[0], { period: 'minute', limit: 2, remaining: 0, reset: 1 });
    const next = l.hit(T0 + 60_000);
    assert.equal(next.allowed, true, 'a new minute starts a new count');
    assert.equal(next.windows[0]!.remaining, 1);
  });

  it('fixed-window: blocked requests are not counted, in any window', () => {
    const l = limiter('fixed-window', [w('second', 1), w('minute', 3)]);
    assert.equal(l.hit(T0).allowed, true);
    for (let i = 0; i < 5; i++) assert.equal(l.hit(T0 + 100 + i).allowed, false);
    const r = l.hit(T0 + 1000);
    assert.equal(r.allowed, true);
    assert.equal(r.windows[1]!.remaining, 1, 'only the two allowed requests count against the minute');
  });

  it("fixed-window: RateLimit-Reset uses Kong's 30-day month (never below 1 on the 31st)", () => {
    const l = limiter('fixed-window', [w('month', 10)]);
    const day31 = Date.UTC(2025, 0, 31, 12);
    assert.equal(l.hit(day31).windows[0]!.reset, 1);
    const day2 = Date.UTC(2025, 1, 2, 0, 0, 0);
    assert.equal(l.hit(day2).windows[0]!.reset, 2592000 - 86400);
  });

  it('sliding-window: the previous window counts by how much of it still overlaps', () => {
    const l = limiter('sliding-window', [w('minute', 10)]);
    for (let i = 0; i < 10; i++) assert.equal(l.hit(T0 + 50_000 + i).allowed, true);
    assert.equal(l.hit(T0 + 59_000).allowed, false);
    // 15 s into the next minute 75% of the previous 10 still weigh: 7.5, so two more fit (9.5), not three.
    const at = T0 + 75_000;
    assert.equal(l.hit(at).allowed, true);
    const second = l.hit(at + 1);
    assert.equal(second.allowed, true);
    assert.equal(second.windows[0]!.remaining, 0);
    const third = l.hit(at + 2);
    assert.equal(third.allowed, false);
    // Waiting: 7.5 + 2 + 1 <= 10 once the previous weight is <= 7, i.e. at 18 s into the minute.
    assert.equal(third.windows[0]!.reset, 3);
    assert.equal(l.hit(T0 + 77_999).allowed, false);
    assert.equal(l.hit(T0 + 78_000).allowed, true);
    // Two minutes later nothing of the old counts is left.
    assert.equal(l.hit(T0 + 180_000).windows[0]!.remaining, 9);
  });

  it('sliding-window: a window filled in this bucket waits into the next one', () => {
    const l = limiter('sliding-window', [w('second', 4)]);
    for (let i = 0; i < 4; i++) l.hit(T0 + i);
    const blocked = l.hit(T0 + 10);
    assert.equal(blocked.allowed, false);
    // Next second: 4 * (1 - t) + 0 + 1 <= 4 from t = 250 ms, so 1.24 s from now: rounded up, 2.
    assert.equal(blocked.windows[0]!.reset, 2);
    assert.equal(l.hit(T0 + 1249).allowed, false);
    assert.equal(l.hit(T0 + 1250).allowed, true);
  });

  it('token-bucket: full bucket, continuous refill at limit/period, burst caps the shortest period', () => {
    const l = limiter('token-bucket', [w('minute', 60, 5)]);
    for (let i = 0; i < 5; i++) assert.equal(l.hit(T0).allowed, true, `burst request ${i}`);
    const empty = l.hit(T0);
    assert.equal(empty.allowed, false);
    assert.equal(empty.windows[0]!.reset, 1, 'one token per second');
    assert.equal(l.hit(T0 + 999).allowed, false);
    const refilled = l.hit(T0 + 1000);
    assert.equal(refilled.allowed, true);
    assert.equal(refilled.windows[0]!.remaining, 0);
    // After a long pause the bucket holds `burst` tokens, not more.
    const later = l.hit(T0 + 3_600_000);
    assert.equal(later.windows[0]!.remaining, 4);
    assert.equal(later.windows[0]!.reset, 1, 'seconds until the bucket is full again');
  });

  it('token-bucket: every configured period is its own bucket; blocked requests take no token', () => {
    const l = limiter('token-bucket', [w('second', 2), w('minute', 3)]);
    assert.equal(l.hit(T0).allowed, true);
    assert.equal(l.hit(T0).allowed, true);
    assert.equal(l.hit(T0).allowed, false, 'second bucket empty');
    const r = l.hit(T0 + 1000);
    assert.equal(r.allowed, true);
    assert.equal(r.windows[1]!.remaining, 0, 'minute bucket: 3 - 3 + a refill of 0.05');
    assert.equal(l.hit(T0 + 2000).allowed, false, 'minute bucket empty');
  });

  it('expired counters are swept', () => {
    const l = limiter('fixed-window', [w('second', 5)]);
    l.hit(T0);
    assert.equal(l.store.size, 1);
    l.hit(T0 + 10_000);
    l.store.sweep();
    assert.equal(l.store.size, 1, 'the old second is gone, the new one stays');
    l.store.close();
  });
});

describe('redis scripts agree with the memory store (real Redis at 127.0.0.1:6379)', () => {
  const registry = new RedisRegistry(createLogger({ level: 'silent' }));
  after(() => registry.closeAll());

  for (const algorithm of ['fixed-window', 'sliding-window', 'token-bucket'] as const) {
    it(`${algorithm}: same decisions, counts and resets over a random sequence`, async () => {
      const redis = new RedisLimitStore(registry.acquire({ host: '127.0.0.1', port: 6379 }), 2000, `gatehouse-test:${randomUUID()}:`);
      const memory = new MemoryLimitStore();
      const windows = [w('second', 3, algorithm === 'token-bucket' ? 4 : 3), w('minute', 20), w('hour', 25)];
      let now = T0 - 1500;
      let seed = 7;
      const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
      const key = randomUUID();
      let allowed = 0;
      for (let i = 0; i < 120; i++) {
        now += Math.floor(rand() * 400);
        const req: LimitRequest = { key, algorithm, windows, now };
        const a = interpret(algorithm, windows, memory.consume(req), now);
        const b = interpret(algorithm, windows, await redis.consume(req), now);
        assert.deepEqual(b, a, `request ${i} at +${now - T0} ms`);
        if (a.allowed) allowed++;
      }
      assert.ok(allowed > 10 && allowed < 120, `the sequence exercises both outcomes (${allowed} allowed)`);
      memory.close();
    });
  }
});
