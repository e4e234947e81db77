import { hostname } from 'node:os';
import type { Exchange } from '../../pipeline/exchange.js';
import { decodeArgs } from '../request-transformer/args.js';
import { boundaryOf, MultipartBody } from '../request-transformer/multipart.js';
import type { PluginDeps } from '../types.js';

/** Request headers as kong.request.get_headers() returns them: lower-case names, repeated ones as arrays. */
export function requestHeaders(ex: Exchange): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const distinct = ex.req.headersDistinct;
  for (const name of Object.keys(distinct)) {
    const values = distinct[name]!;
    out[name] = values.length === 1 ? values[0]! : values;
  }
  return out;
}

/** kong.request.get_body(): the body parsed by its Content-Type, or undefined. */
export function parsedBody(contentType: string | undefined, raw: Buffer): unknown {
  const ct = (contentType ?? '').toLowerCase();
  try {
    if (ct.includes('application/json')) return JSON.parse(raw.toString('utf8'));
    if (ct.includes('application/x-www-form-urlencoded')) return Object.fromEntries(decodeArgs(raw.toString('utf8')));
    if (ct.includes('multipart/form-data')) {
      const boundary = boundaryOf(contentType ?? '');
      if (!boundary) return undefined;
      const fields: Record<string, string> = {};
      for (const part of MultipartBody.parse(raw, boundary).parts) fields[part.name] = part.value.toString('utf8');
      return fields;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

function uriCaptures(captures: Record<string, string> | undefined): { named: Record<string, string>; unnamed: string[] } {
  const named: Record<string, string> = {};
  const unnamed: string[] = [];
  for (const [k, v] of Object.entries(captures ?? {})) {
    if (/^\d+$/.test(k)) unnamed[Number(k)] = v;
    else named[k] = v;
  }
  return { named, unnamed: Array.from(unnamed, (v) => v ?? null) as string[] };
}

/** The body Kong's request-termination sends with `echo: true`. */
export function echoBody(ex: Exchange, message: string | undefined, deps: PluginDeps): Record<string, unknown> {
  const raw = ex.requestBody ?? Buffer.alloc(0);
  const contentType = ex.req.headers['content-type'];
  const service = ex.service;
  const route = ex.route;
  return {
    message,
    kong: { node_id: deps.nodeId, worker_pid: process.pid, hostname: hostname() },
    request: {
      scheme: ex.scheme,
      host: ex.host,
      port: ex.req.socket.localPort ?? ex.hostPort,
      headers: requestHeaders(ex),
      query: Object.fromEntries(decodeArgs(ex.query)),
      body: parsedBody(contentType, raw),
      raw_body: raw.toString('utf8'),
      method: ex.req.method,
      path: ex.path,
      uri_captures: uriCaptures(ex.uriCaptures),
    },
    matched_route: route
      ? { id: route.id, name: route.name, protocols: [...route.protocols], strip_path: route.stripPath, preserve_host: route.preserveHost }
      : undefined,
    matched_service: service
      ? { id: service.id, name: service.name, protocol: service.protocol, host: service.host, port: service.port, path: service.path }
      : undefined,
  };
}
