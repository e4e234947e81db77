import type { Redis } from 'ioredis';
import { load } from '../lib/lazy.js';
import { hostname } from 'node:os';
import type { Logger } from '../observability/logger.js';
import { ConfigError } from '../lib/errors.js';
import { AdminError } from '../admin/errors.js';
import { ConflictError, hashDocument, type ConfigBackend, type ConfigManager, type ConfigState } from '../admin/manager.js';
import type { FileBackend } from '../admin/file-backend.js';
import type { ConfigDocument } from '../admin/doc.js';
import type { Timestamps } from '../admin/views.js';

export interface ClusterOptions {
  /** redis://[user:password@]host:port[/db] */
  url: string;
  /** Prefix of every key and channel (default "gatehouse:"); nodes sharing one prefix form a cluster. */
  prefix?: string | undefined;
  /** Heartbeat and catch-up poll interval (default 1000 ms). */
  heartbeatMs?: number | undefined;
}

/**
 * Compare-and-set of the stored config: applies only when the stored version is the one the
 * change was made from, then announces the new version. Returns {1} or {0, current version}.
 */
const CAS = `
local current = redis.call('HGET', KEYS[1], 'version') or '0'
if current ~= ARGV[1] then return {0, current} end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'document', ARGV[3], 'meta', ARGV[4], 'node', ARGV[5], 'updated_at', ARGV[6])
redis.call('PUBLISH', KEYS[2], ARGV[2])
return {1, ARGV[2]}
`;

const STALE_AFTER_BEATS = 3;
const FORGET_AFTER_MS = 3_600_000;

type NodeInfo = () => Record<string, unknown>;

/**
 * Cluster mode: the configuration lives in Redis as one versioned document. A change is written
 * with a version check (a concurrent writer makes it retry on the newer document, so no change is
 * lost) and announced on a channel; every node fetches and applies it. A heartbeat registers the
 * node and doubles as a poll, so a node that missed an announcement (restart, network cut) catches
 * up within one interval. While Redis is unreachable a node keeps serving its last good config and
 * refuses admin writes (503).
 */
export class ClusterSync {
  readonly prefix: string;
  readonly nodeId: string;
  readonly backend: ConfigBackend;
  private readonly client: Redis;
  private readonly sub: Redis;
  private readonly logger: Logger;
  private readonly info: NodeInfo;
  private readonly heartbeatMs: number;
  private readonly startedAt = Date.now();
  private manager: ConfigManager | undefined;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private storeVersion = 0;
  private lastError: string | undefined;
  private backupChain: Promise<void> = Promise.resolve();

  constructor(options: ClusterOptions, nodeId: string, logger: Logger, info: NodeInfo) {
    this.prefix = options.prefix ?? 'gatehouse:';
    this.nodeId = nodeId;
    this.logger = logger;
    this.info = info;
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    const common = {
      lazyConnect: true,
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
    };
    // Loaded here, not at start: most nodes never run in cluster mode (see lib/lazy.ts).
    const { Redis } = load<typeof import('ioredis')>('ioredis');
    // Commands fail at once while disconnected (a write answers 503, nothing queues up).
    this.client = new Redis(options.url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 5000 });
    this.client.defineCommand('gatehouseConfigCas', { numberOfKeys: 2, lua: CAS });
    this.sub = new Redis(options.url, { ...common, maxRetriesPerRequest: null });
    for (const c of [this.client, this.sub]) {
      c.on('error', (err: Error) => {
        if (this.lastError !== err.message) this.logger.warn({ err: { message: err.message }, redis: 'cluster' }, 'cluster store (redis) unavailable');
        this.lastError = err.message;
      });
    }
    this.client.on('ready', () => {
      if (this.lastError) this.logger.info('cluster store (redis) is back');
      this.lastError = undefined;
      this.requestSync();
    });
    this.backend = {
      stage: async (next, base) => ({
        publish: () => this.write(base.version, next),
        discard: async () => undefined,
      }),
    };
  }

  private key(name: string): string {
    return `${this.prefix}${name}`;
  }

  get connected(): boolean {
    return this.client.status === 'ready';
  }

  /** The state stored in Redis, or undefined when none. Throws when Redis cannot be reached. */
  async read(): Promise<ConfigState | undefined> {
    const [version, document, meta] = await this.client.hmget(this.key('config'), 'version', 'document', 'meta');
    if (!version || !document) return undefined;
    this.storeVersion = Math.max(this.storeVersion, Number(version));
    const metaObj = meta ? (JSON.parse(meta) as Record<string, Timestamps>) : {};
    return { doc: JSON.parse(document) as ConfigDocument, meta: new Map(Object.entries(metaObj)), version: Number(version) };
  }

  private async write(baseVersion: number, next: ConfigState): Promise<void> {
    if (!this.connected) throw new AdminError(503, { message: `the cluster config store (redis) is unreachable${this.lastError ? ` (${this.lastError})` : ''}; the change was not applied` });
    let result: [number, string];
    try {
      result = (await (this.client as unknown as { gatehouseConfigCas: (...a: unknown[]) => Promise<[number, string]> }).gatehouseConfigCas(
        this.key('config'),
        this.key('config:events'),
        String(baseVersion),
        String(next.version),
        JSON.stringify(next.doc),
        JSON.stringify(Object.fromEntries(next.meta)),
        this.nodeId,
        String(Date.now()),
      )) as [number, string];
    } catch (err) {
      throw new AdminError(503, { message: `the cluster config store (redis) failed: ${(err as Error).message}; the change was not applied` });
    }
    this.storeVersion = Math.max(this.storeVersion, Number(result[1]));
    if (result[0] !== 1) throw new ConflictError(`the cluster config moved to version ${result[1]} meanwhile`);
  }

  /** The newest stored state (after a conflict). */
  async latest(): Promise<ConfigState | undefined> {
    try {
      return await this.read();
    } catch (err) {
      throw new AdminError(503, { message: `the cluster config store (redis) is unreachable: ${(err as Error).message}` });
    }
  }

  private async connect(timeoutMs: number): Promise<boolean> {
    const connecting = Promise.all([this.client.connect(), this.sub.connect()]).then(
      () => true,
      () => false,
    );
    const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref());
    return Promise.race([connecting, timeout]);
  }

  /**
   * The config to start with: Redis's when it holds one (the source of truth), else the file's,
   * which then seeds Redis. Without Redis the file's; the node catches up once Redis answers.
   */
  async start(local: ConfigState | undefined, validate: (s: ConfigState) => Promise<void>): Promise<ConfigState> {
    const up = await this.connect(3000);
    if (up) {
      try {
        let stored = await this.read();
        if (!stored && local) {
          try {
            await this.write(0, { ...local, version: 1 });
            this.logger.info({ version: 1 }, 'cluster store was empty: seeded it from the config file');
            return { ...local, version: 1 };
          } catch (err) {
            if (!(err instanceof ConflictError)) throw err;
            stored = await this.read();
          }
        }
        if (stored) {
          try {
            await validate(stored);
            this.logger.info({ version: stored.version }, 'configuration loaded from the cluster store');
            return stored;
          } catch (err) {
            if (!local) throw err;
            this.logger.error({ err: err instanceof ConfigError ? err.errors : err, version: stored.version }, 'the cluster configuration is invalid on this node; starting from the config file');
            return { ...local, version: 0 };
          }
        }
      } catch (err) {
        if (err instanceof ConfigError) throw err;
        this.logger.warn({ err: { message: (err as Error).message } }, 'cannot read the cluster store');
      }
    }
    if (!local) throw new ConfigError([`cluster store ${this.prefix}config: unreachable or empty, and there is no config file to start from`]);
    this.logger.warn('cluster store (redis) unreachable: starting from the config file; will catch up when it answers');
    return { ...local, version: 0 };
  }

  /** Starts listening for changes and sending heartbeats; changes are applied through `manager`. */
  attach(manager: ConfigManager): void {
    this.manager = manager;
    this.sub.on('message', (_channel: string, message: string) => {
      const v = Number(message);
      if (Number.isFinite(v)) this.storeVersion = Math.max(this.storeVersion, v);
      if (!(v <= manager.state.version)) this.requestSync();
    });
    // Missed announcements while the subscription was down are caught up on its return.
    this.sub.on('ready', () => this.requestSync());
    this.sub.subscribe(this.key('config:events')).catch((err: Error) => this.logger.warn({ err: { message: err.message } }, 'cluster subscribe failed'));
    const beat = () => {
      this.heartbeat().catch(() => undefined);
      if (!this.closed) this.timer = setTimeout(beat, this.heartbeatMs);
    };
    beat();
  }

  private requestSync(): void {
    if (!this.manager || this.closed) return;
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = this.sync()
      .catch((err) => this.logger.warn({ err: { message: (err as Error).message } }, 'cluster catch-up failed; will retry'))
      .finally(() => {
        this.syncing = undefined;
        if (this.again) {
          this.again = false;
          this.requestSync();
        }
      });
  }

  /** Brings this node to the stored version (or seeds an emptied store with this node's config). */
  private async sync(): Promise<void> {
    const manager = this.manager!;
    if (!this.connected) return;
    const stored = await this.read();
    const mine = manager.state;
    if (!stored) {
      // Redis lost the config (flushed, restarted without persistence): this node's is the best there is.
      await this.write(0, { ...mine, version: Math.max(mine.version, 0) + 1 }).then(
        () => manager.adopt({ ...mine, version: Math.max(mine.version, 0) + 1 }, true),
        (err) => {
          if (!(err instanceof ConflictError)) throw err;
          this.requestSync();
        },
      );
      this.logger.warn('cluster store was empty: seeded it with this node\'s configuration');
      return;
    }
    if (stored.version > mine.version) await this.adopt(stored);
    // The store went back (restored, or re-seeded by another node): it is the source of truth.
    else if (stored.version < mine.version) await this.adopt(stored, true);
    else if (hashDocument(stored.doc) !== hashDocument(mine.doc)) await this.adopt(stored, true);
  }

  private async adopt(stored: ConfigState, force = false): Promise<void> {
    try {
      if (await this.manager!.adopt(stored, force)) this.logger.info({ version: stored.version }, 'configuration updated from the cluster');
    } catch (err) {
      this.logger.error({ err: err instanceof ConfigError ? err.errors : { message: (err as Error).message }, version: stored.version }, 'cluster configuration refused on this node; the running one stays');
    }
  }

  private async heartbeat(): Promise<void> {
    if (!this.connected) return;
    const now = Date.now();
    const info = { id: this.nodeId, hostname: hostname(), pid: process.pid, started_at: Math.floor(this.startedAt / 1000), ...this.info(), last_seen: now };
    const results = await this.client
      .multi()
      .zadd(this.key('nodes'), now, this.nodeId)
      .hset(this.key('node-info'), this.nodeId, JSON.stringify(info))
      .hget(this.key('config'), 'version')
      .exec();
    const stored = Number(results?.[2]?.[1] ?? 0);
    this.storeVersion = Math.max(this.storeVersion, stored);
    const mine = this.manager?.state.version ?? 0;
    if (stored !== mine) this.requestSync();
  }

  /** The nodes that sent a heartbeat in the last hour, most recently seen first. */
  async nodes(): Promise<Record<string, unknown>[]> {
    const now = Date.now();
    const old = await this.client.zrangebyscore(this.key('nodes'), '-inf', now - FORGET_AFTER_MS);
    if (old.length) {
      await this.client.multi().zrem(this.key('nodes'), ...old).hdel(this.key('node-info'), ...old).exec();
    }
    const ids = await this.client.zrevrange(this.key('nodes'), 0, -1);
    if (!ids.length) return [];
    const infos = await this.client.hmget(this.key('node-info'), ...ids);
    return ids.flatMap((id, i) => {
      const raw = infos[i];
      if (!raw) return [];
      const n = JSON.parse(raw) as Record<string, unknown> & { last_seen: number; version?: number };
      const { version, last_seen, ...rest } = n;
      return [
        {
          ...rest,
          config_version: version ?? null,
          last_seen: Math.floor(last_seen / 1000),
          last_seen_ms_ago: now - last_seen,
          status: now - last_seen > STALE_AFTER_BEATS * this.heartbeatMs + 1000 ? 'stale' : 'alive',
          this_node: id === this.nodeId,
        },
      ];
    });
  }

  status(): Record<string, unknown> {
    return { redis: this.connected ? 'connected' : 'unreachable', store_version: this.storeVersion, node_id: this.nodeId, prefix: this.prefix, ...(this.lastError ? { last_error: this.lastError } : {}) };
  }

  /** Keeps the node's config file as a copy of the cluster's (a restart without Redis starts from it). */
  backupTo(file: FileBackend, state: ConfigState): Promise<void> {
    this.backupChain = this.backupChain
      .then(async () => {
        const staged = await file.stage(state);
        await staged.publish();
      })
      .catch((err) => this.logger.warn({ err: { message: (err as Error).message }, file: file.path }, 'cannot write the config file backup'));
    return this.backupChain;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.connected) {
      await this.client
        .multi()
        .zrem(this.key('nodes'), this.nodeId)
        .hdel(this.key('node-info'), this.nodeId)
        .exec()
        .catch(() => undefined);
    }
    await this.backupChain;
    this.client.disconnect();
    this.sub.disconnect();
  }
}
