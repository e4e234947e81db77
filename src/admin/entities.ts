import { randomBytes, randomUUID, X509Certificate, createPrivateKey } from 'node:crypto';
import { UUID_PATTERN } from '../lib/uuid.js';
import { checkHost, checkRoutePath } from '../config/normalize.js';
import { applyOp, removals, type ConfigDocument, type DocOp, type DocPath } from './doc.js';
import { indexOf, type DocIndex, type Entity } from './doc-index.js';
import { TABLES, TABLE_ORDER, type ForeignField, type TableName } from './tables.js';
import type { MetaMap, Timestamps } from './views.js';
import { normalizeTarget } from './views.js';
import { badRequest, fieldViolation, foreignKeyViolation, primaryKeyViolation, referencedBy, schemaViolation, setNested, uniqueViolation } from './errors.js';
import { validateAgainst } from '../config/validate.js';
import { parseAt } from './doc.js';
import { certInfo } from '../tls/x509.js';
import { refKey } from '../lib/ref-key.js';

/**
 * One change to the document in the making: operations are applied copy-on-write as they are
 * made, so each step sees the result of the previous ones, and the list is what workers replay.
 */
export class ChangeContext {
  doc: ConfigDocument;
  readonly ops: DocOp[] = [];
  readonly now: number;
  /** Path of the entity the change is about: validation errors below it become its fields. */
  subject: DocPath | undefined;
  private metaMap: MetaMap;
  private metaCopied = false;

  constructor(doc: ConfigDocument, meta: MetaMap, now: number) {
    this.doc = doc;
    this.metaMap = meta;
    this.now = now;
  }

  get index(): DocIndex {
    return indexOf(this.doc);
  }

  get meta(): MetaMap {
    return this.metaMap;
  }

  get changed(): boolean {
    return this.ops.length > 0;
  }

  apply(op: DocOp): void {
    this.doc = applyOp(this.doc, op);
    this.ops.push(op);
  }

  private writableMeta(): Map<string, Timestamps> {
    if (!this.metaCopied) {
      this.metaMap = new Map(this.metaMap);
      this.metaCopied = true;
    }
    return this.metaMap as Map<string, Timestamps>;
  }

  setMeta(id: string, t: Timestamps): void {
    this.writableMeta().set(id, t);
  }

  deleteMeta(id: string): void {
    if (this.metaMap.has(id)) this.writableMeta().delete(id);
  }
}

/** The parent a nested endpoint names (/services/{s}/routes): the child's foreign key is fixed to it. */
export interface Scope {
  field: ForeignField;
  parent: Entity;
}


const PEM = /-----BEGIN [A-Z0-9 ]+-----[\s\S]+-----END [A-Z0-9 ]+-----/;

/** A request body as an entity: a JSON object, nulls meaning "unset", server-managed fields dropped. */
function cleanBody(table: TableName, body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('the request body must be a JSON (or YAML) object');
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (k === 'created_at' || k === 'updated_at' || k === 'ws_id') continue;
    if (v === null) continue;
    out[k] = v;
  }
  for (const key of Object.keys(TABLES[table].nested)) {
    if (out[key] === undefined) continue;
    if (table === 'certificates' && key === 'snis') continue;
    throw fieldViolation(key, 'unknown field');
  }
  if (out.id !== undefined && (typeof out.id !== 'string' || !UUID_PATTERN.test(out.id))) throw fieldViolation('id', 'expected a valid UUID');
  return out;
}

/** Resolves reference fields to {id}; returns the resolved ids. Missing parents are Kong's foreign key errors. */
function resolveForeign(index: DocIndex, table: TableName, raw: Record<string, unknown>, scope: Scope | undefined, previous: Entity | undefined, keep: (field: ForeignField) => boolean): Partial<Record<ForeignField, string>> {
  const refs: Partial<Record<ForeignField, string>> = {};
  for (const fk of TABLES[table].foreign) {
    if (scope?.field === fk.field) {
      raw[fk.field] = { id: scope.parent.id };
      refs[fk.field] = scope.parent.id;
      continue;
    }
    const value = raw[fk.field];
    if (value === undefined) {
      const kept = keep(fk.field) ? previous?.refs[fk.field] : undefined;
      if (kept) {
        raw[fk.field] = { id: kept };
        refs[fk.field] = kept;
      } else if (fk.required) {
        throw fieldViolation(fk.field, 'required field missing');
      }
      continue;
    }
    const key = refKey(value);
    if (key === undefined) throw fieldViolation(fk.field, 'expected a reference: {"id": ...} or {"name": ...}');
    const parent = index.find(fk.table, key);
    if (!parent) throw foreignKeyViolation(fk.field, typeof value === 'object' ? (value as Record<string, unknown>) : { id: value }, fk.table);
    raw[fk.field] = { id: parent.id };
    refs[fk.field] = parent.id;
  }
  return refs;
}

function checkUnique(index: DocIndex, table: TableName, raw: Record<string, unknown>, refs: Partial<Record<ForeignField, string>>, selfId: string): void {
  const spec = TABLES[table];
  for (const field of spec.unique) {
    const value = raw[field];
    if (value === undefined) continue;
    const pool = spec.uniqueWithin ? (refs[spec.uniqueWithin] ? index.children(table, spec.uniqueWithin, refs[spec.uniqueWithin]!) : []) : index.list(table);
    const norm = (v: unknown) => (table === 'targets' && typeof v === 'string' ? normalizeTarget(v) : v);
    if (pool.some((e) => e.id !== selfId && norm(e.raw[field]) === norm(value))) throw uniqueViolation({ [field]: value });
  }
  if (table === 'plugins') {
    const same = index.list('plugins').find(
      (e) =>
        e.id !== selfId &&
        e.raw.name === raw.name &&
        e.refs.service === refs.service &&
        e.refs.route === refs.route &&
        e.refs.consumer === refs.consumer &&
        (e.raw.instance_name ?? null) === (raw.instance_name ?? null),
    );
    if (same) {
      const ref = (id: string | undefined) => (id ? { id } : null);
      throw uniqueViolation({ consumer: ref(refs.consumer), name: raw.name, route: ref(refs.route), service: ref(refs.service) });
    }
    if (typeof raw.instance_name === 'string' && index.list('plugins').some((e) => e.id !== selfId && e.raw.instance_name === raw.instance_name)) {
      throw uniqueViolation({ instance_name: raw.instance_name });
    }
  }
}

/** Checks for the tables the declarative schema leaves free-form, and values Kong generates. */
function completeEntity(table: TableName, raw: Record<string, unknown>): void {
  const str = (field: string) => {
    const v = raw[field];
    if (v === undefined) throw fieldViolation(field, 'required field missing');
    if (typeof v !== 'string' || !v) throw fieldViolation(field, 'expected a string');
    return v;
  };
  switch (table) {
    case 'keyauth_credentials':
      raw.key ??= randomBytes(16).toString('hex');
      break;
    case 'jwt_secrets':
      raw.key ??= randomBytes(16).toString('hex');
      if (raw.algorithm === undefined || String(raw.algorithm).startsWith('HS')) raw.secret ??= randomBytes(16).toString('hex');
      break;
    case 'hmacauth_credentials':
      raw.secret ??= randomBytes(16).toString('hex');
      break;
    case 'upstreams': {
      const name = str('name');
      if (checkHost(name)) throw fieldViolation('name', 'must be a valid hostname');
      break;
    }
    case 'targets': {
      const target = normalizeTarget(str('target'));
      const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(target);
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535 || checkHost(m[1]!.replace(/^\[|\]$/g, ''))) throw fieldViolation('target', 'Invalid target; not a valid hostname or ip address');
      raw.target = target;
      if (raw.weight !== undefined && (!Number.isInteger(raw.weight) || (raw.weight as number) < 0 || (raw.weight as number) > 65535)) throw fieldViolation('weight', 'value should be between 0 and 65535');
      break;
    }
    case 'certificates': {
      const cert = str('cert');
      const key = str('key');
      try {
        new X509Certificate(cert);
      } catch (err) {
        throw fieldViolation('cert', `invalid certificate: ${(err as Error).message}`);
      }
      try {
        createPrivateKey(key);
      } catch (err) {
        throw fieldViolation('key', `invalid key: ${(err as Error).message}`);
      }
      break;
    }
    case 'ca_certificates': {
      const cert = str('cert');
      if (!PEM.test(cert)) throw fieldViolation('cert', 'invalid certificate: expected PEM');
      // Kong computes cert_digest on every write; the CA checks come with the whole document's validation.
      try {
        raw.cert_digest = certInfo(cert).digest;
      } catch (err) {
        throw fieldViolation('cert', `invalid certificate: ${(err as Error).message}`);
      }
      break;
    }
    case 'snis':
      str('name');
      break;
    default:
  }
}

/**
 * The entity against its own schema before anything else (Kong validates before it looks for
 * duplicates); the whole document is validated again when the change is applied.
 */
function checkSchema(table: TableName, raw: Record<string, unknown>): void {
  const schema = TABLES[table].schema;
  if (!schema) return;
  const errors = validateAgainst(schema, structuredClone(raw), '');
  if (!errors.length) return;
  // With the normalizer's own checks of the fields the schema leaves to it, so all show at once.
  if (table === 'routes') {
    if (Array.isArray(raw.paths)) raw.paths.forEach((p, i) => typeof p === 'string' && checkRoutePath(p) && errors.push(`paths[${i}]: ${checkRoutePath(p)}`));
    if (Array.isArray(raw.hosts)) raw.hosts.forEach((h, i) => typeof h === 'string' && checkHost(h) && errors.push(`hosts[${i}]: ${checkHost(h)}`));
  }
  const fields: Record<string, unknown> = {};
  for (const e of errors) {
    const i = e.indexOf(': ');
    setNested(fields, parseAt(e.slice(0, i)), e.slice(i + 2));
  }
  throw schemaViolation(fields, errors);
}

function isUuid(v: string): boolean {
  return UUID_PATTERN.test(v);
}

/** The fields a nested entity keeps where it is (its children) when its own fields are replaced. */
function nestedChildren(e: Entity): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(TABLES[e.table].nested)) if (e.raw[key] !== undefined) out[key] = e.raw[key];
  return out;
}

/** A certificate's `snis: ["a.example"]` shorthand: replaces its SNIs with these names. */
function replaceSnis(ctx: ChangeContext, certificateId: string, names: unknown): void {
  if (!Array.isArray(names) || names.some((n) => typeof n !== 'string' || !n)) throw fieldViolation('snis', 'expected an array of host names');
  const own = ctx.index.children('snis', 'certificate', certificateId);
  for (const name of names as string[]) {
    const other = ctx.index.list('snis').find((s) => s.raw.name === name && s.refs.certificate !== certificateId);
    if (other) throw uniqueViolation({ name });
  }
  for (const op of removals(own.map((s) => s.path))) ctx.apply(op);
  for (const name of names as string[]) {
    const list = (ctx.doc.snis as unknown[] | undefined) ?? [];
    ctx.apply({ op: 'set', path: ['snis', list.length], value: { id: randomUUID(), name, certificate: { id: certificateId }, created_at: ctx.now, updated_at: ctx.now } });
  }
}

function stamp(ctx: ChangeContext, table: TableName, raw: Record<string, unknown>, id: string, created: number | undefined): void {
  const spec = TABLES[table].docTimestamps;
  const createdAt = created ?? ctx.now;
  if (spec.created) raw.created_at = createdAt;
  if (spec.updated) raw.updated_at = ctx.now;
  if (table === 'plugins') ctx.setMeta(id, { created_at: createdAt, updated_at: ctx.now });
}

/** Appends an entity to its top-level list and returns its path. */
function append(ctx: ChangeContext, table: TableName, raw: Record<string, unknown>): DocPath {
  const list = ctx.doc[table];
  const path: DocPath = [table, Array.isArray(list) ? list.length : 0];
  ctx.apply({ op: 'set', path, value: raw });
  return path;
}

/** POST: a new entity (or PUT of one that does not exist yet, with the id or key from the URL). */
export function createEntity(ctx: ChangeContext, table: TableName, body: unknown, scope?: Scope, fromUrl?: string): Entity {
  const raw = cleanBody(table, body);
  const snis = table === 'certificates' ? raw.snis : undefined;
  delete raw.snis;
  const spec = TABLES[table];
  if (fromUrl !== undefined) {
    if (isUuid(fromUrl)) raw.id = fromUrl;
    else if (spec.endpointKey) raw[spec.endpointKey] = fromUrl;
  }
  const index = ctx.index;
  const id = (raw.id as string | undefined) ?? randomUUID();
  if (index.byId(table, id)) throw primaryKeyViolation(id);
  const refs = resolveForeign(index, table, raw, scope, undefined, () => false);
  completeEntity(table, raw);
  checkSchema(table, raw);
  checkUnique(index, table, raw, refs, id);
  const entity: Record<string, unknown> = { id, ...raw };
  stamp(ctx, table, entity, id, undefined);
  const path = append(ctx, table, entity);
  ctx.subject = path;
  if (snis !== undefined) replaceSnis(ctx, id, snis);
  return ctx.index.byId(table, id)!;
}

/** Keys Kong merges on PATCH instead of replacing (records); everything else is replaced. */
const MERGED = new Set(['config', 'healthchecks']);

function deepMerge(base: unknown, patch: unknown): unknown {
  if (patch === null) return undefined;
  if (!patch || typeof patch !== 'object' || Array.isArray(patch) || !base || typeof base !== 'object' || Array.isArray(base)) return patch;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    const merged = deepMerge(out[k], v);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  return out;
}

/** A service's url as its parts, so a PATCH of one part does not collide with the url. */
function splitUrl(raw: Record<string, unknown>): void {
  if (typeof raw.url !== 'string') return;
  try {
    const u = new URL(raw.url);
    raw.protocol = u.protocol.replace(/:$/, '');
    raw.host = u.hostname.replace(/^\[|\]$/g, '');
    if (u.port) raw.port = Number(u.port);
    if (raw.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '')) raw.path = u.pathname;
    delete raw.url;
  } catch {
    // An invalid url stays and is reported by validation.
  }
}

/** PATCH (merge) or PUT (replace) of an existing entity. */
export function updateEntity(ctx: ChangeContext, e: Entity, body: unknown, mode: 'patch' | 'put', scope?: Scope, fromUrl?: string): Entity {
  const table = e.table;
  const spec = TABLES[table];
  const patch = cleanBody(table, body);
  const rawBody = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
  const snis = table === 'certificates' ? patch.snis : undefined;
  delete patch.snis;
  delete patch.id;
  let raw: Record<string, unknown>;
  if (mode === 'put') {
    raw = { ...patch };
    if (fromUrl !== undefined && !isUuid(fromUrl) && spec.endpointKey) raw[spec.endpointKey] = fromUrl;
  } else {
    raw = { ...e.raw };
    for (const key of Object.keys(spec.nested)) delete raw[key];
    if (table === 'services') {
      if (patch.url !== undefined) for (const k of ['protocol', 'host', 'port', 'path']) delete raw[k];
      else if (['protocol', 'host', 'port', 'path'].some((k) => k in rawBody)) splitUrl(raw);
    }
    for (const [k, v] of Object.entries(rawBody)) {
      if (k === 'id' || k === 'created_at' || k === 'updated_at' || k === 'snis') continue;
      if (v === null) delete raw[k];
    }
    for (const [k, v] of Object.entries(patch)) {
      if (MERGED.has(k)) raw[k] = deepMerge(raw[k], v);
      else raw[k] = v;
    }
  }
  // A reference left out of a PATCH keeps the current parent (null unsets it); PUT replaces all.
  const nulled = new Set(Object.keys(rawBody).filter((k) => rawBody[k] === null));
  const index = ctx.index;
  const refs = resolveForeign(index, table, raw, scope, e, (field) => mode === 'patch' && !nulled.has(field));
  completeEntity(table, raw);
  checkSchema(table, raw);
  checkUnique(index, table, raw, refs, e.id);
  const created = typeof e.raw.created_at === 'number' ? e.raw.created_at : ctx.meta.get(e.id)?.created_at;
  const entity: Record<string, unknown> = { id: e.id, ...raw, ...nestedChildren(e) };
  stamp(ctx, table, entity, e.id, created);
  const stays = e.nestedUnder !== undefined && refs[e.nestedUnder] === e.refs[e.nestedUnder];
  if (e.nestedUnder === undefined || stays) {
    // In place; a nested entity does not repeat the parent it sits in.
    if (e.nestedUnder) delete entity[e.nestedUnder];
    ctx.apply({ op: 'set', path: e.path, value: entity });
    ctx.subject = e.path;
  } else {
    // Moved to another parent: out of the old one, into the top-level list with a reference.
    ctx.apply({ op: 'remove', path: e.path });
    ctx.subject = append(ctx, table, entity);
  }
  if (snis !== undefined) replaceSnis(ctx, e.id, snis);
  return ctx.index.byId(table, e.id)!;
}

/** Everything that goes when `e` goes (Kong's cascades), or Kong's error when something still refers to it. */
function cascade(index: DocIndex, e: Entity, out: Map<string, Entity>): void {
  for (const t of TABLE_ORDER) {
    for (const fk of TABLES[t].foreign) {
      if (fk.table !== e.table) continue;
      const children = index.children(t, fk.field, e.id);
      if (!children.length) continue;
      if (fk.onDelete === 'restrict') throw referencedBy(t, e.table);
      for (const c of children) {
        if (out.has(`${c.table}:${c.id}`)) continue;
        out.set(`${c.table}:${c.id}`, c);
        cascade(index, c, out);
      }
    }
  }
}

export function deleteEntity(ctx: ChangeContext, e: Entity): void {
  const gone = new Map<string, Entity>([[`${e.table}:${e.id}`, e]]);
  cascade(ctx.index, e, gone);
  for (const op of removals([...gone.values()].map((g) => g.path))) ctx.apply(op);
  for (const g of gone.values()) ctx.deleteMeta(g.id);
  ctx.subject = undefined;
}

/** PUT: replace when it exists (by id or endpoint key, within the scope), create otherwise. */
export function upsertEntity(ctx: ChangeContext, table: TableName, key: string, body: unknown, scope?: Scope): Entity {
  const existing = scope ? ctx.index.findWithin(table, key, scope.field, scope.parent.id) : ctx.index.find(table, key);
  if (existing) return updateEntity(ctx, existing, body, 'put', scope, key);
  if (scope && ctx.index.byId(table, key)) throw primaryKeyViolation(key);
  return createEntity(ctx, table, body, scope, key);
}
