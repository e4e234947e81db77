import { randomUUID } from 'node:crypto';
import { normalizeConfig } from '../config/normalize.js';
import { compileSnapshot } from '../config/compile.js';
import type { Snapshot } from '../config/snapshot.js';
import { PoolManager } from '../proxy/pool.js';
import { RequestHandler } from '../pipeline/handler.js';
import { RequestIds } from '../pipeline/request-ids.js';
import { SnapshotHolder } from './holder.js';
import { HttpListener, type ListenAddress } from '../listeners/http-listener.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { PLUGINS } from '../plugins/registry.js';
import type { PluginDefinition } from '../plugins/types.js';
import { VERSION } from '../lib/version.js';
import { RedisRegistry } from '../cluster/redis.js';
import { MemoryLimitStore } from '../cluster/limit-algorithms.js';
import type { LimitStore } from '../cluster/limit-types.js';

export interface GatewayOptions {
  /** Parsed declarative config document. */
  config: unknown;
  proxyListen: ListenAddress;
  logger?: Logger;
  workerId?: number;
  nodeId?: string;
  plugins?: ReadonlyMap<string, PluginDefinition<any>>;
  /** Node-local rate-limit counters; a worker passes the primary's (IPC). Default: in this process. */
  counters?: LimitStore;
  /** Clock for plugins (ms since the epoch); tests pass a controllable one. */
  now?: () => number;
}

/**
 * One gateway in one process: the live snapshot, the proxy listener and the upstream pools.
 * Holds no module state, so several can run side by side in one test process.
 */
export class Gateway {
  readonly logger: Logger;
  readonly nodeId: string;
  readonly version = VERSION;
  readonly stats = { requests: 0 };
  private readonly plugins: ReadonlyMap<string, PluginDefinition<any>>;
  private readonly pools = new PoolManager();
  private readonly holder: SnapshotHolder;
  private readonly listener: HttpListener;
  private readonly workerId: number;
  private versionCounter = 1;
  private proxyAddress: ListenAddress | undefined;
  private readonly options: GatewayOptions;
  /** Redis clients shared by the plugins of every snapshot of this gateway; closed on stop. */
  readonly redis: RedisRegistry;
  private readonly counters: LimitStore;
  private readonly ownCounters: MemoryLimitStore | undefined;

  constructor(options: GatewayOptions) {
    this.options = options;
    this.logger = options.logger ?? createLogger();
    this.nodeId = options.nodeId ?? randomUUID();
    this.workerId = options.workerId ?? 0;
    this.plugins = options.plugins ?? PLUGINS;
    this.redis = new RedisRegistry(this.logger);
    this.ownCounters = options.counters ? undefined : new MemoryLimitStore();
    this.counters = options.counters ?? this.ownCounters!;
    const first = this.build(options.config);
    this.holder = new SnapshotHolder(first, (old) => this.retire(old));
    const handler = new RequestHandler({ holder: this.holder, logger: this.logger, ids: new RequestIds(), version: VERSION, stats: this.stats });
    this.listener = new HttpListener(handler, this.logger);
  }

  get snapshot(): Snapshot {
    return this.holder.current;
  }

  get address(): ListenAddress | undefined {
    return this.proxyAddress;
  }

  get activeRequests(): number {
    return this.holder.activeRequests;
  }

  async start(): Promise<ListenAddress> {
    this.proxyAddress = await this.listener.listen(this.options.proxyListen);
    return this.proxyAddress;
  }

  /** Validates and compiles a whole new config, then swaps it in. Throws ConfigError and changes nothing when invalid. */
  reload(document: unknown): Snapshot {
    const next = this.build(document);
    this.holder.swap(next);
    this.logger.info({ version: next.version, hash: next.hash }, 'configuration applied');
    return next;
  }

  /** Checks a config without applying it (see validateConfig). */
  check(document: unknown): Promise<void> {
    return validateConfig(document, this.plugins);
  }

  private build(document: unknown): Snapshot {
    const normal = normalizeConfig(document, this.plugins);
    return compileSnapshot(normal, { pools: this.pools, pluginDeps: { logger: this.logger, nodeId: this.nodeId, workerId: this.workerId, version: VERSION, counters: this.counters, redis: this.redis, now: this.options.now ?? Date.now } }, this.versionCounter++);
  }

  private retire(old: Snapshot): void {
    old.dispose().catch((err) => this.logger.error({ err }, 'disposing an old snapshot failed'));
    if (this.holder === undefined) return;
    const keep = new Set([...this.holder.current.services.values()].map((s) => s.pool.key));
    void this.pools.retain(keep);
  }

  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes everything. */
  async stop(graceMs = 10_000): Promise<void> {
    const drained = this.listener.beginDrain();
    const deadline = Date.now() + graceMs;
    while (this.holder.activeRequests > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.listener.forceClose();
    await drained;
    await this.holder.current.dispose();
    await this.pools.closeAll(true);
    await this.redis.closeAll();
    this.ownCounters?.close();
  }
}

/**
 * Validates a config document as a reload would: schema and entity checks, then every plugin is
 * created (so bad keys or hashes surface) and disposed. Nothing listens and nothing connects.
 * Throws ConfigError naming every bad field.
 */
export async function validateConfig(document: unknown, plugins: ReadonlyMap<string, PluginDefinition<any>> = PLUGINS): Promise<void> {
  const normal = normalizeConfig(document, plugins);
  const logger = createLogger({ level: 'silent' });
  const pools = new PoolManager();
  const redis = new RedisRegistry(logger, { lazy: true });
  const counters = new MemoryLimitStore();
  try {
    const snapshot = compileSnapshot(normal, { pools, pluginDeps: { logger, nodeId: randomUUID(), workerId: 0, version: VERSION, counters, redis, now: Date.now } }, 0);
    await snapshot.dispose();
  } finally {
    await pools.closeAll(true);
    await redis.closeAll();
    counters.close();
  }
}
