import { createRequire } from 'node:module';
import type { Pool } from 'undici';
import { Http1Pool } from './http1-client.js';

export interface PoolOptions {
  protocol: 'http' | 'https';
  host: string;
  port: number;
  connectTimeout: number;
  poolSize: number;
  keepAliveTimeout: number;
  /** Verify the upstream certificate (https). */
  tlsVerify: boolean;
  /** TLS server name when `host` is an IP resolved from a host name (balanced targets). */
  servername?: string | undefined;
}

/** Keep-alive connections to one upstream origin. */
export interface UpstreamPool {
  readonly key: string;
  readonly origin: string;
  /** The proxy path's client. */
  readonly http1: Http1Pool;
  /** An undici Pool to the same origin for plugins that make their own calls (created on first use). */
  readonly dispatcher: Pool;
}

function poolKey(o: PoolOptions): string {
  return `${o.protocol}://${o.host}:${o.port}|${o.connectTimeout}|${o.poolSize}|${o.keepAliveTimeout}|${o.tlsVerify}|${o.servername ?? ''}`;
}

const requireCjs = createRequire(import.meta.url);

class OriginPool implements UpstreamPool {
  readonly key: string;
  readonly origin: string;
  readonly http1: Http1Pool;
  private undiciPool: Pool | undefined;

  constructor(
    key: string,
    private readonly options: PoolOptions,
  ) {
    this.key = key;
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.origin = `${options.protocol}://${host}:${options.port}`;
    this.http1 = new Http1Pool({
      protocol: options.protocol,
      host: options.host,
      port: options.port,
      connectTimeout: options.connectTimeout,
      maxConnections: options.poolSize,
      keepAliveTimeout: options.keepAliveTimeout,
      tlsVerify: options.tlsVerify,
      servername: options.servername,
      maxHeaderSize: 65536,
    });
  }

  get dispatcher(): Pool {
    if (!this.undiciPool) {
      // Loaded on first use: most configs never need it, and it costs memory at start.
      const { Pool: UndiciPool } = requireCjs('undici') as typeof import('undici');
      this.undiciPool = new UndiciPool(this.origin, {
        connections: this.options.poolSize,
        keepAliveTimeout: this.options.keepAliveTimeout,
        connect: { timeout: this.options.connectTimeout, rejectUnauthorized: this.options.tlsVerify, ...(this.options.servername ? { servername: this.options.servername } : {}) },
      });
    }
    return this.undiciPool;
  }

  async close(force: boolean): Promise<void> {
    if (force) this.http1.destroy();
    else this.http1.close();
    if (this.undiciPool) await (force ? this.undiciPool.destroy() : this.undiciPool.close()).catch(() => undefined);
  }
}

/**
 * Owns the upstream pools of one gateway. Pools outlive config snapshots, so a reload keeps warm
 * keep-alive connections; pools no longer referenced are closed once the old snapshot drained.
 */
export class PoolManager {
  private readonly pools = new Map<string, OriginPool>();

  get(options: PoolOptions): UpstreamPool {
    const key = poolKey(options);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new OriginPool(key, options);
      this.pools.set(key, pool);
    }
    return pool;
  }

  /** Closes pools whose key is not in `keep` (busy connections finish their response first). */
  async retain(keep: ReadonlySet<string>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, pool] of this.pools) {
      if (keep.has(key)) continue;
      this.pools.delete(key);
      closing.push(pool.close(false));
    }
    await Promise.all(closing);
  }

  async closeAll(force = false): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => p.close(force)));
  }
}
