import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { randomUUID } from 'node:crypto';
import { Gateway, validateConfig } from './runtime/gateway.js';
import { readConfigFile } from './config/load.js';
import type { AdminAnswer } from './plugins/types.js';
import { askPlugins, createAdminServer, isLoopback, listenAdmin, type AdminTarget } from './admin/server.js';
import type { ListenAddress } from './listeners/http-listener.js';
import { createLogger, type Logger } from './observability/logger.js';
import { PLUGINS } from './plugins/registry.js';
import { ConfigError } from './lib/errors.js';
import { VERSION } from './lib/version.js';
import { MemoryLimitStore } from './cluster/limit-algorithms.js';
import { answerLimits, IpcLimitClient, isLimitsRequest } from './cluster/local-counters.js';

export interface NodeOptions {
  configPath: string;
  proxyListen: ListenAddress;
  /** null: no admin API. */
  adminListen: ListenAddress | null;
  workers: number;
  /** Milliseconds in-flight requests get to finish on SIGTERM. */
  graceMs: number;
  logger?: Logger;
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

function checkAdminListen(admin: ListenAddress | null): void {
  if (admin && !isLoopback(admin.host)) {
    throw new ConfigError([`admin listen: ${admin.host} is not a loopback address; the admin API has no authentication yet, so it only binds to 127.0.0.1 or ::1 (or "off")`]);
  }
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
    reload().catch((err) => logger.error({ err: err instanceof ConfigError ? err.errors : err }, 'reload from file refused; the running config stays'));
  });
}

/** Single process: the gateway, its admin API and signal handling in this process. */
async function runSingle(options: NodeOptions, logger: Logger): Promise<void> {
  const document = await readConfigFile(options.configPath);
  const gateway = new Gateway({ config: document, proxyListen: options.proxyListen, logger });
  let current = document;
  const target: AdminTarget = {
    info: () => ({ version: VERSION, node_id: gateway.nodeId, plugins: { available_on_server: [...PLUGINS.keys()].sort() }, configuration_hash: gateway.snapshot.hash }),
    status: async () => ({ workers: 1, requests: gateway.stats.requests, active_requests: gateway.activeRequests, configuration_version: gateway.snapshot.version, configuration_hash: gateway.snapshot.hash }),
    exportConfig: () => current,
    applyConfig: async (doc) => {
      gateway.reload(doc);
      current = doc;
    },
    pluginAdmin: (request) => askPlugins(gateway.snapshot, request),
  };
  checkAdminListen(options.adminListen);
  const proxy = await gateway.start();
  let admin: ReturnType<typeof createAdminServer> | undefined;
  if (options.adminListen) {
    admin = createAdminServer(target, logger);
    const a = await listenAdmin(admin, options.adminListen);
    logger.info({ admin: `${a.host}:${a.port}` }, 'admin API listening');
  }
  logger.info({ proxy: `${proxy.host}:${proxy.port}`, config: options.configPath, version: VERSION }, 'gatehouse started');
  installSignals(
    logger,
    async () => {
      admin?.close();
      await gateway.stop(options.graceMs);
    },
    async () => {
      const doc = await readConfigFile(options.configPath);
      await target.applyConfig(doc);
    },
  );
}

interface WorkerMessage {
  type: 'ready' | 'applied' | 'stats' | 'failed' | 'plugin-admin';
  answer?: AdminAnswer;
  id?: number;
  errors?: string[];
  requests?: number;
  active?: number;
  version?: number;
  hash?: string;
  message?: string;
}

/** Primary of a multi-worker node: forks workers (which share the proxy port), serves the admin API, fans reloads out. */
async function runPrimary(options: NodeOptions, logger: Logger): Promise<void> {
  let current = await readConfigFile(options.configPath);
  await validateConfig(current, PLUGINS);
  checkAdminListen(options.adminListen);
  const nodeId = randomUUID();
  const workers = new Map<number, Worker>();
  let stopping = false;
  let nextId = 1;
  const pending = new Map<number, { left: number; errors: string[]; results: WorkerMessage[]; done: (r: { errors: string[]; results: WorkerMessage[] }) => void }>();
  // The node's rate-limit counters (local policy): workers ask over IPC, so a limit is exact for the whole node.
  const limits = new MemoryLimitStore();

  const ask = (msg: Record<string, unknown>): Promise<{ errors: string[]; results: WorkerMessage[] }> =>
    new Promise((resolve) => {
      const id = nextId++;
      const live = [...workers.values()].filter((w) => w.isConnected());
      if (!live.length) return resolve({ errors: [], results: [] });
      pending.set(id, { left: live.length, errors: [], results: [], done: resolve });
      for (const w of live) w.send({ ...msg, id });
      setTimeout(() => {
        const p = pending.get(id);
        if (p) {
          pending.delete(id);
          p.done({ errors: p.errors, results: p.results });
        }
      }, 10_000).unref();
    });

  const fork = (n: number) => {
    const w = cluster.fork({ GATEHOUSE_WORKER_ID: String(n), GATEHOUSE_NODE_ID: nodeId });
    workers.set(n, w);
    w.on('message', (m: WorkerMessage) => {
      if (isLimitsRequest(m)) {
        if (w.isConnected()) w.send(answerLimits(limits, m));
        return;
      }
      if (m.id === undefined) return;
      const p = pending.get(m.id);
      if (!p) return;
      p.results.push(m);
      if (m.errors) p.errors.push(...m.errors);
      if (--p.left === 0) {
        pending.delete(m.id);
        p.done({ errors: p.errors, results: p.results });
      }
    });
    w.on('exit', (code, signal) => {
      workers.delete(n);
      if (!stopping) {
        logger.error({ worker: n, code, signal }, 'worker exited; starting a new one');
        setTimeout(() => fork(n), 200);
      }
    });
  };

  const ready = new Promise<void>((resolve, reject) => {
    let count = 0;
    cluster.on('message', (_w, m: WorkerMessage) => {
      if (m.type === 'ready' && ++count === options.workers) resolve();
      if (m.type === 'failed') reject(new Error(m.message));
    });
  });
  for (let i = 1; i <= options.workers; i++) fork(i);
  await ready;

  const target: AdminTarget = {
    info: () => ({ version: VERSION, node_id: nodeId, plugins: { available_on_server: [...PLUGINS.keys()].sort() } }),
    status: async () => {
      const { results } = await ask({ type: 'stats' });
      return {
        workers: results.length,
        requests: results.reduce((n, r) => n + (r.requests ?? 0), 0),
        active_requests: results.reduce((n, r) => n + (r.active ?? 0), 0),
        configuration_version: results[0]?.version,
        configuration_hash: results[0]?.hash,
      };
    },
    exportConfig: () => current,
    applyConfig: async (doc) => {
      await validateConfig(doc, PLUGINS);
      const { errors } = await ask({ type: 'apply', document: doc });
      if (errors.length) throw new ConfigError(errors);
      current = doc;
    },
    // Every worker applies the request (its plugins hold per-worker state); the first answer is sent.
    pluginAdmin: async (request) => {
      const { results } = await ask({ type: 'plugin-admin', method: request.method, path: request.path, query: request.query.toString(), body: request.body });
      return results.find((r) => r.answer)?.answer;
    },
  };
  let admin: ReturnType<typeof createAdminServer> | undefined;
  if (options.adminListen) {
    admin = createAdminServer(target, logger);
    await listenAdmin(admin, options.adminListen);
  }
  logger.info({ proxy: `${options.proxyListen.host}:${options.proxyListen.port}`, workers: options.workers, version: VERSION }, 'gatehouse started');
  installSignals(
    logger,
    async () => {
      stopping = true;
      admin?.close();
      const exits = [...workers.values()].map((w) => new Promise<void>((r) => w.once('exit', () => r())));
      for (const w of workers.values()) w.process.kill('SIGTERM');
      await Promise.all(exits);
      limits.close();
    },
    async () => target.applyConfig(await readConfigFile(options.configPath)),
  );
}

/** A worker of a multi-worker node: one gateway; config changes arrive from the primary. */
async function runWorker(options: NodeOptions, logger: Logger): Promise<void> {
  const workerId = Number(process.env.GATEHOUSE_WORKER_ID ?? 0);
  // Rate-limit counters of the local policy live in the primary; replies are fed back below.
  const limits = new IpcLimitClient((m) => process.send?.(m));
  process.on('message', (m: unknown) => void limits.receive(m));
  let gateway: Gateway;
  try {
    gateway = new Gateway({ config: await readConfigFile(options.configPath), proxyListen: options.proxyListen, logger, workerId, nodeId: process.env.GATEHOUSE_NODE_ID, counters: limits });
    await gateway.start();
  } catch (err) {
    process.send?.({ type: 'failed', message: (err as Error).message });
    throw err;
  }
  process.on('message', (m: { type: string; id: number; document?: unknown }) => {
    if (m.type === 'apply') {
      try {
        gateway.reload(m.document);
        process.send?.({ type: 'applied', id: m.id });
      } catch (err) {
        process.send?.({ type: 'applied', id: m.id, errors: err instanceof ConfigError ? err.errors : [(err as Error).message] });
      }
    } else if (m.type === 'plugin-admin') {
      const r = m as unknown as { id: number; method: string; path: string; query: string; body: unknown };
      askPlugins(gateway.snapshot, { method: r.method, path: r.path, query: new URLSearchParams(r.query), body: r.body }).then(
        (answer) => process.send?.({ type: 'plugin-admin', id: r.id, answer }),
        (err) => process.send?.({ type: 'plugin-admin', id: r.id, answer: { status: 500, body: { message: (err as Error).message } } }),
      );
    } else if (m.type === 'stats') {
      const s = gateway.snapshot;
      process.send?.({ type: 'stats', id: m.id, requests: gateway.stats.requests, active: gateway.activeRequests, version: s.version, hash: s.hash });
    }
  });
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    gateway.stop(options.graceMs).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  process.send?.({ type: 'ready' });
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
