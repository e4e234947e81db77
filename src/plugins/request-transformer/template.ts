/**
 * Kong's request-transformer value templates (Penlight templates in Kong's sandbox), reduced to a
 * small evaluator that never runs code. Supported inside `$( ... )`:
 *   headers.name   headers["name"]   query_params.name   uri_captures.name   uri_captures[1]   shared.key
 * further `.key` / `["key"]` / `[n]` (1-based) steps, string and number literals, and `a or b`
 * (Lua semantics: only a missing value or false falls through). A missing value renders as "".
 */
import type { Exchange, HeaderMap } from '../../pipeline/exchange.js';
import { decodeArgs } from './args.js';
import { luaTruthy } from './pairs.js';

export type RootName = 'headers' | 'query_params' | 'uri_captures' | 'shared';
const ROOTS: ReadonlySet<string> = new Set(['headers', 'query_params', 'uri_captures', 'shared']);

/** Where the roots come from; resolved lazily, once per request. */
export interface TemplateScope {
  root(name: RootName): unknown;
}

type Operand = { lit: string | number } | { root: RootName; keys: (string | number)[] };
type Part = string | Operand[];

export class TemplateError extends Error {}

export interface CompiledTemplate {
  readonly source: string;
  /** The value when the template has no `$(...)`; undefined otherwise. */
  readonly constant: string | undefined;
  render(scope: TemplateScope): string;
}

export function compileTemplate(source: string): CompiledTemplate {
  const parts = parseParts(source);
  if (parts.every((p) => typeof p === 'string')) {
    const constant = parts.join('');
    return { source, constant, render: () => constant };
  }
  return {
    source,
    constant: undefined,
    render(scope) {
      let out = '';
      for (const part of parts) out += typeof part === 'string' ? part : renderValue(evaluate(part, scope));
      return out;
    },
  };
}

/** Renders a template against plain values (tests, or callers without an Exchange). */
export function scopeOf(values: Partial<Record<RootName, unknown>>): TemplateScope {
  return { root: (name) => values[name] ?? {} };
}

/** The lazy scope over one request, as seen when the plugin started (like Kong's lazily loaded template env). */
export class ExchangeScope implements TemplateScope {
  readonly #ex: Exchange;
  #headers: HeaderMap | undefined;
  #query: Record<string, unknown> | undefined;
  constructor(ex: Exchange) {
    this.#ex = ex;
  }
  // The headers as plugins so far left them, but with the client's Host (Kong's get_headers()).
  #requestHeaders(): HeaderMap {
    const headers = { ...this.#ex.upstreamHeaders };
    const host = this.#ex.req.headers.host;
    if (host === undefined) delete headers.host;
    else headers.host = host;
    return headers;
  }

  root(name: RootName): unknown {
    switch (name) {
      case 'headers':
        return (this.#headers ??= this.#requestHeaders());
      case 'query_params':
        return (this.#query ??= Object.fromEntries(decodeArgs(this.#ex.upstreamQuery)));
      case 'uri_captures':
        return this.#ex.uriCaptures ?? {};
      case 'shared':
        return this.#ex.shared;
    }
  }
}

function parseParts(source: string): Part[] {
  const parts: Part[] = [];
  let text = '';
  let i = 0;
  while (i < source.length) {
    if (source[i] === '$' && source[i + 1] === '(') {
      const end = matchingParen(source, i + 1);
      if (end >= 0) {
        if (text) parts.push(text);
        text = '';
        parts.push(parseExpression(source.slice(i + 2, end), source));
        i = end + 1;
        continue;
      }
    }
    text += source[i];
    i++;
  }
  if (text) parts.push(text);
  return parts;
}

// Penlight matches `$%b()`: balanced parentheses, quotes not considered.
function matchingParen(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0) return i;
  }
  return -1;
}

type Token = { t: 'id'; v: string } | { t: 'str'; v: string } | { t: 'num'; v: number } | { t: 'p'; v: string };

function tokenize(expr: string, source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new TemplateError(`value '${source}' is not in supported format, error: ${why}`);
  };
  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(expr.slice(i))![0];
      tokens.push({ t: 'id', v: m });
      i += m.length;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(expr.slice(i))![0];
      tokens.push({ t: 'num', v: Number(m) });
      i += m.length;
    } else if (c === '"' || c === "'") {
      let v = '';
      let j = i + 1;
      for (; j < expr.length && expr[j] !== c; j++) {
        if (expr[j] === '\\') {
          j++;
          const e = expr[j];
          v += e === 'n' ? '\n' : e === 't' ? '\t' : (e ?? '');
        } else {
          v += expr[j];
        }
      }
      if (j >= expr.length) fail('unfinished string');
      tokens.push({ t: 'str', v });
      i = j + 1;
    } else if (c === '.' || c === '[' || c === ']') {
      tokens.push({ t: 'p', v: c });
      i++;
    } else {
      fail(`unexpected '${c}'`);
    }
  }
  return tokens;
}

function parseExpression(expr: string, source: string): Operand[] {
  const tokens = tokenize(expr, source);
  const fail = (why: string): never => {
    throw new TemplateError(`value '${source}' is not in supported format, error: ${why}`);
  };
  let i = 0;
  const operands: Operand[] = [];
  for (;;) {
    const tok = tokens[i++];
    if (!tok) fail('empty expression');
    else if (tok.t === 'str' || tok.t === 'num') operands.push({ lit: tok.v });
    else if (tok.t === 'id' && ROOTS.has(tok.v)) {
      const keys: (string | number)[] = [];
      for (;;) {
        const next = tokens[i];
        if (next?.t === 'p' && next.v === '.') {
          const key = tokens[i + 1];
          if (key?.t !== 'id') fail("expected a name after '.'");
          keys.push((key as { v: string }).v);
          i += 2;
        } else if (next?.t === 'p' && next.v === '[') {
          const key = tokens[i + 1];
          const close = tokens[i + 2];
          if (!key || (key.t !== 'str' && key.t !== 'num') || close?.t !== 'p' || close.v !== ']') {
            fail("expected a string or number between '[' and ']'");
          }
          keys.push((key as { v: string | number }).v);
          i += 3;
        } else {
          break;
        }
      }
      operands.push({ root: tok.v as RootName, keys });
    } else {
      fail(`'${tok.v}' is not supported (use headers, query_params, uri_captures or shared)`);
    }
    const sep = tokens[i];
    if (!sep) break;
    if (sep.t === 'id' && sep.v === 'or') {
      i++;
      continue;
    }
    fail(`unexpected '${sep.v}'`);
  }
  return operands;
}

function evaluate(operands: Operand[], scope: TemplateScope): unknown {
  let value: unknown;
  for (const op of operands) {
    value = 'lit' in op ? op.lit : lookup(scope.root(op.root), op.root, op.keys);
    if (luaTruthy(value) && value !== null) return value;
  }
  return value;
}

function lookup(base: unknown, root: RootName, keys: (string | number)[]): unknown {
  let v = base;
  for (let depth = 0; depth < keys.length; depth++) {
    const key = keys[depth]!;
    if (Array.isArray(v)) {
      v = typeof key === 'number' && Number.isInteger(key) ? v[key - 1] : undefined;
    } else if (v !== null && typeof v === 'object') {
      const obj = v as Record<string, unknown>;
      const k = String(key);
      if (root === 'headers' && depth === 0) {
        // Like ngx.req.get_headers(): case-insensitive, and `_` stands for `-` (headers.x_api_key).
        const lc = k.toLowerCase();
        v = Object.hasOwn(obj, lc) ? obj[lc] : Object.hasOwn(obj, lc.replaceAll('_', '-')) ? obj[lc.replaceAll('_', '-')] : undefined;
      } else {
        v = Object.hasOwn(obj, k) ? obj[k] : undefined;
      }
    } else {
      return undefined;
    }
  }
  return v;
}

function renderValue(v: unknown): string {
  if (v === undefined || v === null || v === false) return '';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(renderValue).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
