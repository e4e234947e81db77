/** Compiles a PCRE-style rule for JavaScript: a leading `(?i)` becomes the `i` flag. */
export function compileUserAgentRegex(source: string): RegExp {
  const m = /^\(\?([imsx]+)\)/.exec(source);
  if (!m) return new RegExp(source);
  const flags = [...new Set(m[1]!.replace('x', ''))].join('');
  return new RegExp(source.slice(m[0].length), flags);
}
