import http from 'node:http';
import type { ListenAddress } from '../listeners/http-listener.js';
import { parseConfigText } from '../config/load.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../observability/logger.js';
import type { AdminAnswer, AdminRequest } from '../plugins/types.js';
import type { Snapshot } from '../config/snapshot.js';

/** What the admin API controls: one gateway, or the workers of a node through the primary. */
export interface AdminTarget {
  info(): Record<string, unknown>;
  status(): Promise<Record<string, unknown>>;
  exportConfig(): unknown;
  /** Validates and applies a whole config; rejects with ConfigError when invalid (nothing applied). */
  applyConfig(document: unknown): Promise<void>;
  /** Offers a request the core does not handle to the plugins (see PluginInstance.admin). */
  pluginAdmin(request: AdminRequest): Promise<AdminAnswer | undefined>;
}

/** Asks each plugin instance of a snapshot in turn; the first answer wins. */
export async function askPlugins(snapshot: Snapshot, request: AdminRequest): Promise<AdminAnswer | undefined> {
  const seen = new Set<unknown>();
  const instances = [...snapshot.globalPlugins.all, ...[...snapshot.routes.values()].flatMap((r) => r.plugins.all)];
  for (const p of instances) {
    if (seen.has(p.instance) || !p.instance.admin) continue;
    seen.add(p.instance);
    const answer = await p.instance.admin(request);
    if (answer) return answer;
  }
  return undefined;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

const MAX_BODY = 32 * 1024 * 1024;

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * The admin API (the part the core needs; the admin issue adds entity CRUD): GET /, GET /status,
 * GET /config, POST /config. Loopback only for now.
 */
export function createAdminServer(target: AdminTarget, logger: Logger): http.Server {
  return http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method === 'GET' && path === '/') return send(res, 200, target.info());
      if (req.method === 'GET' && path === '/status') return send(res, 200, await target.status());
      if (req.method === 'GET' && path === '/config') return send(res, 200, { config: target.exportConfig() });
      if (req.method === 'POST' && path === '/config') {
        const raw = await readBody(req);
        if (!raw) return send(res, 413, { message: 'Payload too large' });
        const text = raw.toString('utf8');
        if (!text.trim()) return send(res, 400, { message: 'expected a declarative configuration' });
        try {
          let doc = parseConfigText(text, 'body');
          if (doc && typeof doc === 'object' && typeof (doc as { config?: unknown }).config === 'string') doc = parseConfigText((doc as { config: string }).config, 'config');
          await target.applyConfig(doc);
        } catch (err) {
          if (err instanceof ConfigError) {
            return send(res, 400, { code: 14, name: 'invalid declarative configuration', message: `declarative config is invalid: ${err.errors.join('; ')}`, errors: err.errors });
          }
          throw err;
        }
        return send(res, 201, await target.status());
      }
      if (['/', '/status', '/config'].includes(path ?? '')) return send(res, 405, { message: 'Method not allowed' });
      const raw = await readBody(req);
      if (!raw) return send(res, 413, { message: 'Payload too large' });
      let body: unknown;
      if (raw.length) {
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          return send(res, 400, { message: 'Cannot parse JSON body' });
        }
      }
      const url = new URL(req.url ?? '/', 'http://admin');
      const answer = await target.pluginAdmin({ method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, body });
      if (answer) return send(res, answer.status, answer.body);
      return send(res, 404, { message: 'Not found' });
    } catch (err) {
      logger.error({ err }, 'admin request failed');
      if (!res.headersSent) send(res, 500, { message: 'An unexpected error occurred' });
    }
  });
}

export function listenAdmin(server: http.Server, address: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : address);
    });
  });
}
