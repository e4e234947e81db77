import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createBalancer, LATENCY_DECAY_MS, ringHash } from './balancers.js';
import type { Address, Balancer } from './types.js';

function address(n: number, weight = 100, extra: Partial<Address> = {}): Address {
  const ip = `10.0.0.${n}`;
  return { key: `${ip}:80`, ip, port: 80, weight, target: `${ip}:80`, hostname: ip, healthy: true, inflight: 0, ewma: 0, ewmaAt: 0, ...extra };
}

function counts(balancer: Balancer, picks: number, hashKey?: (i: number) => string): Map<string, number> {
  const seen = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const a = balancer.pick(hashKey?.(i), undefined);
    const key = a?.key ?? 'none';
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return seen;
}

function sequence(balancer: Balancer, picks: number, exclude?: Address[]): string {
  let out = '';
  for (let i = 0; i < picks; i++) out += balancer.pick(undefined, exclude)?.ip.slice(-1) ?? '-';
  return out;
}

const SLOTS = { slots: 10_000 };

describe('balancers: round-robin (smooth weighted)', () => {
  it('distributes 10,000 picks exactly by weight (1:2:3)', () => {
    const [a, b, c] = [address(1, 100), address(2, 200), address(3, 300)];
    const seen = counts(createBalancer('round-robin', [a!, b!, c!], SLOTS), 10_002);
    // 10,002 picks = 1667 full rounds of 6: exact.
    assert.equal(seen.get(a!.key), 1667);
    assert.equal(seen.get(b!.key), 3334);
    assert.equal(seen.get(c!.key), 5001);
    // Within one round for any count.
    const seen2 = counts(createBalancer('round-robin', [a!, b!, c!], SLOTS), 10_000);
    for (const [x, w] of [[a!, 1], [b!, 2], [c!, 3]] as const) assert.ok(Math.abs(seen2.get(x.key)! - (10_000 * w) / 6) <= w, `${x.key}: ${seen2.get(x.key)}`);
  });

  it('interleaves smoothly (5:1:1 -> a a b a c a a), as nginx', () => {
    const balancer = createBalancer('round-robin', [address(1, 5), address(2, 1), address(3, 1)], SLOTS);
    assert.equal(sequence(balancer, 14), '11213111121311');
  });

  it('skips unhealthy, weight-0 and excluded addresses without disturbing the others', () => {
    const [a, b, c, d] = [address(1), address(2), address(3, 0), address(4)];
    const balancer = createBalancer('round-robin', [a!, b!, c!, d!], SLOTS);
    assert.equal(sequence(balancer, 6), '124124');
    b!.healthy = false;
    assert.equal(sequence(balancer, 4), '1414');
    b!.healthy = true;
    assert.equal(sequence(balancer, 6, [a!]), '242424');
    assert.equal(sequence(balancer, 6), '124124');
    // An exclude entry matches by key too (a list that outlived a rebuilt balancer).
    assert.equal(sequence(balancer, 2, [{ ...a! }, { ...b! }]), '44');
  });

  it('returns undefined when nothing is available', () => {
    const [a, b] = [address(1, 100, { healthy: false }), address(2, 0)];
    assert.equal(createBalancer('round-robin', [a!, b!], SLOTS).pick(undefined, undefined), undefined);
    assert.equal(createBalancer('round-robin', [], SLOTS).pick(undefined, undefined), undefined);
    const c = address(3);
    assert.equal(createBalancer('round-robin', [a!, b!, c], SLOTS).pick(undefined, [c]), undefined);
  });
});

describe('balancers: least-connections', () => {
  it('follows inflight and weight', () => {
    const [a, b, c] = [address(1), address(2), address(3, 200)];
    const balancer = createBalancer('least-connections', [a!, b!, c!], SLOTS);
    a!.inflight = 3;
    b!.inflight = 1;
    c!.inflight = 3; // (3+1)/200 = 0.02 == (1+1)/100: tie between b and c, both get turns
    const seen = new Set([balancer.pick(undefined, undefined)!.key, balancer.pick(undefined, undefined)!.key]);
    assert.deepEqual([...seen].sort(), [b!.key, c!.key]);
    c!.inflight = 10;
    assert.equal(balancer.pick(undefined, undefined), b);
    b!.inflight = 5;
    assert.equal(balancer.pick(undefined, undefined), a);
    assert.equal(balancer.pick(undefined, [a!]), c, '5.5 / 100 < 6 / 100');
    a!.healthy = false;
    assert.equal(balancer.pick(undefined, undefined), c);
  });

  it('uses equal idle addresses in turn', () => {
    const balancer = createBalancer('least-connections', [address(1), address(2), address(3)], SLOTS);
    assert.equal(sequence(balancer, 6), '123123');
  });

  it('returns undefined when nothing is available', () => {
    const a = address(1, 100, { healthy: false });
    assert.equal(createBalancer('least-connections', [a, address(2, 0)], SLOTS).pick(undefined, undefined), undefined);
  });
});

describe('balancers: latency (peak-EWMA)', () => {
  it('tries unmeasured addresses first, then prefers the fast one', () => {
    const [a, b] = [address(1), address(2)];
    const balancer = createBalancer('latency', [a!, b!], SLOTS);
    assert.equal(sequence(balancer, 2), '12', 'both unmeasured: rotate');
    balancer.observe(a!, 200, 1000);
    assert.equal(balancer.pick(undefined, undefined), b, 'b is still unmeasured');
    balancer.observe(b!, 10, 1000);
    assert.equal(sequence(balancer, 5), '22222');
    // Load on the fast one eventually sends traffic to the slow one: 10 * 21 > 200 * 1.
    b!.inflight = 20;
    assert.equal(balancer.pick(undefined, undefined), a);
  });

  it('takes peaks at once and decays them with time (tau = 10 s)', () => {
    const a = address(1);
    const balancer = createBalancer('latency', [a], SLOTS);
    balancer.observe(a, 50, 0);
    assert.equal(a.ewma, 50);
    balancer.observe(a, 500, 10);
    assert.equal(a.ewma, 500, 'a peak replaces the average');
    balancer.observe(a, 100, 10 + LATENCY_DECAY_MS);
    assert.ok(Math.abs(a.ewma - (500 * Math.exp(-1) + 100 * (1 - Math.exp(-1)))) < 1e-9);
    const before = a.ewma;
    balancer.observe(a, 100, 10 + LATENCY_DECAY_MS);
    assert.equal(a.ewma, before, 'no time elapsed: no decay');
  });

  it('recovers when the slow address gets fast', () => {
    const [a, b] = [address(1), address(2)];
    const balancer = createBalancer('latency', [a!, b!], SLOTS);
    balancer.observe(a!, 20, 0);
    balancer.observe(b!, 1000, 0);
    assert.equal(balancer.pick(undefined, undefined), a);
    for (let t = 1000; t <= 60_000; t += 1000) {
      balancer.observe(a!, 20, t);
      balancer.observe(b!, 5, t);
    }
    assert.ok(b!.ewma < a!.ewma, `b ${b!.ewma} < a ${a!.ewma}`);
    assert.equal(sequence(balancer, 3), '222');
  });

  it('weights scale the score; unavailable addresses are skipped', () => {
    const [a, b] = [address(1, 100), address(2, 300)];
    const balancer = createBalancer('latency', [a!, b!], SLOTS);
    balancer.observe(a!, 10, 0);
    balancer.observe(b!, 25, 0);
    assert.equal(balancer.pick(undefined, undefined), b, '25/300 < 10/100');
    b!.healthy = false;
    assert.equal(balancer.pick(undefined, undefined), a);
    assert.equal(balancer.pick(undefined, [a!]), undefined);
  });

  it('observe is a no-op for the other algorithms', () => {
    for (const algorithm of ['round-robin', 'least-connections', 'consistent-hashing'] as const) {
      const a = address(1);
      createBalancer(algorithm, [a], SLOTS).observe(a, 100, 5);
      assert.equal(a.ewma, 0);
      assert.equal(a.ewmaAt, 0);
    }
  });
});

describe('balancers: consistent-hashing', () => {
  const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

  function mapping(balancer: Balancer): Map<string, string> {
    const m = new Map<string, string>();
    for (const k of keys) m.set(k, balancer.pick(k, undefined)!.key);
    return m;
  }

  it('maps the same key to the same address, independent of address order', () => {
    const addrs = [address(1), address(2), address(3)];
    const one = createBalancer('consistent-hashing', addrs, SLOTS);
    const two = createBalancer('consistent-hashing', addrs.slice().reverse(), SLOTS);
    for (const k of keys.slice(0, 500)) {
      const picked = one.pick(k, undefined);
      assert.equal(one.pick(k, undefined), picked);
      assert.equal(two.pick(k, undefined), picked);
    }
  });

  it('spreads 10,000 keys by weight', () => {
    const equal = mapping(createBalancer('consistent-hashing', [address(1), address(2), address(3)], SLOTS));
    const share = (m: Map<string, string>, key: string) => ([...m.values()].filter((v) => v === key).length / m.size) * 100;
    for (const n of [1, 2, 3]) {
      const s = share(equal, `10.0.0.${n}:80`);
      assert.ok(Math.abs(s - 100 / 3) <= 5, `10.0.0.${n}: ${s.toFixed(1)} %`);
    }
    const weighted = mapping(createBalancer('consistent-hashing', [address(1, 100), address(2, 300)], SLOTS));
    const s = share(weighted, '10.0.0.2:80');
    assert.ok(Math.abs(s - 75) <= 5, `weight 300 of 400: ${s.toFixed(1)} %`);
  });

  it('adding a 4th equal address keeps > 70 % of the keys in place, and moves keys only to it', () => {
    const before = mapping(createBalancer('consistent-hashing', [address(1), address(2), address(3)], SLOTS));
    const after = mapping(createBalancer('consistent-hashing', [address(1), address(2), address(3), address(4)], SLOTS));
    let kept = 0;
    for (const k of keys) {
      if (before.get(k) === after.get(k)) kept++;
      else assert.equal(after.get(k), '10.0.0.4:80');
    }
    assert.ok(kept / keys.length > 0.7, `kept ${kept}`);
    assert.ok(kept / keys.length < 0.85, `the new address gets its share (kept ${kept})`);
  });

  it('removing an address moves only its keys', () => {
    const before = mapping(createBalancer('consistent-hashing', [address(1), address(2), address(3)], SLOTS));
    const after = mapping(createBalancer('consistent-hashing', [address(1), address(3)], SLOTS));
    for (const k of keys) if (before.get(k) !== '10.0.0.2:80') assert.equal(after.get(k), before.get(k));
  });

  it('goes to the next address on the ring while the owner is unavailable, and back when healthy', () => {
    const addrs = [address(1), address(2), address(3)];
    const balancer = createBalancer('consistent-hashing', addrs, SLOTS);
    const before = mapping(balancer);
    addrs[1]!.healthy = false;
    const during = mapping(balancer);
    for (const k of keys) {
      if (before.get(k) === '10.0.0.2:80') assert.notEqual(during.get(k), '10.0.0.2:80');
      else assert.equal(during.get(k), before.get(k));
    }
    // The displaced keys spread over both remaining addresses (neighbours on the ring).
    const displaced = new Set(keys.filter((k) => before.get(k) === '10.0.0.2:80').map((k) => during.get(k)));
    assert.equal(displaced.size, 2);
    addrs[1]!.healthy = true;
    assert.deepEqual(mapping(balancer), before);
  });

  it('excluded addresses are skipped clockwise too; nothing available -> undefined', () => {
    const addrs = [address(1), address(2)];
    const balancer = createBalancer('consistent-hashing', addrs, SLOTS);
    const first = balancer.pick('k', undefined)!;
    const second = balancer.pick('k', [first])!;
    assert.notEqual(second, first);
    assert.equal(balancer.pick('k', [first, second]), undefined);
    for (const a of addrs) a.healthy = false;
    assert.equal(balancer.pick('k', undefined), undefined);
    assert.equal(createBalancer('consistent-hashing', [], SLOTS).pick('k', undefined), undefined);
  });

  it('without a hash key behaves as weighted round-robin', () => {
    const balancer = createBalancer('consistent-hashing', [address(1, 5), address(2, 1), address(3, 1)], SLOTS);
    assert.equal(sequence(balancer, 7), '1121311');
  });

  it('gives an address max(1, round(weight * slots / 1000)) points', () => {
    // weight 1 with 10 slots rounds to 0 points: still 1, so the address can be picked.
    const balancer = createBalancer('consistent-hashing', [address(1, 1), address(2, 1)], { slots: 10 });
    const seen = new Set(keys.slice(0, 200).map((k) => balancer.pick(k, undefined)!.key));
    assert.equal(seen.size, 2);
  });

  it('ringHash is a stable 32-bit hash', () => {
    assert.equal(ringHash('a'), ringHash('a'));
    assert.notEqual(ringHash('a#1'), ringHash('a#2'));
    const h = ringHash('10.0.0.1:80#0');
    assert.ok(Number.isInteger(h) && h >= 0 && h < 2 ** 32);
  });
});
