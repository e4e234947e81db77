import { randomUUID } from 'node:crypto';
import { normalizeConfig } from '../config/normalize.js';
import { compileSnapshot, type CompileOrigins } from '../config/compile.js';
import type { Snapshot } from '../config/snapshot.js';
import { PoolManager } from '../proxy/pool.js';
import { RequestHandler } from '../pipeline/handler.js';
import { RequestIds } from '../pipeline/request-ids.js';
import { SnapshotHolder } from './holder.js';
import { HttpListener, type ListenAddress } from '../listeners/http-listener.js';
import { tlsBinding } from '../tls/server.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { PLUGINS } from '../plugins/registry.js';
import type { PluginDefinition } from '../plugins/types.js';
import { VERSION } from '../lib/version.js';
import { RedisRegistry } from '../cluster/redis.js';
import { GatewayScope } from './gateway-scope.js';
import { MemoryLimitStore } from '../cluster/limit-algorithms.js';
import type { LimitStore } from '../cluster/limit-types.js';
import { UpstreamManager } from '../upstream/manager.js';

export interface GatewayOptions {
  /** Parsed declarative config document. */
  config: unknown;
  proxyListen: ListenAddress;
  /** The HTTPS proxy listener (certificates from the config, by SNI); none when absent. */
  proxyListenTls?: ListenAddress | undefined;
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
  private readonly upstreams: UpstreamManager;
  private readonly holder: SnapshotHolder;
  private readonly listener: HttpListener;
  private readonly tlsListener: HttpListener | undefined;
  private tlsAddressBound: ListenAddress | undefined;
  private readonly workerId: number;
  private versionCounter = 1;
  private lastBuildMs = 0;
  private proxyAddress: ListenAddress | undefined;
  private readonly options: GatewayOptions;
  /** Redis clients shared by the plugins of every snapshot of this gateway; closed on stop. */
  readonly redis: RedisRegistry;
  /** Plugin state that outlives snapshots (see GatewayScope). */
  private readonly scope = new GatewayScope();
  private readonly counters: LimitStore;
  private readonly ownCounters: MemoryLimitStore | undefined;
  /** Prepared snapshots not live yet (their pools must survive a retirement meanwhile). */
  private readonly prepared = new Set<Snapshot>();
  /** Proxy connections: accepted since start, open now. */
  readonly connections = { accepted: 0, active: 0 };

  constructor(options: GatewayOptions) {
    this.options = options;
    this.logger = options.logger ?? createLogger();
    this.nodeId = options.nodeId ?? randomUUID();
    this.workerId = options.workerId ?? 0;
    this.plugins = options.plugins ?? PLUGINS;
    this.redis = new RedisRegistry(this.logger);
    this.ownCounters = options.counters ? undefined : new MemoryLimitStore();
    this.counters = options.counters ?? this.ownCounters!;
    this.upstreams = new UpstreamManager(this.logger);
    const first = this.build(options.config);
    this.holder = new SnapshotHolder(first, (old) => this.retire(old));
    const handler = new RequestHandler({ holder: this.holder, logger: this.logger, ids: new RequestIds(), version: VERSION, stats: this.stats });
    this.listener = new HttpListener(handler, this.logger);
    this.tlsListener = options.proxyListenTls ? new HttpListener(handler, this.logger, tlsBinding(() => this.holder.current.tls)) : undefined;
    for (const listener of this.listeners()) {
      listener.server.on('connection', (socket: import('node:net').Socket) => {
        this.connections.accepted++;
        this.connections.active++;
        socket.once('close', () => this.connections.active--);
      });
    }
  }

  private listeners(): HttpListener[] {
    return this.tlsListener ? [this.listener, this.tlsListener] : [this.listener];
  }

  /** Where the HTTPS listener is bound (after start), when there is one. */
  get tlsAddress(): ListenAddress | undefined {
    return this.tlsAddressBound;
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
    // On failure the caller stops the gateway, which closes the plain listener too.
    if (this.tlsListener && this.options.proxyListenTls) this.tlsAddressBound = await this.tlsListener.listen(this.options.proxyListenTls);
    return this.proxyAddress;
  }

  /**
   * Validates and compiles a whole new config from scratch (new plugin instances, with empty
   * caches), then swaps it in. Throws ConfigError and changes nothing when invalid.
   */
  reload(document: unknown): Snapshot {
    const next = this.prepare(document, false);
    this.commit(next);
    return next;
  }

  /**
   * First half of a reload: validates the whole document and compiles the next snapshot without
   * making it live; with `carryOver`, what did not change is taken from the live snapshot
   * (plugin instances keep their state: caches, fetched keys). Throws ConfigError when invalid.
   * Then commit() or discard() it.
   */
  prepare(document: unknown, carryOver = true): Snapshot {
    const t0 = performance.now();
    const next = this.build(document, carryOver);
    this.prepared.add(next);
    this.lastBuildMs = performance.now() - t0;
    return next;
  }

  /** Makes a prepared snapshot live; requests in flight finish on the old one. */
  commit(next: Snapshot): void {
    this.prepared.delete(next);
    this.holder.swap(next);
    // Clients without SNI get the server's own context: follow the new snapshot's default certificate.
    this.tlsListener?.useCertificates(next.tls);
    this.logger.info({ version: next.version, build_ms: Math.round(this.lastBuildMs) }, 'configuration applied');
  }

  /** Drops a prepared snapshot that will not go live. */
  discard(next: Snapshot): void {
    this.prepared.delete(next);
    next.dispose().catch((err) => this.logger.error({ err }, 'disposing a discarded snapshot failed'));
    this.retainUpstreams();
  }

  /** Checks a config without applying it (see validateConfig). */
  check(document: unknown): Promise<void> {
    return validateConfig(document, this.plugins);
  }

  private build(document: unknown, carryOver = false): Snapshot {
    const normal = normalizeConfig(document, this.plugins);
    return compileSnapshot(
      normal,
      {
        pools: this.pools,
        upstreams: this.upstreams,
        pluginDeps: { logger: this.logger, nodeId: this.nodeId, workerId: this.workerId, version: VERSION, counters: this.counters, redis: this.redis, scope: this.scope, now: this.options.now ?? Date.now },
        // Unchanged plugin instances, services and routes are carried over from the live snapshot.
        previous: carryOver ? this.holder?.current : undefined,
        origins: originsOf(document),
      },
      this.versionCounter++,
    );
  }

  private retire(old: Snapshot): void {
    old.dispose().catch((err) => this.logger.error({ err }, 'disposing an old snapshot failed'));
    if (this.holder === undefined) return;
    const keep = new Set<string>();
    for (const snap of [this.holder.current, ...this.prepared]) {
      for (const s of snap.services.values()) {
        keep.add(s.pool.key);
        if (s.upstream) for (const k of s.upstream.poolKeys()) keep.add(k);
      }
    }
    void this.pools.retain(keep);
    this.retainUpstreams();
  }

  /** Stops upstream runtimes (DNS watches, health checks) no live or prepared snapshot uses. */
  private retainUpstreams(): void {
    if (this.holder === undefined) return;
    this.upstreams.retain(new Set([this.holder.current, ...this.prepared].flatMap((snap) => [...snap.upstreams.values()])));
  }

  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes everything. */
  async stop(graceMs = 10_000): Promise<void> {
    const drained = Promise.all(this.listeners().map((l) => l.beginDrain()));
    const deadline = Date.now() + graceMs;
    while (this.holder.activeRequests > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const l of this.listeners()) l.forceClose();
    await drained;
    await this.holder.current.dispose();
    this.upstreams.closeAll();
    await this.pools.closeAll(true);
    await this.redis.closeAll();
    await this.scope.close();
    this.ownCounters?.close();
  }
}

/** The raw service and route objects of a document in the normalizer's order (see CompileOrigins). */
function originsOf(document: unknown): CompileOrigins | undefined {
  if (!document || typeof document !== 'object') return undefined;
  const doc = document as { services?: unknown; routes?: unknown };
  const services = Array.isArray(doc.services) ? doc.services : [];
  const routes: unknown[] = [];
  for (const s of services) {
    const nested = (s as { routes?: unknown } | null)?.routes;
    if (Array.isArray(nested)) for (const r of nested) routes.push(r);
  }
  if (Array.isArray(doc.routes)) for (const r of doc.routes) routes.push(r);
  return { services, routes };
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
  const scope = new GatewayScope();
  const counters = new MemoryLimitStore();
  try {
    const snapshot = compileSnapshot(normal, { pools, upstreams: new UpstreamManager(logger, false), pluginDeps: { logger, nodeId: randomUUID(), workerId: 0, version: VERSION, counters, redis, scope, now: Date.now } }, 0);
    await snapshot.dispose();
  } finally {
    await pools.closeAll(true);
    await redis.closeAll();
    await scope.close();
    counters.close();
  }
}
