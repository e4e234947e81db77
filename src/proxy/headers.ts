import type { HeaderMap } from '../pipeline/exchange.js';

/** Hop-by-hop headers (RFC 9110 7.6.1) and the legacy ones proxies also drop. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Request headers the gateway always sets itself or handles here (never copied from the client). */
const SET_BY_GATEWAY = new Set(['host', 'expect']);

function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (!value) return undefined;
  // Nearly every message says one of these, and both name only hop-by-hop fields dropped anyway.
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return undefined;
  const out = new Set<string>();
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t) out.add(t);
  }
  return out.size ? out : undefined;
}

/**
 * Upstream request headers from the client's raw header list: lower-case names, repeated headers
 * kept as arrays, hop-by-hop headers (and those named by Connection) removed, and the names in
 * `owned` (headers only the gateway may set) dropped in the same pass. TE survives only as
 * "trailers".
 */
export function requestHeadersForUpstream(raw: string[], connection: string | undefined, owned: ReadonlySet<string>): HeaderMap {
  const named = connectionTokens(connection);
  const out: HeaderMap = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    if (owned.has(name)) continue;
    if (HOP_BY_HOP.has(name) || SET_BY_GATEWAY.has(name) || named?.has(name)) {
      if (name === 'te' && /(^|,)\s*trailers\s*(,|$)/i.test(value)) out.te = 'trailers';
      continue;
    }
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}

/** Response headers from the upstream's raw list (name, value, ...): lower-case names, hop-by-hop removed. */
export function responseHeadersFromRaw(raw: string[]): HeaderMap {
  let named: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      const tokens = connectionTokens(raw[i + 1]);
      if (tokens) named = named ? new Set([...named, ...tokens]) : tokens;
    }
  }
  const out: HeaderMap = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    const value = raw[i + 1]!;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}
