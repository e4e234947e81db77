// Test support for the proxy-cache specs (not used by the gateway): an upstream that counts its
// hits and answers per test, a gateway with a controllable clock, and config builders.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { Gateway } from '../../runtime/gateway.js';
import { createLogger } from '../../observability/logger.js';
import type { Snapshot } from '../../config/snapshot.js';
import type { ProxyCacheInstance } from './plugin.js';
import { startUpstream, type Upstream } from '../../../test/helpers/harness.js';

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** A JSON body that says which upstream request produced it (so a test can tell a hit from a miss). */
export function countingHandler(extraHeaders: Record<string, string | string[]> = {}, status = 200): Handler {
  let n = 0;
  return (req, res) => {
    n++;
    const text = JSON.stringify({ n, url: req.url, headers: req.headers });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...extraHeaders });
    res.end(text);
  };
}

/** An upstream whose handler a test can swap between requests. */
export interface SwitchableUpstream extends Upstream {
  handler: Handler;
  /** Requests the upstream received. */
  readonly hits: number;
}

export async function startSwitchableUpstream(handler: Handler = countingHandler()): Promise<SwitchableUpstream> {
  const holder: { handler: Handler } = { handler };
  const up = await startUpstream((req, res, body) => holder.handler(req, res, body));
  Object.defineProperties(up, {
    handler: { get: () => holder.handler, set: (h: Handler) => (holder.handler = h) },
    hits: { get: () => up.requests.length },
  });
  return up as SwitchableUpstream;
}

export interface Clock {
  t: number;
  now(): number;
  advance(seconds: number): void;
}

export function clock(start = Date.UTC(2026, 0, 1)): Clock {
  const c: Clock = {
    t: start,
    now: () => c.t,
    advance: (s) => {
      c.t += s * 1000;
    },
  };
  return c;
}

export interface CacheGateway {
  url: string;
  gateway: Gateway;
  logs: Record<string, unknown>[];
  /** The proxy-cache instance of route `routeName` (default: the first route). */
  cache(routeName?: string): ProxyCacheInstance;
  close(): Promise<void>;
}

function instanceIn(snapshot: Snapshot, routeName: string | undefined): ProxyCacheInstance {
  for (const route of snapshot.routes.values()) {
    if (routeName !== undefined && route.name !== routeName) continue;
    const bound = route.plugins.all.find((p) => p.name === 'proxy-cache');
    if (bound) return bound.instance as ProxyCacheInstance;
  }
  throw new Error(`no proxy-cache plugin on route ${routeName ?? '(any)'}`);
}

/** A gateway in this process on 127.0.0.1:0, with `now` as the plugins' clock. */
export async function startCacheGateway(config: object, now?: () => number): Promise<CacheGateway> {
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  const gateway = new Gateway({ config, proxyListen: { host: '127.0.0.1', port: 0 }, logger: createLogger({ level: 'info', destination }), now });
  const address = await gateway.start();
  return {
    url: `http://127.0.0.1:${address.port}`,
    gateway,
    logs,
    cache: (routeName) => instanceIn(gateway.snapshot, routeName),
    close: () => gateway.stop(1000),
  };
}

/** One service at `url`, one route `r` on `/`, proxy-cache with `config` (strategy memory unless given). */
export function cached(url: string, config: Record<string, unknown> = {}, route: Record<string, unknown> = {}): object {
  return {
    _format_version: '3.0',
    services: [{ name: 's', url, routes: [{ name: 'r', paths: ['/'], ...route, plugins: [{ name: 'proxy-cache', config: { strategy: 'memory', ...config } }] }] }],
  };
}

/** Resolves when `condition` holds (polled), or rejects after `ms`. */
export async function eventually(condition: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
