import { isIP } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import type { Exchange } from '../pipeline/exchange.js';
import type { AdminAnswer, AdminRequest } from '../plugins/types.js';
import type { NormalTarget, NormalUpstream } from './normalize.js';
import type { HashOn, UpstreamConfig } from './schema.js';
import type { Address, Balancer } from './types.js';
import { createBalancer } from './balancers.js';
import { HealthChecker } from './health.js';
import type { HostResolver, ResolvedHost } from './dns.js';

export interface UpstreamRuntimeDeps {
  logger: Logger;
  resolver: HostResolver;
}

/** An address with what the proxy path needs precomputed. */
export interface TargetAddress extends Address {
  /** Host header towards it: upstream.host_header or the target host, ":port" unless 80/443. */
  readonly hostHeader: string;
}

interface TargetState {
  target: NormalTarget;
  addresses: TargetAddress[];
  /** Why the last resolution failed (the previous addresses stay in use). */
  dnsError: string | undefined;
  resolved: boolean;
  stopWatch: (() => void) | undefined;
}

/** Everything the upstream's health answer says about one target. */
export interface TargetHealth {
  health: 'HEALTHY' | 'UNHEALTHY' | 'HEALTHCHECKS_OFF' | 'DNS_ERROR';
  data: Record<string, unknown>;
}

const HEALTH_PATH = /^\/upstreams\/([^/]+)\/health$/;
const SET_PATH = /^\/upstreams\/([^/]+)\/targets\/([^/]+)(?:\/([^/]+))?\/(healthy|unhealthy)$/;

/**
 * One upstream at run time: its targets' addresses (kept current through DNS), the balancer over
 * them and the health checker. It lives as long as the upstream's config does not change: a
 * reload that leaves it as it was keeps this object (health and balancer state included).
 */
export class UpstreamRuntime {
  readonly id: string;
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly health: HealthChecker;
  private readonly states: TargetState[];
  private readonly logger: Logger;
  private readonly resolver: HostResolver;
  private addresses: TargetAddress[] = [];
  private balancer: Balancer;
  private readonly threshold: number;
  private totalWeight = 0;
  private healthyWeight = 0;
  private started = false;
  private stopped = false;
  private pendingFirst = 0;
  private readyPromise: Promise<void> | undefined;
  private markReady: (() => void) | undefined;

  constructor(u: NormalUpstream, deps: UpstreamRuntimeDeps) {
    this.id = u.id;
    this.name = u.name;
    this.config = u.entity;
    this.logger = deps.logger;
    this.resolver = deps.resolver;
    this.threshold = u.entity.healthchecks.threshold;
    this.health = new HealthChecker({
      upstream: u.name,
      config: u.entity.healthchecks,
      logger: deps.logger,
      hostHeader: (a) => (a as TargetAddress).hostHeader ?? a.hostname,
      onChange: () => this.recountWeights(),
    });
    this.states = u.targets.map((t) => {
      const state: TargetState = { target: t, addresses: [], dnsError: undefined, resolved: false, stopWatch: undefined };
      const family = isIP(t.host);
      if (family) {
        state.addresses = [this.makeAddress(t, t.host, family)];
        state.resolved = true;
      } else this.pendingFirst++;
      return state;
    });
    this.balancer = createBalancer(u.entity.algorithm, [], { slots: u.entity.slots });
    this.rebuild();
  }

  /** Resolves host names (and keeps them current) and starts active health checks. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    for (const state of this.states) {
      if (state.resolved) continue;
      state.stopWatch = this.resolver.watch(
        state.target.host,
        (r) => this.resolved(state, r),
        (err) => this.resolveFailed(state, err),
      );
    }
    this.health.start();
  }

  /** Stops DNS watches and health checks; requests in flight still finish. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.states) s.stopWatch?.();
    this.health.stop();
    this.markReady?.();
  }

  /** Undefined once every target host name has been resolved once (or failed to). */
  get ready(): Promise<void> | undefined {
    if (this.pendingFirst === 0) return undefined;
    this.readyPromise ??= new Promise((resolve) => (this.markReady = resolve));
    return this.readyPromise;
  }

  /**
   * The address for the next attempt of a request, or undefined (no healthy target, or the
   * healthy share of the weight is below healthchecks.threshold). `exclude`: addresses this
   * request already tried; when only those are left, one of them is used again.
   */
  pick(ex: Exchange, exclude: readonly Address[] | undefined): TargetAddress | undefined {
    if (this.threshold > 0 && this.healthyWeight * 100 < this.threshold * this.totalWeight) return undefined;
    const key = this.config.algorithm === 'consistent-hashing' ? this.hashKey(ex) : undefined;
    const picked = this.balancer.pick(key, exclude) ?? (exclude ? this.balancer.pick(key, undefined) : undefined);
    return picked as TargetAddress | undefined;
  }

  observe(address: Address, ms: number, now: number): void {
    this.balancer.observe(address, ms, now);
  }

  private hashKey(ex: Exchange): string | undefined {
    const c = this.config;
    return this.hashValue(ex, c.hash_on, c.hash_on_header, c.hash_on_query_arg, c.hash_on_uri_capture) ?? this.hashValue(ex, c.hash_fallback, c.hash_fallback_header, c.hash_fallback_query_arg, c.hash_fallback_uri_capture);
  }

  private hashValue(ex: Exchange, on: HashOn, header: string | undefined, queryArg: string | undefined, capture: string | undefined): string | undefined {
    switch (on) {
      case 'none':
        return undefined;
      case 'consumer':
        return ex.consumer?.id ?? ex.credential?.id;
      case 'ip':
        return ex.clientIp || undefined;
      case 'path':
        return ex.path;
      case 'header': {
        const v = ex.req.headers[header!.toLowerCase()];
        return v === undefined ? undefined : Array.isArray(v) ? v.join(',') : v;
      }
      case 'query_arg': {
        if (ex.query === null) return undefined;
        const v = new URLSearchParams(ex.query).getAll(queryArg!);
        return v.length ? v.join(',') : undefined;
      }
      case 'uri_capture':
        return ex.uriCaptures?.[capture!];
      case 'cookie': {
        const name = this.config.hash_on_cookie!;
        const value = readCookie(ex.req.headers.cookie, name);
        if (value !== undefined) return value;
        // Kong gives the client a cookie so its next requests stick to the same target.
        const fresh = randomUUID();
        ex.balancerCookie = `${name}=${fresh}; Path=${this.config.hash_on_cookie_path}`;
        return fresh;
      }
    }
  }

  /** The answers behind GET /upstreams/{u}/health and PUT .../healthy|unhealthy (see admin/api.ts). */
  admin(request: AdminRequest): AdminAnswer | undefined {
    if (request.method === 'GET') {
      const m = HEALTH_PATH.exec(request.path);
      if (!m || decodeURIComponent(m[1]!) !== this.id) return undefined;
      const targets: Record<string, TargetHealth> = {};
      for (const s of this.states) targets[s.target.id] = this.targetHealth(s);
      const healthy = this.totalWeight > 0 && this.healthyWeight > 0 && this.healthyWeight * 100 >= this.threshold * this.totalWeight;
      return {
        status: 200,
        body: {
          targets,
          balancer_health: healthy ? 'HEALTHY' : 'UNHEALTHY',
          weight: { total: this.totalWeight, available: this.healthyWeight, unavailable: this.totalWeight - this.healthyWeight },
        },
      };
    }
    if (request.method === 'PUT' || request.method === 'POST') {
      const m = SET_PATH.exec(request.path);
      if (!m || decodeURIComponent(m[1]!) !== this.id) return undefined;
      const targetId = decodeURIComponent(m[2]!);
      const state = this.states.find((s) => s.target.id === targetId);
      if (!state) return { status: 404, body: { message: 'Not found' } };
      const only = m[3] === undefined ? undefined : decodeURIComponent(m[3]);
      const list = only === undefined ? state.addresses : state.addresses.filter((a) => a.key === only || a.ip === only || `${a.ip}:${a.port}` === only);
      if (!list.length) return { status: 404, body: { message: only === undefined ? 'target has no address yet' : 'Not found' } };
      const healthy = m[4] === 'healthy';
      for (const a of list) this.health.setHealthy(a, healthy, 'set by hand (admin API)');
      return { status: 204 };
    }
    return undefined;
  }

  private targetHealth(s: TargetState): TargetHealth {
    const addresses = s.addresses.map((a) => {
      const { health, reason } = this.health.status(a);
      return { ip: a.ip, port: a.port, weight: a.weight, health, reason };
    });
    const available = s.addresses.filter((a) => a.healthy).reduce((n, a) => n + a.weight, 0);
    const total = s.addresses.reduce((n, a) => n + a.weight, 0);
    let health: TargetHealth['health'];
    if (s.dnsError !== undefined && !s.addresses.length) health = 'DNS_ERROR';
    else if (addresses.some((a) => a.health === 'HEALTHY')) health = 'HEALTHY';
    else if (addresses.length && addresses.every((a) => a.health === 'HEALTHCHECKS_OFF')) health = 'HEALTHCHECKS_OFF';
    else health = 'UNHEALTHY';
    return {
      health,
      data: {
        host: s.target.host,
        port: s.target.port,
        dns: isIP(s.target.host) ? 'A' : s.dnsError !== undefined ? `error: ${s.dnsError}` : s.resolved ? 'A/AAAA' : 'pending',
        nodeWeight: s.target.weight,
        weight: { total, available, unavailable: total - available },
        addresses,
      },
    };
  }

  private makeAddress(t: NormalTarget, ip: string, family: number): TargetAddress {
    const host = this.config.host_header ?? t.host;
    const hostForHeader = isIP(host) === 6 ? `[${host}]` : host;
    return {
      key: family === 6 ? `[${ip}]:${t.port}` : `${ip}:${t.port}`,
      ip,
      port: t.port,
      weight: t.weight,
      target: t.target,
      hostname: t.host,
      hostHeader: t.port === 80 || t.port === 443 ? hostForHeader : `${hostForHeader}:${t.port}`,
      healthy: true,
      inflight: 0,
      ewma: 0,
      ewmaAt: 0,
    };
  }

  private resolved(state: TargetState, r: ResolvedHost): void {
    if (this.stopped) return;
    const old = new Map(state.addresses.map((a) => [a.key, a]));
    // Addresses that stay keep their object (health, in-flight count, latency).
    state.addresses = r.addresses.map((a) => {
      const fresh = this.makeAddress(state.target, a.ip, a.family);
      return old.get(fresh.key) ?? fresh;
    });
    state.dnsError = undefined;
    this.logger.info({ upstream: this.name, target: state.target.target, addresses: state.addresses.map((a) => a.key), ttl: r.ttl }, 'target resolved');
    this.firstResult(state);
    this.rebuild();
  }

  private resolveFailed(state: TargetState, err: Error & { code?: string }): void {
    if (this.stopped) return;
    state.dnsError = err.code ?? err.message;
    this.logger.warn({ upstream: this.name, target: state.target.target, err: state.dnsError, kept: state.addresses.map((a) => a.key) }, 'target could not be resolved');
    this.firstResult(state);
  }

  private firstResult(state: TargetState): void {
    if (state.resolved) return;
    state.resolved = true;
    if (--this.pendingFirst === 0) this.markReady?.();
  }

  /** The address list changed: new balancer, health checker told. */
  private rebuild(): void {
    const seen = new Set<string>();
    const all: TargetAddress[] = [];
    for (const s of this.states) {
      for (const a of s.addresses) {
        // Two targets naming the same ip:port (a name and its IP) are one address.
        if (seen.has(a.key)) continue;
        seen.add(a.key);
        all.push(a);
      }
    }
    this.addresses = all;
    this.health.setAddresses(all);
    this.balancer = createBalancer(this.config.algorithm, all, { slots: this.config.slots });
    this.recountWeights();
  }

  private recountWeights(): void {
    let total = 0;
    let healthy = 0;
    for (const a of this.addresses) {
      total += a.weight;
      if (a.healthy) healthy += a.weight;
    }
    this.totalWeight = total;
    this.healthyWeight = healthy;
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
