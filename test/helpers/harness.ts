import { after } from 'node:test';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { Gateway } from '../../src/runtime/gateway.js';
import { createLogger } from '../../src/observability/logger.js';
import type { PluginDefinition } from '../../src/plugins/types.js';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

export interface Upstream {
  url: string;
  port: number;
  requests: RecordedRequest[];
  server: http.Server;
  close(): Promise<void>;
}

/** The default upstream: 200 JSON echo of what it received. */
function echo(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const text = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8') });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A real upstream on 127.0.0.1, port 0. The handler receives the whole body (read before calling
 * it) unless `streaming` is set, in which case it gets an empty buffer and reads `req` itself.
 */
export async function startUpstream(
  handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void = echo,
  options: { streaming?: boolean } = {},
): Promise<Upstream> {
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const record: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0) };
    requests.push(record);
    if (options.streaming) return handler(req, res, record.body);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      record.body = Buffer.concat(chunks);
      handler(req, res, record.body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    server,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface TestGateway {
  url: string;
  port: number;
  gateway: Gateway;
  /** Port of the HTTPS listener when started with `tls: true`. */
  tlsPort: number | undefined;
  /** Log lines (parsed JSON) the gateway wrote. */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** A gateway in this process on 127.0.0.1, port 0, logging into `logs`. */
export async function startGateway(config: object | string, options: { plugins?: ReadonlyMap<string, PluginDefinition<any>>; tls?: boolean } = {}): Promise<TestGateway> {
  const document = typeof config === 'string' ? parseYaml(config) : config;
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  const gateway = new Gateway({
    config: document,
    proxyListen: { host: '127.0.0.1', port: 0 },
    proxyListenTls: options.tls ? { host: '127.0.0.1', port: 0 } : undefined,
    logger,
    plugins: options.plugins,
  });
  const address = await gateway.start();
  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    gateway,
    tlsPort: gateway.tlsAddress?.port,
    logs,
    close: () => gateway.stop(1000),
  };
}

export interface TestResponse {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
  json(): any;
}

/** One request with node:http (no keep-alive, so tests do not share sockets). */
export function send(url: string, init: { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer } = {}): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body, json: () => JSON.parse(body) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** Writes raw bytes on a new TCP connection and returns everything read until the server closes or `waitMs` passes. */
export async function rawRequest(port: number, bytes: string | Buffer, waitMs = 1000): Promise<string> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    }, waitMs);
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      if (chunks.length) resolve(Buffer.concat(chunks).toString('latin1'));
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(bytes);
  });
}

/** A minimal config: one service at `url` with one route. */
export function oneRoute(url: string, route: Record<string, unknown> = { paths: ['/'] }, service: Record<string, unknown> = {}): object {
  return { _format_version: '3.0', services: [{ name: 'svc', url, ...service, routes: [{ name: 'r', ...route }] }] };
}

/**
 * A port nothing listens on right now, for processes that need a fixed port. Picked at random
 * below Linux's ephemeral range (32768+), so a server binding port 0 in a test running in
 * parallel cannot be handed the same port before the process binds it.
 */
export async function freePort(): Promise<number> {
  const net = await import('node:net');
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const s = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise((r) => s.close(r));
      return port;
    }
  }
}

/**
 * Upstreams and gateways that close themselves when the test file ends (registered with
 * node:test's `after`), for files that start many of them.
 */
export function managedServers(): { upstream: typeof startUpstream; gateway: typeof startGateway } {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });
  return {
    upstream: async (...args) => {
      const u = await startUpstream(...args);
      cleanup.push(u.close);
      return u;
    },
    gateway: async (...args) => {
      const g = await startGateway(...args);
      cleanup.push(g.close);
      return g;
    },
  };
}
