import { withNodeFlags } from './runtime/node-flags.js';
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism, hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Gateway, validateConfig } from './runtime/gateway.js';
import { parseConfigText } from './config/load.js';
import type { AdminAnswer } from './plugins/types.js';
import { askPlugins, adminListenProblem, createAdminServer, listenAdmin, type AdminTarget } from './admin/server.js';
import type { ListenAddress } from './listeners/http-listener.js';
import { createLogger, type Logger } from './observability/logger.js';
import { PLUGINS } from './plugins/registry.js';
import { ConfigError } from './lib/errors.js';
import { VERSION } from './lib/version.js';
import { MemoryLimitStore } from './cluster/limit-algorithms.js';
import { answerLimits, IpcLimitClient, isLimitsRequest } from './cluster/local-counters.js';
import { ConfigManager, hashDocument, nowSeconds, type Applier, type ConfigState } from './admin/manager.js';
import { pinDocument } from './admin/pin.js';
import { FileBackend, watchConfigFile } from './admin/file-backend.js';
import { explainRequest, type RouteQuery } from './admin/explain.js';
import { indexOf } from './admin/doc-index.js';
import { AdminError } from './admin/errors.js';
import type { ConfigDocument } from './admin/doc.js';
import { WorkerConfig, WorkerPool, type WorkerReply } from './cluster/workers.js';
import { ClusterSync, type ClusterOptions } from './cluster/config-sync.js';

export interface NodeOptions {
  configPath: string;
  proxyListen: ListenAddress;
  /** The HTTPS proxy listener; off when undefined. */
  proxyListenTls?: ListenAddress | undefined;
  /** null: no admin API. */
  adminListen: ListenAddress | null;
  workers: number;
  /** Milliseconds in-flight requests get to finish on SIGTERM. */
  graceMs: number;
  logger?: Logger;
  /** Required on every admin request when set; required to bind the admin API to a non-loopback address. */
  adminToken?: string | undefined;
  /** The config file (or the cluster's document) is the only source: admin writes answer 405. */
  readOnlyAdmin?: boolean;
  /** Write admin changes back to the config file (the CLI's default; off for embedders such as the demo). */
  writeBack?: boolean;
  /** Reload the config file when it changes. */
  watch?: boolean;
  /** Share the config through Redis with the other nodes (--cluster-redis). */
  cluster?: ClusterOptions | undefined;
}

export function parseListen(value: string, what: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  if (!m || Number(m[3]) > 65535) throw new ConfigError([`${what}: expected HOST:PORT, got "${value}"`]);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port: Number(m[3]) };
}

export function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new ConfigError([`workers: expected a number from 1 to 256 or "auto", got "${value}"`]);
  return n;
}

function checkAdminListen(options: NodeOptions, logger: Logger): void {
  if (!options.adminListen) return;
  const problem = adminListenProblem(options.adminListen, options.adminToken);
  if (problem) throw new ConfigError([problem]);
  if (options.adminToken && options.adminToken.length < 16) logger.warn('the admin token is shorter than 16 characters: use a long random one (e.g. openssl rand -hex 32)');
}

function installSignals(logger: Logger, stop: () => Promise<void>, reload: () => Promise<void>): void {
  let stopping = false;
  const onStop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: draining in-flight requests');
    stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGINT', () => onStop('SIGINT'));
  process.on('SIGHUP', () => {
    reload().catch((err) => logger.error({ err: err instanceof ConfigError ? err.errors : err instanceof AdminError ? err.body : err }, 'reload from file refused; the running config stays'));
  });
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError([`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
}

interface Start {
  state: ConfigState;
  fileText: string | undefined;
  sync: ClusterSync | undefined;
}

/**
 * The config a node starts with: its file, validated whole and with ids pinned; in cluster mode
 * the cluster's document (seeded from the file when Redis holds none, the file alone while Redis
 * cannot be reached).
 */
async function startingState(options: NodeOptions, nodeId: string, logger: Logger, info: () => Record<string, unknown>): Promise<Start> {
  const fileText = await readText(options.configPath);
  if (fileText === undefined && !options.cluster) throw new ConfigError([`${options.configPath}: cannot read: ENOENT`]);
  const fromFile = fileText === undefined ? undefined : pinDocument(parseConfigText(fileText, options.configPath), PLUGINS, nowSeconds());
  if (fromFile) await validateConfig(fromFile.doc, PLUGINS);
  if (!options.cluster) return { state: { doc: fromFile!.doc, meta: fromFile!.meta, version: 1 }, fileText, sync: undefined };
  const sync = new ClusterSync(options.cluster, nodeId, logger, info);
  const state = await sync.start(fromFile ? { doc: fromFile.doc, meta: fromFile.meta, version: 0 } : undefined, async (s) => {
    await validateConfig(s.doc, PLUGINS);
  });
  return { state, fileText, sync };
}

const hashes = new WeakMap<object, string>();
function stateHash(state: ConfigState): string {
  let h = hashes.get(state.doc);
  if (!h) hashes.set(state.doc, (h = hashDocument(state.doc)));
  return h;
}

/** The common part of the admin target (single process or primary). */
function baseTarget(options: NodeOptions, nodeId: string, manager: ConfigManager, sync: ClusterSync | undefined): Pick<AdminTarget, 'info' | 'exportConfig' | 'applyConfig' | 'manager' | 'clusterNodes'> {
  return {
    info: () => ({
      version: VERSION,
      tagline: 'Welcome to gatehouse',
      node_id: nodeId,
      hostname: hostname(),
      plugins: {
        available_on_server: [...PLUGINS.keys()].sort(),
        enabled_in_cluster: [...new Set(indexOf(manager.state.doc).list('plugins').map((p) => String(p.raw.name)))].sort(),
      },
      configuration: {
        database: sync ? 'redis' : 'off',
        read_only_admin: manager.readOnly,
        workers: options.workers,
        proxy_listen: `${options.proxyListen.host}:${options.proxyListen.port}`,
        admin_listen: options.adminListen ? `${options.adminListen.host}:${options.adminListen.port}` : 'off',
      },
      configuration_version: manager.state.version,
      configuration_hash: stateHash(manager.state),
    }),
    exportConfig: () => manager.state.doc,
    applyConfig: async (doc) => {
      await manager.replace(doc);
    },
    manager,
    ...(sync ? { clusterNodes: () => sync.nodes() } : {}),
  };
}

/** Reloads from the file on SIGHUP and, with --watch, when it changes. */
function fileReloader(options: NodeOptions, manager: ConfigManager, backend: FileBackend | undefined, logger: Logger): { reload: () => Promise<void>; stop: () => void } {
  const apply = async (text: string) => {
    const doc = parseConfigText(text, options.configPath);
    // One node: the file is already the stored config (not rewritten). Cluster: the edit is a change for every node.
    const state = await manager.replace(doc, undefined, options.cluster !== undefined);
    logger.info({ file: options.configPath, version: state.version }, 'configuration reloaded from the file');
  };
  const onError = (err: unknown) => logger.error({ err: err instanceof ConfigError ? err.errors : err instanceof AdminError ? err.body : err }, 'config file change refused; the running config stays');
  let known = backend?.lastText;
  const stop = options.watch
    ? watchConfigFile(
        options.configPath,
        () => backend?.lastText ?? known,
        (text) => {
          // The file no longer holds our last write-back: from now on it holds this edit.
          known = text;
          if (backend) backend.lastText = undefined;
          apply(text).catch(onError);
        },
        logger,
      )
    : () => undefined;
  return {
    reload: async () => {
      const text = await readFile(options.configPath, 'utf8');
      known = text;
      await apply(text);
    },
    stop,
  };
}

function makeManager(options: NodeOptions, start: Start, applier: Applier, logger: Logger, onApplied?: (s: ConfigState) => void): { manager: ConfigManager; fileBackend: FileBackend | undefined } {
  const readOnly = options.readOnlyAdmin ?? false;
  // One node writes its changes back to its file; in cluster mode Redis stores them and the file
  // is refreshed as a backup (a node restarted while Redis is down starts from it).
  const fileBackend = options.writeBack && !readOnly ? new FileBackend(options.configPath, start.fileText) : undefined;
  const sync = start.sync;
  const manager = new ConfigManager({
    state: start.state,
    applier,
    backend: sync ? sync.backend : fileBackend,
    plugins: PLUGINS,
    logger,
    readOnly,
    latest: sync ? () => sync.latest() : undefined,
    onApplied: (state) => {
      if (sync && fileBackend) void sync.backupTo(fileBackend, state);
      onApplied?.(state);
    },
  });
  return { manager, fileBackend };
}

/** A node running in this process (single-process mode); tests start them with port 0. */
export interface RunningNode {
  gateway: Gateway;
  manager: ConfigManager;
  sync: ClusterSync | undefined;
  proxy: ListenAddress;
  admin: ListenAddress | undefined;
  /** SIGHUP's action: re-read the config file and apply it. */
  reloadFromFile(): Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

/** Starts the gateway, its admin API, the file watcher and cluster sync in this process. */
export async function startSingle(options: NodeOptions, logger: Logger = options.logger ?? createLogger()): Promise<RunningNode> {
  checkAdminListen(options, logger);
  const nodeId = randomUUID();
  // What the cluster heartbeat reports; filled in as the parts come up.
  const live: { gateway?: Gateway; manager?: ConfigManager; admin?: ListenAddress } = {};
  const heartbeat = () => ({
    version: live.manager?.state.version ?? 0,
    hash: live.manager ? stateHash(live.manager.state) : undefined,
    proxy: `${options.proxyListen.host}:${live.gateway?.address?.port ?? options.proxyListen.port}`,
    admin: live.admin ? `${live.admin.host}:${live.admin.port}` : null,
    workers: 1,
  });
  const start = await startingState(options, nodeId, logger, heartbeat);
  const gw = new Gateway({ config: start.state.doc, proxyListen: options.proxyListen, proxyListenTls: options.proxyListenTls, logger, nodeId });
  live.gateway = gw;
  const applier: Applier = {
    prepare: async (next, _delta, fresh) => {
      const snapshot = gw.prepare(next.doc, !fresh);
      return { commit: () => gw.commit(snapshot), abort: () => gw.discard(snapshot) };
    },
  };
  const made = makeManager(options, start, applier, logger);
  const m = made.manager;
  live.manager = m;
  const target: AdminTarget = {
    ...baseTarget(options, nodeId, m, start.sync),
    status: async () => ({
      workers: 1,
      requests: gw.stats.requests,
      active_requests: gw.activeRequests,
      server: { connections_accepted: gw.connections.accepted, connections_active: gw.connections.active, total_requests: gw.stats.requests },
      configuration_version: m.state.version,
      configuration_hash: stateHash(m.state),
      ...(start.sync ? { cluster: start.sync.status() } : {}),
    }),
    pluginAdmin: (request) => askPlugins(gw.snapshot, request),
    explainRoute: async (q) => explainRequest(gw.snapshot, q),
  };
  let proxy: ListenAddress;
  let admin: ReturnType<typeof createAdminServer> | undefined;
  try {
    proxy = await gw.start();
    if (options.adminListen) {
      admin = createAdminServer(target, logger, { token: options.adminToken, listen: options.adminListen });
      live.admin = await listenAdmin(admin, options.adminListen);
      logger.info({ admin: `${live.admin.host}:${live.admin.port}`, read_only: m.readOnly }, 'admin API listening');
    }
  } catch (err) {
    await start.sync?.close();
    await gw.stop(0);
    throw err;
  }
  start.sync?.attach(m);
  const files = fileReloader(options, m, made.fileBackend, logger);
  const tlsAddress = gw.tlsAddress;
  logger.info({ proxy: `${proxy.host}:${proxy.port}`, proxy_tls: tlsAddress ? `${tlsAddress.host}:${tlsAddress.port}` : null, config: options.configPath, version: VERSION }, 'gatehouse started');
  return {
    gateway: gw,
    manager: m,
    sync: start.sync,
    proxy,
    admin: live.admin,
    reloadFromFile: files.reload,
    stop: async (graceMs = options.graceMs) => {
      files.stop();
      if (admin) {
        const closed = new Promise((r) => admin!.close(r));
        admin.closeAllConnections();
        await closed;
      }
      await start.sync?.close();
      await gw.stop(graceMs);
    },
  };
}

/** Single process: the gateway, its admin API and signal handling in this process. */
async function runSingle(options: NodeOptions, logger: Logger): Promise<void> {
  const node = await startSingle(options, logger);
  installSignals(logger, () => node.stop(), node.reloadFromFile);
}

/** Primary of a multi-worker node: forks workers (which share the proxy port), serves the admin API, fans changes out. */
async function runPrimary(options: NodeOptions, logger: Logger): Promise<void> {
  checkAdminListen(options, logger);
  const nodeId = randomUUID();
  const pool = new WorkerPool(logger);
  const live: { manager?: ConfigManager } = {};
  const start = await startingState(options, nodeId, logger, () => ({
    version: live.manager?.state.version ?? 0,
    hash: live.manager ? stateHash(live.manager.state) : undefined,
    proxy: `${options.proxyListen.host}:${options.proxyListen.port}`,
    admin: options.adminListen ? `${options.adminListen.host}:${options.adminListen.port}` : null,
    workers: pool.ready.size,
  }));
  const made = makeManager(options, start, pool, logger);
  const m = made.manager;
  live.manager = m;
  const workers = new Map<number, Worker>();
  let stopping = false;
  // The node's rate-limit counters (local policy): workers ask over IPC, so a limit is exact for the whole node.
  const limits = new MemoryLimitStore();
  let failed: ((err: Error) => void) | undefined;

  // Workers get the runtime flags of bin/gatehouse.js even when the primary was started without them.
  cluster.setupPrimary({ execArgv: withNodeFlags(process.execArgv) });
  const fork = (n: number) => {
    const w = cluster.fork({ GATEHOUSE_WORKER_ID: String(n), GATEHOUSE_NODE_ID: nodeId });
    workers.set(n, w);
    w.on('message', (msg: WorkerReply) => {
      if (isLimitsRequest(msg)) {
        if (w.isConnected()) w.send(answerLimits(limits, msg));
        return;
      }
      if (msg.type === 'hello') {
        // A worker loads the current config under the change lock, so it cannot miss a change.
        void m.exclusive(async () => {
          const ready = await pool.ask({ type: 'init', document: m.state.doc, version: m.state.version }, [w], 60_000);
          const r = ready.get(w);
          if (r?.type === 'ready') pool.ready.add(w);
          else if (r?.type === 'failed') failed?.(new Error(String(r.message)));
        });
        return;
      }
      pool.receive(w, msg);
    });
    w.on('exit', (code, signal) => {
      workers.delete(n);
      pool.forget(w);
      if (!stopping) {
        logger.error({ worker: n, code, signal }, 'worker exited; starting a new one');
        setTimeout(() => fork(n), 200);
      }
    });
  };

  await new Promise<void>((resolve, reject) => {
    failed = reject;
    const check = setInterval(() => {
      if (pool.ready.size >= options.workers) {
        clearInterval(check);
        resolve();
      }
    }, 20);
    for (let i = 1; i <= options.workers; i++) fork(i);
  });
  failed = (err) => logger.error({ err: err.message }, 'a worker failed to start');

  const target: AdminTarget = {
    ...baseTarget(options, nodeId, m, start.sync),
    status: async () => {
      const results = [...(await pool.ask({ type: 'stats' })).values()];
      const sum = (k: string) => results.reduce((n, r) => n + Number(r[k] ?? 0), 0);
      return {
        workers: results.length,
        requests: sum('requests'),
        active_requests: sum('active'),
        server: { connections_accepted: sum('accepted'), connections_active: sum('connections'), total_requests: sum('requests') },
        configuration_version: m.state.version,
        configuration_hash: stateHash(m.state),
        workers_config_versions: results.map((r) => r.version),
        ...(start.sync ? { cluster: start.sync.status() } : {}),
      };
    },
    // Every worker applies the request (its plugins hold per-worker state); the first answer is sent.
    pluginAdmin: async (request) => {
      const replies = await pool.ask({ type: 'plugin-admin', method: request.method, path: request.path, query: request.query.toString(), body: request.body });
      // Every worker applied it; a success anywhere wins over a 404 from a worker that had nothing to act on.
      const answers = [...replies.values()].map((r) => r.answer as AdminAnswer | undefined).filter((a): a is AdminAnswer => a !== undefined);
      return answers.find((a) => a.status >= 200 && a.status < 300) ?? answers[0];
    },
    explainRoute: async (q) => {
      const first = [...pool.ready][0];
      if (!first) throw new AdminError(503, { message: 'no worker is ready' });
      const r = (await pool.ask({ type: 'explain', query: q }, [first])).get(first);
      if (r?.error) throw new AdminError((r.error as { status: number }).status, (r.error as { body: Record<string, unknown> }).body);
      return r?.answer as Record<string, unknown>;
    },
  };
  start.sync?.attach(m);
  let admin: ReturnType<typeof createAdminServer> | undefined;
  if (options.adminListen) {
    admin = createAdminServer(target, logger, { token: options.adminToken, listen: options.adminListen });
    await listenAdmin(admin, options.adminListen);
  }
  const files = fileReloader(options, m, made.fileBackend, logger);
  const tls = options.proxyListenTls;
  logger.info({ proxy: `${options.proxyListen.host}:${options.proxyListen.port}`, proxy_tls: tls ? `${tls.host}:${tls.port}` : null, workers: options.workers, version: VERSION }, 'gatehouse started');
  installSignals(
    logger,
    async () => {
      stopping = true;
      files.stop();
      admin?.close();
      await start.sync?.close();
      const exits = [...workers.values()].map((w) => new Promise<void>((r) => w.once('exit', () => r())));
      for (const w of workers.values()) w.process.kill('SIGTERM');
      await Promise.all(exits);
      limits.close();
    },
    files.reload,
  );
}

/** A worker of a multi-worker node: one gateway; its config and every change come from the primary. */
async function runWorker(options: NodeOptions, logger: Logger): Promise<void> {
  const workerId = Number(process.env.GATEHOUSE_WORKER_ID ?? 0);
  // Rate-limit counters of the local policy live in the primary; replies are fed back below.
  const limits = new IpcLimitClient((m) => process.send?.(m));
  process.on('message', (m: unknown) => void limits.receive(m));
  let gateway: Gateway | undefined;
  let config: WorkerConfig | undefined;
  const reply = (m: Record<string, unknown>) => process.send?.(m);
  process.on('message', (m: { type: string; id: number; document?: ConfigDocument; version?: number; query?: RouteQuery }) => {
    if (m.type === 'init') {
      if (gateway) return reply({ type: 'ready', id: m.id });
      try {
        const g = new Gateway({ config: m.document, proxyListen: options.proxyListen, proxyListenTls: options.proxyListenTls, logger, workerId, nodeId: process.env.GATEHOUSE_NODE_ID, counters: limits });
        gateway = g;
        config = new WorkerConfig(g, m.document!, m.version ?? 0);
        g.start().then(
          () => reply({ type: 'ready', id: m.id }),
          (err: Error) => {
            reply({ type: 'failed', id: m.id, message: err.message });
            process.exit(1);
          },
        );
      } catch (err) {
        reply({ type: 'failed', id: m.id, message: err instanceof ConfigError ? err.errors.join('; ') : (err as Error).message });
        process.exit(1);
      }
      return;
    }
    const g = gateway;
    if (!g || !config) return;
    const handled = config.handle(m);
    if (handled) return reply(handled);
    if (m.type === 'plugin-admin') {
      const r = m as unknown as { id: number; method: string; path: string; query: string; body: unknown };
      askPlugins(g.snapshot, { method: r.method, path: r.path, query: new URLSearchParams(r.query), body: r.body }).then(
        (answer) => reply({ type: 'plugin-admin', id: r.id, answer }),
        (err) => reply({ type: 'plugin-admin', id: r.id, answer: { status: 500, body: { message: (err as Error).message } } }),
      );
    } else if (m.type === 'explain') {
      try {
        reply({ type: 'explained', id: m.id, answer: explainRequest(g.snapshot, m.query!) });
      } catch (err) {
        reply({ type: 'explained', id: m.id, error: err instanceof AdminError ? { status: err.status, body: err.body } : { status: 500, body: { message: (err as Error).message } } });
      }
    } else if (m.type === 'stats') {
      reply({ type: 'stats', id: m.id, requests: g.stats.requests, active: g.activeRequests, version: config.currentVersion, accepted: g.connections.accepted, connections: g.connections.active });
    }
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    if (!gateway) process.exit(0);
    gateway.stop(options.graceMs).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  reply({ type: 'hello' });
}

/** Starts a node: one process, or a primary with N workers. */
export async function runNode(options: NodeOptions): Promise<void> {
  const logger = options.logger ?? createLogger();
  if (cluster.isWorker) return runWorker(options, logger);
  if (options.workers > 1) {
    cluster.schedulingPolicy = cluster.SCHED_RR;
    return runPrimary(options, logger);
  }
  return runSingle(options, logger);
}
