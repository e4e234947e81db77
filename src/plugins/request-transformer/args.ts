/**
 * Query strings and form-urlencoded bodies as Kong reads and writes them (ngx.decode_args /
 * ngx.encode_args): `a` alone is `true`, a repeated key is an array, `+` is a space. Unlike
 * Kong (Lua hash order) the order of keys is kept.
 */

export type ArgValue = string | true | (string | true)[];
export type ArgMap = Map<string, ArgValue>;

export function decodeArgs(raw: string | null | undefined): ArgMap {
  const args: ArgMap = new Map();
  if (!raw) return args;
  for (const segment of raw.split('&')) {
    if (segment === '') continue;
    const eq = segment.indexOf('=');
    const key = unescapeArg(eq < 0 ? segment : segment.slice(0, eq));
    if (key === '') continue;
    const value: string | true = eq < 0 ? true : unescapeArg(segment.slice(eq + 1));
    const prev = args.get(key);
    if (prev === undefined) args.set(key, value);
    else if (Array.isArray(prev)) prev.push(value);
    else args.set(key, [prev, value]);
  }
  return args;
}

export function encodeArgs(args: ArgMap): string {
  const out: string[] = [];
  for (const [key, value] of args) {
    const k = escapeArg(key);
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v === true) out.push(k);
      else if (typeof v === 'string') out.push(`${k}=${escapeArg(v)}`);
    }
  }
  return out.join('&');
}

/** Percent-decoding that leaves malformed escapes as they are (like ngx.unescape_uri). */
export function unescapeArg(s: string): string {
  s = s.replaceAll('+', ' ');
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      const cp = s.codePointAt(i)!;
      for (const b of Buffer.from(String.fromCodePoint(cp))) bytes.push(b);
      if (cp > 0xffff) i++;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Escapes everything but unreserved characters, as ngx.encode_args does. */
export function escapeArg(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
