/**
 * RFC 9111 pieces a shared cache needs: Cache-Control directives, freshness lifetime, Age, Vary.
 */

/** Directive name (lower case) -> value: `true` for a bare directive, else the (unquoted) argument. */
export type Directives = ReadonlyMap<string, string | true>;

const NONE: Directives = new Map();

/** Parses Cache-Control (several header lines are joined with ","). */
export function parseCacheControl(value: string | string[] | undefined): Directives {
  if (value === undefined) return NONE;
  const text = Array.isArray(value) ? value.join(',') : value;
  if (!text) return NONE;
  const out = new Map<string, string | true>();
  // Commas inside quoted arguments (e.g. no-cache="a, b") are rare; quoted arguments are unquoted below.
  for (const part of splitOutsideQuotes(text)) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (!name) continue;
    let arg: string | true = true;
    if (eq >= 0) {
      arg = part.slice(eq + 1).trim();
      if (arg.length >= 2 && arg.startsWith('"') && arg.endsWith('"')) arg = arg.slice(1, -1);
    }
    // RFC 9111 4.2.1: of a repeated directive, the first one is used.
    if (!out.has(name)) out.set(name, arg);
  }
  return out;
}

function splitOutsideQuotes(text: string): string[] {
  if (text.indexOf('"') < 0) return text.split(',');
  const out: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) {
      out.push(text.slice(start, i));
      start = i + 1;
    }
  }
  out.push(text.slice(start));
  return out;
}

/** A delta-seconds argument (RFC 9111 1.2.2): undefined when absent or not a non-negative integer. */
export function deltaSeconds(d: Directives, name: string): number | undefined {
  const v = d.get(name);
  if (typeof v !== 'string' || !/^\d+$/.test(v)) return undefined;
  return Math.min(Number(v), 2_147_483_648);
}

/** An HTTP-date (IMF-fixdate, RFC 850 or asctime) in ms since the epoch; undefined when invalid. */
export function parseHttpDate(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const text = Array.isArray(value) ? value[value.length - 1]! : value;
  if (!/^[A-Za-z]{3}/.test(text.trim())) return undefined;
  const t = Date.parse(text);
  return Number.isFinite(t) ? t : undefined;
}

/**
 * Freshness lifetime of a response in seconds (RFC 9111 4.2.1, shared cache): s-maxage, then
 * max-age, then Expires minus Date (or minus now without Date). 0 when nothing says.
 * A malformed Expires means "already expired".
 */
export function freshnessLifetime(cc: Directives, headers: Record<string, string | string[] | undefined>, now: number): number {
  const s = deltaSeconds(cc, 's-maxage') ?? deltaSeconds(cc, 'max-age');
  if (s !== undefined) return s;
  const expiresHeader = headers.expires;
  if (expiresHeader === undefined) return 0;
  const expires = parseHttpDate(expiresHeader);
  if (expires === undefined) return 0;
  const date = parseHttpDate(headers.date) ?? now;
  return Math.max(0, Math.floor((expires - date) / 1000));
}

/** The upstream's Age in seconds (0 when absent or invalid). */
export function ageOf(headers: Record<string, string | string[] | undefined>): number {
  const v = headers.age;
  const text = Array.isArray(v) ? v[0] : v;
  if (text === undefined || !/^\s*\d+\s*$/.test(text)) return 0;
  return Number(text);
}

/** Vary field names, lower-case, sorted, without duplicates; '*' when the response varies on anything. */
export function parseVary(value: string | string[] | undefined): string[] | '*' {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  const names = new Set<string>();
  for (const part of text.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '*') return '*';
    if (name) names.add(name);
  }
  return [...names].sort();
}
