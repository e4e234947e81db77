import type { Redis, Cluster, RedisOptions, ClusterOptions } from 'ioredis';
import { load } from '../lib/lazy.js';
import type { Logger } from '../observability/logger.js';

/** How to reach a Redis deployment: one server (host/port or url), a Sentinel group or a Cluster. */
export interface RedisConnectionConfig {
  host?: string | undefined;
  port?: number | undefined;
  /** redis://[user:password@]host:port/db or rediss://... ; wins over host/port/database/ssl. */
  url?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  database?: number | undefined;
  ssl?: boolean | undefined;
  ssl_verify?: boolean | undefined;
  server_name?: string | undefined;
  /** Redis Cluster seed nodes; when set, host/port/database are not used. */
  cluster_nodes?: { ip: string; port: number }[] | undefined;
  cluster_max_redirections?: number | undefined;
  /** Sentinel: the master group name and the sentinels to ask. */
  sentinel_master?: string | undefined;
  sentinel_role?: 'master' | 'slave' | 'any' | undefined;
  sentinel_nodes?: { host: string; port: number }[] | undefined;
  sentinel_username?: string | undefined;
  sentinel_password?: string | undefined;
}

/** Reconnect quickly and forever: limiting must resume by itself when Redis is back. */
const retryStrategy = (times: number): number => Math.min(50 * times, 1000);

/** The ioredis options for a connection config (exported for tests: Cluster and Sentinel are built, not run, there). */
export function ioredisOptions(c: RedisConnectionConfig): { kind: 'single' | 'sentinel'; options: RedisOptions } | { kind: 'cluster'; nodes: { host: string; port: number }[]; options: ClusterOptions } {
  const tls = c.ssl ? { rejectUnauthorized: c.ssl_verify ?? false, ...(c.server_name ? { servername: c.server_name } : {}) } : undefined;
  // No offline queue: while Redis is unreachable a command fails at once instead of piling up and
  // being replayed (and counted) after the outage. The first connect is waited for in `run`.
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy,
    connectTimeout: 2000,
    enableAutoPipelining: true,
    ...(c.username ? { username: c.username } : {}),
    ...(c.password ? { password: c.password } : {}),
    ...(tls ? { tls } : {}),
  };
  if (c.cluster_nodes?.length) {
    return {
      kind: 'cluster',
      nodes: c.cluster_nodes.map((n) => ({ host: n.ip, port: n.port })),
      options: {
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: retryStrategy,
        maxRedirections: c.cluster_max_redirections ?? 16,
        redisOptions: common,
      },
    };
  }
  if (c.sentinel_master) {
    return {
      kind: 'sentinel',
      options: {
        ...common,
        db: c.database ?? 0,
        name: c.sentinel_master,
        role: c.sentinel_role === 'slave' ? 'slave' : 'master',
        sentinels: (c.sentinel_nodes ?? []).map((n) => ({ host: n.host, port: n.port })),
        ...(c.sentinel_username ? { sentinelUsername: c.sentinel_username } : {}),
        ...(c.sentinel_password ? { sentinelPassword: c.sentinel_password } : {}),
        sentinelRetryStrategy: retryStrategy,
      },
    };
  }
  return { kind: 'single', options: { ...common, host: c.host ?? '127.0.0.1', port: c.port ?? 6379, db: c.database ?? 0 } };
}

/** A canonical string for a connection config: equal configs share one client. */
export function connectionKey(c: RedisConnectionConfig): string {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
          .sort()
          .map((k) => [k, norm((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(norm(c));
}

export class RedisUnavailableError extends Error {
  readonly code: string;
  constructor(message: string, code = 'REDIS_UNAVAILABLE') {
    super(message);
    this.name = 'RedisUnavailableError';
    this.code = code;
  }
}

/** Where connection-level counters for one Redis live (read by tests and the status endpoint later). */
export interface RedisStats {
  commands: number;
  /** Commands that failed or timed out. */
  failures: number;
  /** Connection-level errors reported by the client (refused, reset, ...). */
  connectionErrors: number;
  timeouts: number;
  /** Warnings actually written (at most one per 10 s). */
  warnings: number;
}

type Client = Redis | Cluster;
type ScriptRunner = (numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

const WARN_EVERY_MS = 10_000;

/**
 * One Redis client shared by every plugin instance with the same connection config. Commands get
 * a timeout; failures are logged at most once per 10 s.
 */
export class SharedRedis {
  readonly key: string;
  readonly client: Client;
  readonly stats: RedisStats = { commands: 0, failures: 0, connectionErrors: 0, timeouts: 0, warnings: 0 };
  refs = 0;
  private everReady = false;
  private lastWarn = 0;
  private suppressed = 0;
  private readonly readyWaiters = new Set<() => void>();
  private readonly scripts = new Map<string, ScriptRunner>();
  private readonly logger: Logger;
  private readonly where: string;

  constructor(key: string, config: RedisConnectionConfig, logger: Logger, lazy = false) {
    this.key = key;
    this.logger = logger;
    const built = ioredisOptions(config);
    // A registry used only to validate a config never connects.
    if (lazy) built.options.lazyConnect = true;
    this.where = config.cluster_nodes?.length
      ? `cluster ${config.cluster_nodes.map((n) => `${n.ip}:${n.port}`).join(',')}`
      : config.sentinel_master
        ? `sentinel ${config.sentinel_master}`
        : config.url
          ? 'url'
          : `${config.host ?? '127.0.0.1'}:${config.port ?? 6379}`;
    const { Redis, Cluster } = load<typeof import('ioredis')>('ioredis');
    if (built.kind === 'cluster') this.client = new Cluster(built.nodes, built.options);
    else if (config.url && built.kind === 'single') {
      const { host: _h, port: _p, db: _d, ...rest } = built.options;
      this.client = new Redis(config.url, rest);
    } else this.client = new Redis(built.options);
    this.client.on('ready', () => {
      this.everReady = true;
      const waiters = [...this.readyWaiters];
      this.readyWaiters.clear();
      for (const w of waiters) w();
      if (this.lastWarn) this.logger.info({ redis: this.where }, 'redis connection is back');
    });
    this.client.on('error', (err: Error) => {
      this.stats.connectionErrors++;
      this.warn(err);
    });
  }

  /** Registers a Lua script once per client (EVALSHA, with EVAL when the server does not know it yet). */
  defineScript(name: string, lua: string): void {
    if (this.scripts.has(name)) return;
    this.client.defineCommand(name, { lua });
    this.scripts.set(name, (this.client as unknown as Record<string, ScriptRunner>)[name]!.bind(this.client));
  }

  /** Runs a script within `timeoutMs`; rejects with RedisUnavailableError on timeout or when not connected. */
  run(name: string, keys: string[], args: (string | number)[], timeoutMs: number): Promise<unknown> {
    this.stats.commands++;
    const runner = this.scripts.get(name);
    if (!runner) return Promise.reject(new Error(`script ${name} is not defined`));
    const status = this.client.status;
    if (status !== 'ready') {
      // Only the very first connect is waited for; during an outage requests fail fast.
      if (this.everReady || status === 'end' || status === 'close') {
        return Promise.reject(this.noteFailure(new RedisUnavailableError(`redis ${this.where} is not connected (${status})`)));
      }
      let waiter: (() => void) | undefined;
      const ready = new Promise<void>((resolve) => this.readyWaiters.add((waiter = resolve)));
      return this.withTimeout(
        ready.then(() => runner(keys.length, ...keys, ...args)),
        timeoutMs,
        () => this.readyWaiters.delete(waiter!),
      );
    }
    return this.withTimeout(runner(keys.length, ...keys, ...args), timeoutMs);
  }

  private withTimeout<T>(p: Promise<T>, timeoutMs: number, onTimeout?: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        onTimeout?.();
        this.stats.timeouts++;
        reject(this.noteFailure(new RedisUnavailableError(`redis ${this.where} did not answer within ${timeoutMs} ms`, 'REDIS_TIMEOUT')));
      }, timeoutMs);
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: Error) => {
          clearTimeout(timer);
          reject(err instanceof RedisUnavailableError ? err : this.noteFailure(new RedisUnavailableError(`redis ${this.where}: ${err.message}`)));
        },
      );
    });
  }

  private noteFailure(err: RedisUnavailableError): RedisUnavailableError {
    this.stats.failures++;
    this.warn(err);
    return err;
  }

  /** Logs a warning at most once per 10 s (with how many were not logged). */
  private warn(err: Error): void {
    const now = Date.now();
    if (now - this.lastWarn < WARN_EVERY_MS) {
      this.suppressed++;
      return;
    }
    this.lastWarn = now;
    this.stats.warnings++;
    this.logger.warn({ redis: this.where, err: { message: err.message, code: (err as { code?: string }).code }, suppressed: this.suppressed }, 'redis unavailable');
    this.suppressed = 0;
  }

  async close(): Promise<void> {
    const waiters = [...this.readyWaiters];
    this.readyWaiters.clear();
    for (const w of waiters) w();
    try {
      if (this.client.status === 'ready') await this.client.quit();
      else this.client.disconnect();
    } catch {
      this.client.disconnect();
    }
  }
}

/**
 * The Redis clients of one gateway: one per distinct connection config, reference-counted by the
 * plugin instances that use it (acquired in create, released in dispose), all closed on stop.
 * A reload that keeps the config reuses the connection; one that changes it closes the old one
 * when the old snapshot retires.
 */
export class RedisRegistry {
  private readonly clients = new Map<string, SharedRedis>();
  private readonly logger: Logger;
  private readonly lazy: boolean;

  /** `lazy`: clients connect on their first command (used when a config is only validated). */
  constructor(logger: Logger, options: { lazy?: boolean } = {}) {
    this.logger = logger;
    this.lazy = options.lazy ?? false;
  }

  /** Open connections (for tests and status). */
  get size(): number {
    return this.clients.size;
  }

  acquire(config: RedisConnectionConfig): SharedRedis {
    const key = connectionKey(config);
    let c = this.clients.get(key);
    if (!c) {
      c = new SharedRedis(key, config, this.logger, this.lazy);
      this.clients.set(key, c);
    }
    c.refs++;
    return c;
  }

  async release(c: SharedRedis): Promise<void> {
    if (--c.refs > 0 || this.clients.get(c.key) !== c) return;
    this.clients.delete(c.key);
    await c.close();
  }

  async closeAll(): Promise<void> {
    const all = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
