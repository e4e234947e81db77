import type { Algorithm } from './schema.js';

/**
 * One resolved address of a target: what a request is actually sent to. A target given by IP is
 * one address; a target given by host name has one address per A/AAAA record. Addresses are
 * plain mutable objects shared by the balancer, the health checker and the proxy path of one
 * upstream (one event loop, so no locking).
 */
export interface Address {
  /** "ip:port" ("[v6]:port"), unique within an upstream. */
  readonly key: string;
  readonly ip: string;
  readonly port: number;
  /** The target's weight (0 drains the address). */
  readonly weight: number;
  /** The target as configured ("host:port"), for the admin API. */
  readonly target: string;
  /** The target's host name (or IP): Host header and TLS SNI towards it. */
  readonly hostname: string;
  /** False while health checks (or the admin API) keep traffic away from it. */
  healthy: boolean;
  /** Requests in flight to it (least-connections, latency). */
  inflight: number;
  /** Peak-EWMA of its response time in ms (latency); 0 until measured. */
  ewma: number;
  /** When `ewma` was last updated (ms, monotonic clock). */
  ewmaAt: number;
}

/** Picks addresses for requests; one instance per set of addresses (a DNS change builds a new one). */
export interface Balancer {
  readonly algorithm: Algorithm;
  /**
   * An address for the next request, or undefined when none is available. Unavailable: not
   * healthy, weight 0, or in `exclude` (addresses this request already tried). `hashKey` is used
   * by consistent-hashing only (undefined: behave like round-robin).
   */
  pick(hashKey: string | undefined, exclude: readonly Address[] | undefined): Address | undefined;
  /** A response (or failure) from `address` took `ms`; feeds the latency algorithm. */
  observe(address: Address, ms: number, now: number): void;
}

export interface BalancerOptions {
  /** consistent-hashing ring size (Kong's `slots`): an address of weight 100 gets slots/10 points. */
  slots: number;
}
