import { createRequire } from 'node:module';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Pool } from 'undici';
import { Http1Pool, upstreamIdentityCheck } from './http1-client.js';

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
  /** Most intermediate certificates between the upstream's certificate and the trust anchor (Kong's tls_verify_depth). */
  tlsVerifyDepth?: number | undefined;
  /** PEM CA certificates that alone are trusted for this upstream; absent: node's default trust store. */
  ca?: readonly string[] | undefined;
  /** Certificate and key presented to the upstream (mutual TLS). */
  clientCertificate?: { cert: string; key: string } | undefined;
  /**
   * Identity of `ca` and `clientCertificate` for the pool key (digests, so keys stay short and
   * hold no key material); must change whenever they do.
   */
  tlsMaterial?: string | undefined;
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

/** Pools with the same key are the same pool: a reload that keeps the key keeps the warm connections. */
export function poolKey(o: PoolOptions): string {
  const base = `${o.protocol}://${o.host}:${o.port}|${o.connectTimeout}|${o.poolSize}|${o.keepAliveTimeout}|${o.tlsVerify}`;
  return o.protocol === 'https' ? `${base}|${o.tlsVerifyDepth ?? ''}|${o.tlsMaterial ?? ''}|${o.servername ?? ''}` : base;
}

const requireCjs = createRequire(import.meta.url);

class OriginPool implements UpstreamPool {
  readonly key: string;
  readonly origin: string;
  readonly http1: Http1Pool;
  private readonly secureContext: SecureContext | undefined;
  private undiciPool: Pool | undefined;

  constructor(
    key: string,
    private readonly options: PoolOptions,
  ) {
    this.key = key;
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    this.origin = `${options.protocol}://${host}:${options.port}`;
    // One context per pool, not one per connection: CAs and the client key are parsed once.
    this.secureContext = options.protocol === 'https' ? upstreamSecureContext(options) : undefined;
    this.http1 = new Http1Pool({
      protocol: options.protocol,
      host: options.host,
      port: options.port,
      connectTimeout: options.connectTimeout,
      maxConnections: options.poolSize,
      keepAliveTimeout: options.keepAliveTimeout,
      tlsVerify: options.tlsVerify,
      servername: options.servername,
      tlsVerifyDepth: options.tlsVerifyDepth,
      secureContext: this.secureContext,
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
        // The same trust, client certificate and depth rule as the proxy path; undici sends SNI
        // from the host itself (never for IP literals).
        connect: {
          timeout: this.options.connectTimeout,
          rejectUnauthorized: this.options.tlsVerify,
          ...(this.options.servername ? { servername: this.options.servername } : {}),
          ...(this.secureContext ? { secureContext: this.secureContext, checkServerIdentity: upstreamIdentityCheck(this.options.tlsVerifyDepth) } : {}),
        },
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

function upstreamSecureContext(o: PoolOptions): SecureContext {
  return createSecureContext({
    minVersion: 'TLSv1.2',
    ...(o.ca ? { ca: [...o.ca] } : {}),
    ...(o.clientCertificate ? { cert: o.clientCertificate.cert, key: o.clientCertificate.key } : {}),
  });
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
