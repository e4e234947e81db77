/**
 * The "name:value" entries of the transformer plugins and the Lua value semantics Kong's
 * transformers rely on. Shared by request-transformer and response-transformer.
 */

export interface Pair {
  name: string;
  /** Everything after the first run of colons; may be empty. */
  value: string;
}

// Kong's `^([^:]+):*(.-)$`: the name runs to the first colon and every colon right after it is
// skipped, so "x:a:b" has value "a:b" but "x::y" has value "y".
const PAIR = /^([^:]+):*([\s\S]*)$/;

export function parsePair(entry: string): Pair | undefined {
  const m = PAIR.exec(entry);
  return m ? { name: m[1]!, value: m[2]! } : undefined;
}

/** Kong's header name rule (kong.tools.http.validate_header_name). */
const HEADER_NAME = /^[A-Za-z0-9_-]+$/;
// A header value may not carry control characters other than horizontal tab.
const HEADER_VALUE_BAD = /[\x00-\x08\x0a-\x1f\x7f]/;

export function isHeaderName(name: string): boolean {
  return HEADER_NAME.test(name);
}

export function isHeaderValue(value: string): boolean {
  return !HEADER_VALUE_BAD.test(value);
}

/** Strips the characters a header value cannot carry (a template may render a decoded query argument). */
export function sanitizeHeaderValue(value: string): string {
  return HEADER_VALUE_BAD.test(value) ? value.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '') : value;
}

/**
 * Checks an array of "name:value" entries; returns an error message naming the field, or undefined.
 * `headerNames`: the name (and for renames, the value) must be a valid header name.
 */
export function checkPairs(
  field: string,
  entries: readonly string[],
  opts: { needValue: boolean; headerName?: boolean; headerValue?: boolean; valueIsHeaderName?: boolean },
): string | undefined {
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    const at = `${field}[${i}]`;
    const pair = parsePair(entry);
    if (!pair) return `${at}: '${entry}' has no key`;
    if (opts.needValue && pair.value === '') return `${at}: key '${pair.name}' has no value`;
    if (opts.headerName && !isHeaderName(pair.name)) return `${at}: '${pair.name}' is not a valid header`;
    if (opts.valueIsHeaderName && !isHeaderName(pair.value)) return `${at}: '${pair.value}' is not a valid header`;
    if (opts.headerValue && !isHeaderValue(pair.value)) return `${at}: '${pair.value}' is not a valid header value`;
  }
  return undefined;
}

/** Lua truthiness: only nil (undefined) and false are false; a JSON null (cjson.null) and "" are true. */
export function luaTruthy(v: unknown): boolean {
  return v !== undefined && v !== false;
}

/**
 * Kong's append_value: a string becomes [old, new], an array (or table) gets the value added,
 * anything else (absent, number, boolean, null) is replaced by [new].
 */
export function luaAppend(current: unknown, value: unknown): unknown {
  if (typeof current === 'string') return [current, value];
  if (Array.isArray(current)) {
    current.push(value);
    return current;
  }
  if (current !== null && typeof current === 'object') {
    // table.insert on a decoded JSON object: an empty one becomes an array, a non-empty one
    // gets the next integer key (cjson then encodes it as an object with a "1" key).
    const obj = current as Record<string, unknown>;
    if (Object.keys(obj).length === 0) return [value];
    let n = 1;
    while (Object.hasOwn(obj, String(n))) n++;
    obj[String(n)] = value;
    return obj;
  }
  return [value];
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
