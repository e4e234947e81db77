/**
 * Kong's media-type matching for proxy-cache `content_type` (kong/tools/mime_type.lua and
 * proxy-cache handler.lua): type and subtype compared exactly (case-sensitive, `*` in the configured
 * value matches anything), and the parameters must be the same set: same names, same values, same
 * count. So `application/json; charset=utf-8` does not match a configured `application/json`.
 */

export interface MediaType {
  type: string;
  subtype: string;
  params: ReadonlyMap<string, string>;
}

// RFC 2045 token: US-ASCII except CTLs, space and tspecials.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function isCtl(c: number): boolean {
  return c <= 31 || c === 127;
}

/**
 * `type "/" subtype *(OWS ";" OWS attribute "=" value)` with nothing else around it (Kong's LPeg
 * grammar: no space before the type, around "=" or at the end); a bare `*` is `*` / `*`. A quoted
 * value ends at the first `"` (a backslash is kept as a character, as in Kong). Undefined when it
 * does not parse.
 */
export function parseMediaType(text: string): MediaType | undefined {
  const semi = text.indexOf(';');
  // Whitespace is allowed before a ";" only.
  const typePart = semi < 0 ? text : text.slice(0, semi).replace(/[ \t]+$/, '');
  let type: string;
  let subtype: string;
  if (typePart === '*') {
    type = '*';
    subtype = '*';
  } else {
    const slash = typePart.indexOf('/');
    if (slash < 0) return undefined;
    type = typePart.slice(0, slash);
    subtype = typePart.slice(slash + 1);
    if (!TOKEN.test(type) || !TOKEN.test(subtype)) return undefined;
  }
  const params = new Map<string, string>();
  if (semi < 0) return { type, subtype, params };
  let i = semi;
  while (i < text.length) {
    // At a ";" (leading whitespace before it was consumed).
    if (text[i] !== ';') return undefined;
    i++;
    while (text[i] === ' ' || text[i] === '\t') i++;
    const eq = text.indexOf('=', i);
    if (eq < 0) return undefined;
    const name = text.slice(i, eq);
    if (!TOKEN.test(name)) return undefined;
    i = eq + 1;
    let value: string;
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) return undefined;
      value = text.slice(i + 1, end);
      for (let k = 0; k < value.length; k++) if (isCtl(value.charCodeAt(k))) return undefined;
      i = end + 1;
    } else {
      let end = i;
      while (end < text.length && text[end] !== ';' && text[end] !== ' ' && text[end] !== '\t') end++;
      value = text.slice(i, end);
      if (!TOKEN.test(value)) return undefined;
      i = end;
    }
    params.set(name, value);
    while (text[i] === ' ' || text[i] === '\t') i++;
    if (i < text.length && text[i] !== ';') return undefined;
    // Trailing whitespace with nothing after it does not parse in Kong's grammar.
    if (i === text.length && /[ \t]$/.test(text)) return undefined;
  }
  return { type, subtype, params };
}

/** A configured list compiled once. */
export class ContentTypeMatcher {
  private readonly expected: MediaType[];

  constructor(configured: readonly string[]) {
    this.expected = configured.map(parseMediaType).filter((m): m is MediaType => m !== undefined);
  }

  /** Kong: a missing, empty or repeated Content-Type is never cacheable. */
  matches(contentType: string | string[] | undefined): boolean {
    if (contentType === undefined || Array.isArray(contentType) || contentType === '') return false;
    const actual = parseMediaType(contentType);
    for (const exp of this.expected) {
      // An unparseable upstream value only matches `*/*` without parameters (Kong compares nil).
      if (exp.type !== '*' && actual?.type !== exp.type) continue;
      if (exp.subtype !== '*' && actual?.subtype !== exp.subtype) continue;
      const params = actual?.params ?? new Map<string, string>();
      if (params.size !== exp.params.size) continue;
      let same = true;
      for (const [k, v] of exp.params) {
        if (params.get(k) !== v) {
          same = false;
          break;
        }
      }
      if (same) return true;
    }
    return false;
  }
}
