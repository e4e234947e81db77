import http from 'node:http';
import type { ListenAddress } from '../listeners/http-listener.js';
import { parseConfigText } from '../config/load.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../observability/logger.js';
import { AdminError } from './errors.js';
import { handleApi } from './api.js';
import { checkAdminRequest, isLoopback, type AdminSecurity } from './security.js';
import type { AdminTarget } from './target.js';

export { askPlugins, type AdminTarget } from './target.js';
export { isLoopback } from './security.js';

const MAX_BODY = 32 * 1024 * 1024;

class BodyTooLarge extends Error {}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new BodyTooLarge();
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(res: http.ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined || status === 204 || status === 304 ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    // The admin API's answers are never for a browser to render or cache.
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  });
  res.end(text);
}

export interface AdminServerOptions {
  /** Required for every request when set (Kong-Admin-Token or Authorization: Bearer). */
  token?: string | undefined;
  /** The address the server listens on (the Host header is checked against it). */
  listen?: ListenAddress | undefined;
}

function hasBody(req: http.IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/**
 * The admin API: Kong's entity endpoints over the declarative document (when the target has a
 * ConfigManager), /config, /status, /schemas, the route debugger, cluster nodes, and whatever
 * plugin instances answer (their `admin` hook) before a 404.
 */
export function createAdminServer(target: AdminTarget, logger: Logger, options: AdminServerOptions = {}): http.Server {
  const security: AdminSecurity = { token: options.token || undefined, listen: options.listen };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    try {
      const refusal = checkAdminRequest(req, security, hasBody(req));
      if (refusal) {
        req.resume();
        return send(res, refusal.status, { message: refusal.message }, refusal.headers);
      }
      const raw = await readBody(req);
      const text = raw.toString('utf8');
      let body: unknown;
      if (text.trim()) {
        try {
          body = parseConfigText(text, 'body');
        } catch (err) {
          if (url.pathname === '/config' && err instanceof ConfigError) {
            return send(res, 400, { code: 14, name: 'invalid declarative configuration', message: `declarative config is invalid: ${err.errors.join('; ')}`, errors: err.errors });
          }
          return send(res, 400, { message: 'Cannot parse JSON body' });
        }
      }
      const method = req.method ?? 'GET';
      const answer = await handleApi({ method, path: url.pathname, query: url.searchParams, body, text }, target);
      if (answer) return send(res, answer.status, answer.body, answer.headers);
      const plugin = await target.pluginAdmin({ method, path: url.pathname, query: url.searchParams, body });
      if (plugin) return send(res, plugin.status, plugin.body);
      return send(res, 404, { message: 'Not found' });
    } catch (err) {
      if (err instanceof AdminError) return send(res, err.status, err.body, err.headers);
      if (err instanceof BodyTooLarge) return send(res, 413, { message: 'Payload too large' }, { connection: 'close' });
      logger.error({ err }, 'admin request failed');
      if (!res.headersSent) send(res, 500, { message: 'An unexpected error occurred' });
    }
  });
  return server;
}

/** Why an admin address cannot be used, or undefined: a non-loopback bind needs a token. */
export function adminListenProblem(address: ListenAddress, token: string | undefined): string | undefined {
  if (isLoopback(address.host) || token) return undefined;
  return `admin listen: ${address.host} is not a loopback address, and the admin API can change everything the gateway does: set an admin token (--admin-token or GATEHOUSE_ADMIN_TOKEN) to expose it, or bind it to 127.0.0.1`;
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
