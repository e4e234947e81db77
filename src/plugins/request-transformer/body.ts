/**
 * request-transformer body operations (Kong's transform_{json,url_encoded,multipart}_body).
 * Each returns the new body, or undefined when the body is to be left as it is.
 */
import { decodeArgs, encodeArgs, type ArgMap, type ArgValue } from './args.js';
import { boundaryOf, MultipartBody } from './multipart.js';
import { isPlainObject, luaAppend, luaTruthy } from './pairs.js';
import type { CompiledTemplate, TemplateScope } from './template.js';

export interface ValueOp {
  name: string;
  value: CompiledTemplate;
}

/** The operations on one target (headers, query string or body), in Kong's order. */
export interface Ops {
  remove: string[];
  /** `value` renders the new name. */
  rename: ValueOp[];
  replace: ValueOp[];
  add: ValueOp[];
  append: ValueOp[];
}

export function hasOps(ops: Ops): boolean {
  return ops.remove.length + ops.rename.length + ops.replace.length + ops.add.length + ops.append.length > 0;
}

export type BodyKind = 'json' | 'multipart' | 'form';

/** Which body Kong handles: the Content-Type *contains* one of three types (checked in this order). */
export function bodyKind(contentType: string | undefined): BodyKind | undefined {
  if (!contentType) return undefined;
  const ct = contentType.toLowerCase();
  if (ct.includes('application/json')) return 'json';
  if (ct.includes('multipart/form-data')) return 'multipart';
  if (ct.includes('application/x-www-form-urlencoded')) return 'form';
  return undefined;
}

export function transformBody(
  kind: BodyKind,
  ops: Ops,
  body: Buffer,
  contentType: string,
  scope: TemplateScope,
): Buffer | undefined {
  switch (kind) {
    case 'json':
      return transformJsonBody(ops, body, scope);
    case 'form':
      return transformFormBody(ops, body, scope);
    case 'multipart':
      return transformMultipartBody(ops, body, contentType, scope);
  }
}

/**
 * Top-level keys only; values written are strings. remove/rename/replace need a non-empty body;
 * add/append also work on an empty one. A body that does not parse (or is not an object) is left alone.
 */
export function transformJsonBody(ops: Ops, body: Buffer, scope: TemplateScope): Buffer | undefined {
  const nonEmpty = body.length > 0;
  let params: Record<string, unknown>;
  if (nonEmpty) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return undefined;
    }
    if (!isPlainObject(parsed)) return undefined;
    params = parsed;
  } else {
    params = {};
  }
  let changed = false;
  if (nonEmpty) {
    for (const name of ops.remove) {
      delete params[name];
      changed = true;
    }
    for (const op of ops.rename) {
      move(params, op.name, op.value.render(scope));
      changed = true;
    }
    for (const op of ops.replace) {
      if (luaTruthy(own(params, op.name))) {
        put(params, op.name, op.value.render(scope));
        changed = true;
      }
    }
  }
  for (const op of ops.add) {
    if (!luaTruthy(own(params, op.name))) {
      put(params, op.name, op.value.render(scope));
      changed = true;
    }
  }
  for (const op of ops.append) {
    put(params, op.name, luaAppend(own(params, op.name), op.value.render(scope)));
    changed = true;
  }
  return changed ? Buffer.from(JSON.stringify(params)) : undefined;
}

export function transformFormBody(ops: Ops, body: Buffer, scope: TemplateScope): Buffer | undefined {
  const nonEmpty = body.length > 0;
  const params = decodeArgs(body.toString('utf8'));
  let changed = false;
  if (nonEmpty) {
    if (ops.remove.length) changed = true;
    for (const name of ops.remove) params.delete(name);
    if (ops.rename.length) changed = true;
    for (const op of ops.rename) moveArg(params, op.name, op.value.render(scope));
    for (const op of ops.replace) {
      if (params.has(op.name)) {
        params.set(op.name, op.value.render(scope));
        changed = true;
      }
    }
  }
  changed = applyAddAppend(params, ops, scope, (p, name) => p.has(name)) || changed;
  return changed ? Buffer.from(encodeArgs(params)) : undefined;
}

/** Multipart: rename runs before remove, replace moves the field to the end, there is no append. */
export function transformMultipartBody(
  ops: Ops,
  body: Buffer,
  contentType: string,
  scope: TemplateScope,
): Buffer | undefined {
  const boundary = boundaryOf(contentType);
  if (!boundary) return undefined;
  const nonEmpty = body.length > 0;
  const form = nonEmpty ? MultipartBody.parse(body, boundary) : MultipartBody.empty(boundary);
  let changed = false;
  if (nonEmpty) {
    for (const op of ops.rename) {
      const value = form.get(op.name);
      if (value !== undefined) {
        form.setSimple(op.value.render(scope), value);
        form.delete(op.name);
        changed = true;
      }
    }
    for (const name of ops.remove) {
      form.delete(name);
      changed = true;
    }
    for (const op of ops.replace) {
      if (form.get(op.name) !== undefined) {
        form.delete(op.name);
        form.setSimple(op.name, op.value.render(scope));
        changed = true;
      }
    }
  }
  for (const op of ops.add) {
    if (form.get(op.name) === undefined) {
      form.setSimple(op.name, op.value.render(scope));
      changed = true;
    }
  }
  return changed ? form.toBuffer() : undefined;
}

/** Query string operations (Kong's transform_querystrings); the caller re-encodes the map. */
export function transformArgs(ops: Ops, args: ArgMap, scope: TemplateScope): void {
  for (const name of ops.remove) args.delete(name);
  for (const op of ops.rename) moveArg(args, op.name, op.value.render(scope));
  for (const op of ops.replace) if (args.has(op.name)) args.set(op.name, op.value.render(scope));
  applyAddAppend(args, ops, scope, (a, name) => a.has(name));
}

function applyAddAppend(
  args: ArgMap,
  ops: Ops,
  scope: TemplateScope,
  present: (args: ArgMap, name: string) => boolean,
): boolean {
  let changed = false;
  for (const op of ops.add) {
    if (!present(args, op.name)) {
      args.set(op.name, op.value.render(scope));
      changed = true;
    }
  }
  for (const op of ops.append) {
    const prev = args.get(op.name);
    const next = luaAppend(Array.isArray(prev) ? [...prev] : prev, op.value.render(scope)) as ArgValue;
    args.set(op.name, next);
    changed = true;
  }
  return changed;
}

/** Assignment that also works for a key such as "__proto__". */
export function put(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

// Kong's rename is `t[new] = t[old]; t[old] = nil`: when the old key is absent the new one is cleared.
function move(obj: Record<string, unknown>, from: string, to: string): void {
  if (from === to) return;
  const value = own(obj, from);
  if (value === undefined) delete obj[to];
  else put(obj, to, value);
  delete obj[from];
}

function moveArg(args: ArgMap, from: string, to: string): void {
  if (from === to) return;
  const value = args.get(from);
  if (value === undefined) args.delete(to);
  else args.set(to, value);
  args.delete(from);
}
