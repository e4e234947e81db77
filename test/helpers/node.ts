// Test support (not used by the gateway): a node in the test process with its config in a
// temporary file, real sockets on port 0, its log lines collected, and admin API calls.
import http, { type IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { startSingle, type NodeOptions, type RunningNode } from '../../src/main.js';
import { createLogger } from '../../src/observability/logger.js';

export interface AdminCall {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** Parsed JSON body (undefined when empty). */
  body: any;
}

export interface TestNode extends RunningNode {
  file: string;
  adminUrl: string;
  proxyUrl: string;
  logs: Record<string, unknown>[];
  /** An admin API call; an object body is sent as JSON (content-type set unless given). */
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<AdminCall>;
}

export function request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: http.Agent } = {}): Promise<AdminCall> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: init.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

export async function startTestNode(config: object | string, options: Partial<NodeOptions> & { fileName?: string } = {}): Promise<TestNode> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-admin-'));
  const file = join(dir, options.fileName ?? 'gatehouse.yaml');
  writeFileSync(file, typeof config === 'string' ? config : JSON.stringify(config, null, 2));
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  const logger = createLogger({ level: 'info', destination });
  const node = await startSingle(
    {
      configPath: file,
      proxyListen: { host: '127.0.0.1', port: 0 },
      adminListen: { host: '127.0.0.1', port: 0 },
      workers: 1,
      graceMs: 1000,
      writeBack: true,
      ...options,
    },
    logger,
  );
  const adminUrl = `http://127.0.0.1:${node.admin?.port ?? 0}`;
  return {
    ...node,
    file,
    adminUrl,
    proxyUrl: `http://127.0.0.1:${node.proxy.port}`,
    logs,
    call: (method, path, body, headers = {}) => {
      const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      const h = { ...headers };
      if (text !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
      return request(`${adminUrl}${path}`, { method, headers: h, body: text });
    },
  };
}
