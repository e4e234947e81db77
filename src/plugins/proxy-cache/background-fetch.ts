import type { Dispatcher } from 'undici';
import type { HeaderMap } from '../../pipeline/exchange.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Response headers without hop-by-hop ones (and those the upstream's Connection names). */
function endToEnd(headers: Record<string, string | string[] | undefined>): HeaderMap {
  const conn = headers.connection;
  const named = new Set(
    (Array.isArray(conn) ? conn.join(',') : (conn ?? ''))
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  );
  const out: HeaderMap = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** What a background refresh got from the upstream. */
export type FetchResult =
  | { kind: 'not-modified'; headers: HeaderMap }
  | { kind: 'response'; status: number; headers: HeaderMap; body: Buffer }
  | { kind: 'too-large' };

/**
 * One GET to the upstream outside any client request (stale-while-revalidate): timeouts from the
 * service, the body read up to `maxBodySize` (beyond it the request is abandoned).
 */
export async function backgroundFetch(
  dispatcher: Dispatcher,
  options: { path: string; headers: Record<string, string | string[]>; timeoutMs: number; maxBodySize: number },
): Promise<FetchResult> {
  const res = await dispatcher.request({
    path: options.path,
    method: 'GET',
    headers: options.headers,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
  });
  const headers = endToEnd(res.headers);
  if (res.statusCode === 304) {
    await res.body.dump();
    return { kind: 'not-modified', headers };
  }
  const length = Number(res.headers['content-length']);
  if (Number.isFinite(length) && length > options.maxBodySize) {
    res.body.destroy();
    return { kind: 'too-large' };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > options.maxBodySize) {
      res.body.destroy();
      return { kind: 'too-large' };
    }
    chunks.push(chunk as Buffer);
  }
  return { kind: 'response', status: res.statusCode, headers, body: Buffer.concat(chunks, size) };
}
