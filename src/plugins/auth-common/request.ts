/**
 * Reading credentials from the client's request. Everything here reads `ex.req` (what the client
 * sent), never the upstream header map: hop-by-hop tricks such as `Connection: apikey` change what
 * goes upstream, not what the gateway authenticates.
 */
import type { Exchange, HeaderMap } from '../../pipeline/exchange.js';
import { decodeArgs, unescapeArg, type ArgMap } from '../request-transformer/args.js';
import { sanitizeHeaderValue } from '../request-transformer/pairs.js';

/**
 * All values of a request header, like Kong's kong.request.get_headers()[name]: the name is
 * matched case-insensitively, and a name with "_" also finds the "-" spelling (ngx's lookup).
 */
export function headerValues(ex: Exchange, name: string): string[] | undefined {
  const lower = name.toLowerCase();
  const distinct = ex.req.headersDistinct;
  const values = distinct[lower];
  if (values !== undefined) return values;
  if (lower.includes('_')) return distinct[lower.replaceAll('_', '-')];
  return undefined;
}

/** The first value of a request header (kong.request.get_header). */
export function firstHeader(ex: Exchange, name: string): string | undefined {
  return headerValues(ex, name)?.[0];
}

/** The request's query arguments as Kong decodes them (a bare `a` is `true`, repeats are arrays). */
export function queryArgs(ex: Exchange): ArgMap {
  return decodeArgs(ex.query);
}

/** Removes every `name` argument from a raw query string, leaving the others byte for byte. */
export function removeQueryArg(raw: string | null, name: string): string | null {
  if (raw === null || raw === '') return raw;
  const kept = raw.split('&').filter((segment) => {
    if (segment === '') return true;
    const eq = segment.indexOf('=');
    return unescapeArg(eq < 0 ? segment : segment.slice(0, eq)) !== name;
  });
  return kept.join('&');
}

/** The value of cookie `name` ($cookie_<name>: the first cookie of that name, name matched case-insensitively). */
export function cookieValue(ex: Exchange, name: string): string | undefined {
  const headers = ex.req.headersDistinct.cookie;
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const header of headers) {
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      if (pair.slice(0, eq).trim().toLowerCase() === wanted) return pair.slice(eq + 1).trim();
    }
  }
  return undefined;
}

/**
 * Deletes a header from the upstream map, together with every spelling of it with "_" or "-"
 * (CGI-style upstreams read both the same way).
 */
export function removeUpstreamHeader(h: HeaderMap, lowerName: string): void {
  delete h[lowerName];
  const dashed = lowerName.replaceAll('_', '-');
  delete h[dashed];
  for (const key in h) {
    if (key.includes('_') && key.replaceAll('_', '-') === dashed) delete h[key];
  }
}

const STANDARD_B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const URL_B64 = /^[A-Za-z0-9_-]*={0,2}$/;
const ANY_B64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * Strict base64 decoding (ngx.decode_base64 refuses malformed input; Buffer.from silently skips
 * bad characters). Padding is optional. Returns undefined when the input is not base64.
 */
export function decodeBase64(input: string, alphabet: 'standard' | 'url' | 'any' = 'standard'): Buffer | undefined {
  const ok = (alphabet === 'standard' ? STANDARD_B64 : alphabet === 'url' ? URL_B64 : ANY_B64).test(input);
  if (!ok) return undefined;
  const body = input.replace(/=+$/, '');
  if (body.length % 4 === 1) return undefined;
  if (input.length !== body.length && input.length % 4 !== 0) return undefined;
  return Buffer.from(body.replaceAll('-', '+').replaceAll('_', '/'), 'base64');
}

/** The bytes as a string when they are valid UTF-8, else undefined (no silent U+FFFD replacement). */
export function utf8(bytes: Buffer): string | undefined {
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : undefined;
}

/**
 * A value from a token or config as an upstream header value: control characters removed, and
 * non-ASCII text sent as its UTF-8 bytes (node writes header strings as latin1).
 */
export function headerValue(text: string): string {
  const clean = sanitizeHeaderValue(text);
  return /[^\x00-\x7f]/.test(clean) ? Buffer.from(clean, 'utf8').toString('latin1') : clean;
}
