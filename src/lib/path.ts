/**
 * Request-path normalisation, done once per request: the result is both what the router matches
 * and what is forwarded, so an ACL or route cannot be bypassed with an encoded variant.
 */

const HEX = '0123456789ABCDEF';

function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Characters allowed raw in a path (RFC 3986 pchar and "/"), plus "%" for escapes. */
function isPathChar(c: number): boolean {
  return isUnreserved(c) || c === 0x2f || c === 0x25 || c === 0x3a || c === 0x40 || c === 0x21 || c === 0x24 || (c >= 0x26 && c <= 0x2c) || c === 0x3b || c === 0x3d;
}

/**
 * Returns the normalised path, or undefined when it is malformed (bad percent escape, a
 * character outside RFC 3986's path grammar, or not starting with "/").
 * Steps: decode percent-escapes of unreserved characters, upper-case the others, remove dot segments.
 */
export function normalizePath(raw: string): string | undefined {
  if (raw.charCodeAt(0) !== 0x2f) return undefined;
  let needsWork = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (!isPathChar(c)) return undefined;
    if (c === 0x25 || (c === 0x2e && raw.charCodeAt(i - 1) === 0x2f)) needsWork = true;
  }
  if (!needsWork) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 0x25) {
      out += raw[i];
      continue;
    }
    const h = hexValue(raw.charCodeAt(i + 1));
    const l = hexValue(raw.charCodeAt(i + 2));
    if (h < 0 || l < 0) return undefined;
    const byte = h * 16 + l;
    out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[h]}${HEX[l]}`;
    i += 2;
  }
  return removeDotSegments(out);
}

/** RFC 3986 section 5.2.4, for absolute paths. */
export function removeDotSegments(path: string): string {
  if (!path.includes('.')) return path;
  const segments = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    if (seg === '.') {
      if (last) out.push('');
    } else if (seg === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(seg);
  }
  return `/${out.join('/')}`;
}
