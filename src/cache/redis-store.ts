import type { Cluster, Redis } from 'ioredis';
import type { SharedRedis } from '../cluster/redis.js';
import type { Logger } from '../observability/logger.js';
import { decode, encode } from './codec.js';
import type { CacheObject, CacheStore } from './types.js';

const WARN_EVERY_MS = 10_000;

export class CacheStoreError extends Error {
  readonly code = 'CACHE_STORE_UNAVAILABLE';
}

/**
 * A cache store in Redis, shared by every node that uses the same Redis and key prefix. Objects
 * are single binary strings with a PX expiry (see codec.ts). Every call has a timeout; callers
 * treat a failure as a miss (the request goes upstream) and nothing waits for Redis to come back.
 */
export class RedisCacheStore implements CacheStore {
  readonly kind = 'redis' as const;
  readonly maxBodySize: number;
  readonly prefix: string;
  /** Calls that failed or timed out (read by tests and logs). */
  failures = 0;
  private everReady = false;
  private firstReady: Promise<void> | undefined;
  private lastWarn = 0;
  private readonly redis: SharedRedis;
  private readonly timeoutMs: number;
  private readonly logger: Logger;

  constructor(redis: SharedRedis, options: { prefix: string; timeoutMs: number; maxBodySize: number; logger: Logger }) {
    this.redis = redis;
    this.prefix = options.prefix;
    this.timeoutMs = options.timeoutMs;
    this.maxBodySize = options.maxBodySize;
    this.logger = options.logger;
  }

  /** Identifies the namespace: two stores with the same id hold the same objects. */
  get id(): string {
    return `${this.redis.key}|${this.prefix}`;
  }

  private get client(): Redis | Cluster {
    return this.redis.client;
  }

  async get(key: string): Promise<CacheObject | undefined> {
    const raw = await this.call((c) => c.getBuffer(this.prefix + key));
    return decode(raw);
  }

  async set(key: string, value: CacheObject, retentionMs: number): Promise<void> {
    if (value.kind === 'response' && value.body.length > this.maxBodySize) return;
    const bytes = encode(value);
    await this.call((c) => (retentionMs > 0 ? c.set(this.prefix + key, bytes, 'PX', Math.max(1, Math.ceil(retentionMs))) : c.set(this.prefix + key, bytes)));
  }

  async delete(key: string): Promise<boolean> {
    return (await this.call((c) => c.del(this.prefix + key))) > 0;
  }

  /** Deletes every key under the prefix (SCAN + UNLINK, on every master of a cluster). */
  async flush(): Promise<void> {
    await this.call(() => Promise.resolve(0));
    const client = this.client;
    const nodes: Redis[] = 'nodes' in client && typeof (client as Cluster).nodes === 'function' && (client as Cluster).isCluster ? (client as Cluster).nodes('master') : [client as Redis];
    const pattern = `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        // In a cluster each key is unlinked alone: one command may not span hash slots.
        if (keys.length) await ((client as Cluster).isCluster ? Promise.all(keys.map((k) => client.unlink(k))) : node.unlink(...keys));
      } while (cursor !== '0');
    }
  }

  /** Runs one command within the timeout; the very first connect is waited for, later outages fail fast. */
  private async call<T>(run: (c: Redis | Cluster) => Promise<T>): Promise<T> {
    const client = this.client;
    const deadline = Date.now() + this.timeoutMs;
    try {
      if (client.status !== 'ready') {
        if (this.everReady || client.status === 'end' || client.status === 'close') throw new CacheStoreError(`redis is not connected (${client.status})`);
        this.firstReady ??= new Promise<void>((resolve) => client.once('ready', () => resolve()));
        await this.withTimeout(this.firstReady, deadline - Date.now());
      }
      this.everReady = true;
      return await this.withTimeout(run(client), Math.max(1, deadline - Date.now()));
    } catch (err) {
      this.failures++;
      const wrapped = err instanceof CacheStoreError ? err : new CacheStoreError(`redis: ${(err as Error).message}`);
      this.warn(wrapped);
      throw wrapped;
    }
  }

  private withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new CacheStoreError(`redis did not answer within ${this.timeoutMs} ms`)), Math.max(1, ms));
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err as Error);
        },
      );
    });
  }

  private warn(err: Error): void {
    const now = Date.now();
    if (now - this.lastWarn < WARN_EVERY_MS) return;
    this.lastWarn = now;
    this.logger.warn({ err: { message: err.message, code: (err as CacheStoreError).code }, prefix: this.prefix }, 'proxy-cache: redis store unavailable');
  }
}
