import type { Algorithm } from './schema.js';
import type { Address, Balancer, BalancerOptions } from './types.js';

/**
 * The four balancing algorithms of an upstream. A balancer is built once per set of addresses
 * (a DNS change or a config reload builds a new one) and then only reads the shared Address
 * objects (healthy, inflight, ewma), which the health checker and the proxy path update.
 *
 * `pick` runs per request (and per retry): it allocates nothing and walks `exclude` with a plain
 * loop, as that list is almost always empty or one or two addresses long.
 */
export function createBalancer(algorithm: Algorithm, addresses: readonly Address[], options: BalancerOptions): Balancer {
  switch (algorithm) {
    case 'round-robin':
      return new RoundRobinBalancer(addresses);
    case 'least-connections':
      return new LeastConnectionsBalancer(addresses);
    case 'consistent-hashing':
      return new ConsistentHashingBalancer(addresses, options.slots);
    case 'latency':
      return new LatencyBalancer(addresses);
    default:
      throw new Error(`unknown balancing algorithm: ${String(algorithm)}`);
  }
}

/**
 * Decay time constant of the latency algorithm's peak-EWMA, in ms: an observation `dt` ms after
 * the previous one keeps `exp(-dt / tau)` of the old average (10 s: after 10 s of faster responses
 * a past peak weighs 37 %, after 30 s 5 %).
 */
export const LATENCY_DECAY_MS = 10_000;

/** Not healthy, drained (weight 0) or already tried by this request. Identity first, then key (an exclude list may outlive a balancer rebuilt by DNS). */
function available(address: Address, exclude: readonly Address[] | undefined): boolean {
  if (!address.healthy || address.weight <= 0) return false;
  if (exclude !== undefined) {
    for (let j = 0; j < exclude.length; j++) {
      const e = exclude[j]!;
      if (e === address || e.key === address.key) return false;
    }
  }
  return true;
}

/**
 * Smooth weighted round-robin, as nginx's `ngx_http_upstream_get_peer`: every pick adds each
 * available address's weight to its current value, takes the largest and subtracts the total of
 * the available weights from it. Weights 5:1:1 give a a b a c a a (interleaved, not a a a a a b c),
 * and over any full round (sum of weights picks) each address is picked exactly `weight` times.
 * Unavailable addresses keep their current value untouched, so skipping them does not disturb the
 * rotation of the others.
 */
class RoundRobinBalancer implements Balancer {
  readonly algorithm = 'round-robin' as const;
  private readonly addresses: readonly Address[];
  private readonly current: Float64Array;

  constructor(addresses: readonly Address[]) {
    this.addresses = addresses.slice();
    this.current = new Float64Array(addresses.length);
  }

  pick(_hashKey: string | undefined, exclude: readonly Address[] | undefined): Address | undefined {
    const addresses = this.addresses;
    const current = this.current;
    let best = -1;
    let total = 0;
    for (let i = 0; i < addresses.length; i++) {
      const a = addresses[i]!;
      if (!available(a, exclude)) continue;
      current[i]! += a.weight;
      total += a.weight;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    if (best < 0) return undefined;
    current[best]! -= total;
    return addresses[best];
  }

  observe(): void {}
}

/**
 * Picks the available address with the lowest score; the scan starts after the previous pick, so
 * ties (e.g. idle addresses of equal weight) are used in turn rather than always the first.
 * least-connections and latency differ only in the score.
 */
abstract class LowestScoreBalancer implements Balancer {
  abstract readonly algorithm: Algorithm;
  private readonly addresses: readonly Address[];
  private next = 0;

  constructor(addresses: readonly Address[]) {
    this.addresses = addresses.slice();
  }

  protected abstract score(a: Address, now: number): number;

  pick(_hashKey: string | undefined, exclude: readonly Address[] | undefined): Address | undefined {
    const addresses = this.addresses;
    const n = addresses.length;
    const now = performance.now();
    let best: Address | undefined;
    let bestIndex = -1;
    let bestScore = 0;
    for (let k = 0; k < n; k++) {
      let i = this.next + k;
      if (i >= n) i -= n;
      const a = addresses[i]!;
      if (!available(a, exclude)) continue;
      const score = this.score(a, now);
      if (best === undefined || score < bestScore) {
        best = a;
        bestIndex = i;
        bestScore = score;
      }
    }
    if (best !== undefined) this.next = bestIndex + 1 >= n ? 0 : bestIndex + 1;
    return best;
  }

  observe(_address: Address, _ms: number, _now: number): void {}
}

/** The available address with the lowest `(inflight + 1) / weight`. */
class LeastConnectionsBalancer extends LowestScoreBalancer {
  readonly algorithm = 'least-connections' as const;

  protected score(a: Address): number {
    return (a.inflight + 1) / a.weight;
  }
}

/**
 * Peak-EWMA, as Finagle's `PeakEwma` balancer: a response slower than the average replaces it at
 * once (peaks count fully), faster ones pull it down with a time-based decay (LATENCY_DECAY_MS).
 * The pick is the available address with the lowest `ewma * (inflight + 1) / weight`, the average
 * decayed to now, so a target that was slow once is tried again as its score fades; an address
 * never measured (ewma 0) scores 0, so each new address gets tried first.
 */
class LatencyBalancer extends LowestScoreBalancer {
  readonly algorithm = 'latency' as const;

  protected score(a: Address, now: number): number {
    const ewma = a.ewma === 0 ? 0 : a.ewma * Math.exp(-(now - a.ewmaAt) / LATENCY_DECAY_MS);
    return (ewma * (a.inflight + 1)) / a.weight;
  }

  override observe(address: Address, ms: number, now: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    if (ms > address.ewma) {
      address.ewma = ms;
    } else {
      const dt = now > address.ewmaAt ? now - address.ewmaAt : 0;
      const w = Math.exp(-dt / LATENCY_DECAY_MS);
      address.ewma = address.ewma * w + ms * (1 - w);
    }
    address.ewmaAt = now;
  }
}

/** Most ring points of one address. */
const MAX_POINTS = 65536;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the UTF-16 code units of `s` (each unit XORed in whole), continuing from state `h`. */
function fnv1a(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h;
}

/** MurmurHash3's fmix32 finaliser: FNV-1a alone clusters similar keys ("a#1", "a#2"); this avalanches every bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The 32-bit hash of the consistent-hashing ring (points and request keys): FNV-1a over UTF-16 code
 * units followed by fmix32. Not Kong's (crc32-based) ring, so the same key may land on another
 * target than under Kong; stable across processes and restarts, which is what matters.
 */
export function ringHash(s: string): number {
  return fmix32(fnv1a(FNV_OFFSET, s));
}

/** 2^21 ranks: up to ~2 million addresses per ring, far beyond any upstream. */
const RANK_SPAN = 2 ** 21;

/**
 * A hash ring. Each address of weight w gets `max(1, round(w * slots / 1000))` points, independent
 * of the other addresses, so adding or removing one address moves only the keys of its own arcs.
 * Point i of an address is `ringHash(key + "#" + i)`. Points are kept in a sorted Uint32Array with a
 * parallel owner index; a pick hashes the request key, binary-searches the first point at or after
 * it and walks clockwise to the first available address. Without a hash key it behaves as
 * (smooth weighted) round-robin. Addresses of weight 0 get no points: they can never be picked.
 */
class ConsistentHashingBalancer implements Balancer {
  readonly algorithm = 'consistent-hashing' as const;
  private readonly addresses: readonly Address[];
  private readonly points: Uint32Array;
  private readonly owners: Uint32Array;
  private readonly fallback: RoundRobinBalancer;

  constructor(addresses: readonly Address[], slots: number) {
    this.addresses = addresses.slice();
    this.fallback = new RoundRobinBalancer(addresses);

    // Collisions (rare) are ordered by address key, so the ring does not depend on address order.
    const order = this.addresses.map((_, i) => i).sort((x, y) => compareStrings(this.addresses[x]!.key, this.addresses[y]!.key));
    // Capped, so one huge weight cannot make a ring of millions of points.
    const counts = this.addresses.map((a) => (a.weight > 0 ? Math.min(MAX_POINTS, Math.max(1, Math.round((a.weight * slots) / 1000))) : 0));
    let total = 0;
    for (const c of counts) total += c;

    // Sort (hash, rank) pairs packed in one float: hash * 2^21 + rank stays below 2^53.
    const packed = new Float64Array(total);
    let p = 0;
    for (let rank = 0; rank < order.length; rank++) {
      const a = this.addresses[order[rank]!]!;
      const prefix = fnv1a(FNV_OFFSET, `${a.key}#`);
      for (let i = 0; i < counts[order[rank]!]!; i++) packed[p++] = fmix32(fnv1a(prefix, String(i))) * RANK_SPAN + rank;
    }
    packed.sort();
    this.points = new Uint32Array(total);
    this.owners = new Uint32Array(total);
    for (let k = 0; k < total; k++) {
      const v = packed[k]!;
      const rank = v % RANK_SPAN;
      this.points[k] = (v - rank) / RANK_SPAN;
      this.owners[k] = order[rank]!;
    }
  }

  pick(hashKey: string | undefined, exclude: readonly Address[] | undefined): Address | undefined {
    if (hashKey === undefined) return this.fallback.pick(undefined, exclude);
    const points = this.points;
    const n = points.length;
    if (n === 0) return undefined;
    const addresses = this.addresses;
    // Nothing available: answer without walking the whole ring.
    let any = false;
    for (let i = 0; i < addresses.length && !any; i++) any = available(addresses[i]!, exclude);
    if (!any) return undefined;

    const h = ringHash(hashKey);
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    for (let k = 0; k < n; k++) {
      let i = lo + k;
      if (i >= n) i -= n;
      const a = addresses[this.owners[i]!]!;
      if (available(a, exclude)) return a;
    }
    return undefined;
  }

  observe(): void {}
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
