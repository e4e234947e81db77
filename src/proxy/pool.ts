import { Pool } from 'undici';

export interface PoolOptions {
  protocol: 'http' | 'https';
  host: string;
  port: number;
  connectTimeout: number;
  poolSize: number;
  keepAliveTimeout: number;
}

/** A keep-alive connection pool to one upstream origin (undici Pool). */
export interface UpstreamPool {
  readonly key: string;
  readonly origin: string;
  readonly dispatcher: Pool;
}

function poolKey(o: PoolOptions): string {
  return `${o.protocol}://${o.host}:${o.port}|${o.connectTimeout}|${o.poolSize}|${o.keepAliveTimeout}`;
}

/**
 * Owns the upstream pools of one gateway. Pools outlive config snapshots, so a reload keeps warm
 * keep-alive connections; pools no longer referenced are closed once the old snapshot drained.
 */
export class PoolManager {
  private readonly pools = new Map<string, UpstreamPool>();

  get(options: PoolOptions): UpstreamPool {
    const key = poolKey(options);
    let pool = this.pools.get(key);
    if (!pool) {
      const host = options.host.includes(':') ? `[${options.host}]` : options.host;
      const origin = `${options.protocol}://${host}:${options.port}`;
      const dispatcher = new Pool(origin, {
        connections: options.poolSize,
        pipelining: 1,
        keepAliveTimeout: options.keepAliveTimeout,
        keepAliveMaxTimeout: Math.max(options.keepAliveTimeout, 1),
        connect: { timeout: options.connectTimeout },
        // Per-request timeouts come with each dispatch (the service's read_timeout).
        headersTimeout: 0,
        bodyTimeout: 0,
        // Upstream response headers up to 64 KiB, like the client side.
        maxHeaderSize: 65536,
      });
      pool = { key, origin, dispatcher };
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** Closes pools whose key is not in `keep` (after in-flight requests on them finish). */
  async retain(keep: ReadonlySet<string>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, pool] of this.pools) {
      if (keep.has(key)) continue;
      this.pools.delete(key);
      closing.push(pool.dispatcher.close().catch(() => undefined));
    }
    await Promise.all(closing);
  }

  async closeAll(force = false): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => (force ? p.dispatcher.destroy() : p.dispatcher.close()).catch(() => undefined)));
  }
}
