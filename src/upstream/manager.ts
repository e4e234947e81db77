import { isIP } from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { PoolManager, PoolOptions, UpstreamPool } from '../proxy/pool.js';
import type { NormalUpstream } from './normalize.js';
import type { Exchange } from '../pipeline/exchange.js';
import { HostResolver } from './dns.js';
import { UpstreamRuntime, type TargetAddress } from './runtime.js';

/**
 * Owns the upstream runtimes of one gateway across snapshots, as PoolManager owns pools: a
 * reload that leaves an upstream (and its targets) as it was gets the same runtime back, with its
 * health and balancer state; a changed one gets a fresh runtime, and the old one is stopped once
 * no snapshot uses it (requests in flight on it finish).
 */
export class UpstreamManager {
  private readonly runtimes = new Map<string, UpstreamRuntime>();
  private readonly resolvers = new Map<string, HostResolver>();

  constructor(
    private readonly logger: Logger,
    /** False for throwaway compiles (config validation): nothing resolves or probes. */
    private readonly autoStart = true,
  ) {}

  get(u: NormalUpstream, dnsServers: readonly string[]): UpstreamRuntime {
    const key = fingerprint(u, dnsServers);
    let runtime = this.runtimes.get(key);
    if (!runtime) {
      runtime = new UpstreamRuntime(u, { logger: this.logger, resolver: this.resolver(dnsServers) });
      this.runtimes.set(key, runtime);
      if (this.autoStart) runtime.start();
    }
    return runtime;
  }

  private resolver(servers: readonly string[]): HostResolver {
    const key = servers.join(',');
    let r = this.resolvers.get(key);
    if (!r) this.resolvers.set(key, (r = new HostResolver(servers.length ? { servers } : {})));
    return r;
  }

  /** Stops the runtimes not in `keep`. */
  retain(keep: ReadonlySet<UpstreamRuntime>): void {
    for (const [key, runtime] of this.runtimes) {
      if (keep.has(runtime)) continue;
      this.runtimes.delete(key);
      runtime.stop();
    }
  }

  closeAll(): void {
    for (const runtime of this.runtimes.values()) runtime.stop();
    this.runtimes.clear();
  }
}

/** What makes an upstream "the same" across reloads: its settings, its targets, the resolver. */
function fingerprint(u: NormalUpstream, dnsServers: readonly string[]): string {
  const { targets: _t, created_at: _c, updated_at: _u, tags: _g, ...settings } = u.entity;
  return JSON.stringify([u.id, settings, u.targets.map((t) => [t.id, t.target, t.weight]), dnsServers]);
}

/**
 * A service balanced over an upstream: the runtime, plus one connection pool per address (with
 * the service's protocol and timeouts), created on first use and kept across reloads by the
 * PoolManager.
 */
export class ServiceUpstream {
  private readonly pools = new Map<string, UpstreamPool>();

  constructor(
    readonly runtime: UpstreamRuntime,
    private readonly base: Omit<PoolOptions, 'host' | 'port' | 'servername'>,
    private readonly manager: PoolManager,
  ) {}

  poolFor(address: TargetAddress): UpstreamPool {
    let pool = this.pools.get(address.key);
    if (!pool) {
      pool = this.manager.get({ ...this.base, host: address.ip, port: address.port, servername: isIP(address.hostname) ? undefined : address.hostname });
      this.pools.set(address.key, pool);
    }
    return pool;
  }

  /**
   * A target for a call the gateway makes on its own behalf (a plugin's background request):
   * its pool and the Host header it expects; undefined when no target is healthy.
   */
  pickFor(ex: Exchange): { pool: UpstreamPool; hostHeader: string } | undefined {
    const address = this.runtime.pick(ex, undefined);
    return address && { pool: this.poolFor(address), hostHeader: address.hostHeader };
  }

  poolKeys(): Iterable<string> {
    return [...this.pools.values()].map((p) => p.key);
  }
}
