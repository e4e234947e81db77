/** response-transformer operations on headers and on a JSON body, as pure functions over precompiled ops. */
import type { HeaderMap } from '../../pipeline/exchange.js';
import { put } from '../request-transformer/body.js';
import { isPlainObject, luaAppend, luaTruthy, parsePair } from '../request-transformer/pairs.js';
import type { ResponseTransformerConfig } from './schema.js';

export interface HeaderOps {
  remove: string[];
  rename: { from: string; to: string }[];
  replace: { name: string; value: string }[];
  add: { name: string; value: string }[];
  append: { name: string; value: string }[];
}

export interface JsonOps {
  remove: string[];
  rename: { from: string; to: string }[];
  /** `value` already converted to its json_type; entries whose value does not convert are dropped. */
  replace: { name: string; value: unknown }[];
  add: { name: string; value: unknown }[];
  append: { name: string; value: unknown }[];
}

type JsonType = 'boolean' | 'number' | 'string';

export function compileHeaderOps(config: ResponseTransformerConfig): HeaderOps {
  const pairs = (entries: readonly string[]) =>
    entries.map((e) => parsePair(e)!).map((p) => ({ name: p.name.toLowerCase(), value: p.value }));
  return {
    remove: config.remove.headers.map((e) => (parsePair(e)?.name ?? e).toLowerCase()),
    rename: pairs(config.rename.headers).map((p) => ({ from: p.name, to: p.value.toLowerCase() })),
    replace: pairs(config.replace.headers),
    add: pairs(config.add.headers),
    append: pairs(config.append.headers),
  };
}

export function compileJsonOps(config: ResponseTransformerConfig): JsonOps {
  const typed = (entries: readonly string[], types: readonly JsonType[]) =>
    entries.flatMap((entry, i) => {
      const pair = parsePair(entry)!;
      const value = jsonValue(pair.value, types[i]);
      return value === undefined ? [] : [{ name: pair.name, value }];
    });
  return {
    remove: config.remove.json.map((e) => parsePair(e)?.name ?? e),
    rename: config.rename.json.map((e) => parsePair(e)!).map((p) => ({ from: p.name, to: p.value })),
    replace: typed(config.replace.json, config.replace.json_types),
    add: typed(config.add.json, config.add.json_types),
    append: typed(config.append.json, config.append.json_types),
  };
}

export function hasJsonOps(ops: JsonOps): boolean {
  return ops.remove.length + ops.rename.length + ops.replace.length + ops.add.length + ops.append.length > 0;
}

/**
 * Kong's json_value: the string goes through cjson.encode, loses its quotes, and gets `\"` and `\/`
 * unescaped (so a backslash comes out doubled, as in Kong); then the json_type conversion.
 * undefined means "no value" (Kong skips the entry), e.g. a number that does not parse.
 */
export function jsonValue(raw: string, type: JsonType | undefined): unknown {
  const v = JSON.stringify(raw).slice(1, -1).replaceAll('\\"', '"');
  if (type === 'number') return luaToNumber(v);
  if (type === 'boolean') return v === 'true';
  return v;
}

/** Lua's tonumber for strings: decimal (with exponent) or hexadecimal, surrounding whitespace allowed. */
export function luaToNumber(s: string): number | undefined {
  const t = s.trim();
  let n: number;
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) n = Number(t);
  else if (/^[+-]?0[xX][0-9a-fA-F]+$/.test(t)) n = (t.startsWith('-') ? -1 : 1) * parseInt(t.replace(/^[+-]/, ''), 16);
  else return undefined;
  return Number.isFinite(n) ? n : undefined;
}

/**
 * remove, rename, replace, add, append. Conditions look at the headers as they were before any
 * operation (Kong checks a copy taken before it starts), append adds another header line.
 */
export function transformHeaders(ops: HeaderOps, h: HeaderMap): void {
  const before: HeaderMap = { ...h };
  for (const name of ops.remove) delete h[name];
  for (const { from, to } of ops.rename) {
    const value = before[from];
    if (value === undefined || to === from) continue;
    h[to] = value;
    delete h[from];
  }
  for (const { name, value } of ops.replace) if (before[name] !== undefined) h[name] = value;
  for (const { name, value } of ops.add) if (before[name] === undefined) h[name] = value;
  for (const { name, value } of ops.append) {
    const prev = h[name];
    h[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
}

/** Returns the new body, or undefined when the body is not a JSON object (left unchanged). */
export function transformJson(ops: JsonOps, body: Buffer): Buffer | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isPlainObject(json)) return undefined;
  const own = (k: string) => (Object.hasOwn(json, k) ? json[k] : undefined);
  for (const name of ops.remove) delete json[name];
  for (const { from, to } of ops.rename) {
    const value = own(from);
    if (value === undefined || to === from) continue;
    put(json, to, value);
    delete json[from];
  }
  for (const { name, value } of ops.replace) if (luaTruthy(own(name))) put(json, name, value);
  for (const { name, value } of ops.add) if (!luaTruthy(own(name))) put(json, name, value);
  for (const { name, value } of ops.append) put(json, name, luaAppend(own(name), value));
  return Buffer.from(JSON.stringify(json));
}

/** Kong's is_json_body: any comma-separated media type that is application/json, parameters allowed. */
export function isJsonContentType(contentType: string | string[] | undefined): boolean {
  if (contentType === undefined) return false;
  const value = Array.isArray(contentType) ? contentType.join(',') : contentType;
  return value.split(',').some((ct) => ct.split(';')[0]!.trim().toLowerCase() === 'application/json');
}
