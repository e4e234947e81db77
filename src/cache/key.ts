import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Cache keys. Every component is encoded so that no two different requests can produce the same
 * key text: query names and values are percent-encoded after decoding (a decoded "&" or "=" cannot
 * pose as a separator), and the components are joined as a JSON array.
 */

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** One query parameter: the decoded name and value (null for a bare `?flag`), and its raw text. */
export interface QueryParam {
  name: string;
  value: string | null;
  raw: string;
}

/** application/x-www-form-urlencoded decoding ("+" is a space); a malformed escape keeps the raw text, marked. */
function decodeComponent(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    // Marked so that "%zz" (undecodable) and "%25zz" (a real "%zz") stay two keys.
    return `\u0000raw:${s}`;
  }
}

export function parseQuery(query: string | null): QueryParam[] {
  if (!query) return [];
  const out: QueryParam[] = [];
  for (const raw of query.split('&')) {
    if (raw === '') continue;
    const eq = raw.indexOf('=');
    if (eq < 0) out.push({ name: decodeComponent(raw), value: null, raw });
    else out.push({ name: decodeComponent(raw.slice(0, eq)), value: decodeComponent(raw.slice(eq + 1)), raw });
  }
  return out;
}

/**
 * The query component of a key: parameters sorted by name (so `?x=1&y=2` and `?y=2&x=1` are one
 * key), values of a repeated name kept in request order (an upstream may read the first or the
 * last), restricted to `only` when given (Kong's vary_query_params).
 */
export function queryKeyPart(params: QueryParam[], only: ReadonlySet<string> | undefined): string {
  const kept = only ? params.filter((p) => only.has(p.name)) : params;
  if (kept.length === 0) return '';
  // Array.prototype.sort is stable: equal names keep their order.
  const sorted = kept.length === 1 ? kept : [...kept].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let out = '';
  for (const p of sorted) {
    if (out) out += '&';
    out += encodeURIComponent(p.name);
    if (p.value !== null) out += `=${encodeURIComponent(p.value)}`;
  }
  return out;
}

/** The query string with only the parameters in `only` (raw text, request order); null when none is left. */
export function keepParams(params: QueryParam[], only: ReadonlySet<string>): string | null {
  const kept = params.filter((p) => only.has(p.name));
  return kept.length ? kept.map((p) => p.raw).join('&') : null;
}

/** A header's values joined with ", " (undefined when absent). */
export function headerValue(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * The values of the named request headers as one string (names lower-case); an absent header and
 * an empty one differ.
 */
export function headersKeyPart(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, names: readonly string[]): string {
  if (names.length === 0) return '';
  const parts: (string | null)[] = [];
  for (const name of names) parts.push(headerValue(headers, name) ?? null);
  return JSON.stringify(parts);
}

/** The hex SHA-256 of the components (as Kong 3.4+ uses SHA-256 for X-Cache-Key). */
export function cacheKey(components: readonly unknown[]): string {
  return sha256Hex(JSON.stringify(components));
}

/**
 * cacheKey with a memory of recent key texts: a hot key is hashed once rather than on every hit
 * (SHA-256 was the largest cost of a cache hit after the socket write). Bounded: cleared when full.
 */
export class KeyHasher {
  private readonly memo = new Map<string, string>();
  private readonly max: number;

  constructor(max = 4096) {
    this.max = max;
  }

  key(components: readonly unknown[]): string {
    const text = JSON.stringify(components);
    let hex = this.memo.get(text);
    if (hex === undefined) {
      hex = sha256Hex(text);
      if (this.memo.size >= this.max) this.memo.clear();
      this.memo.set(text, hex);
    }
    return hex;
  }
}

/** The key of one variant under a Vary index. */
export function variantKey(primary: string, generation: string, varyValues: string): string {
  return sha256Hex(`${primary}|${generation}|${varyValues}`);
}
