import { validateAgainst } from '../config/validate.js';
import type { PluginDefinition } from '../plugins/types.js';
import type { DocIndex, Entity } from './doc-index.js';
import { TABLES, type TableName } from './tables.js';

/** Timestamps of entities whose schema has no place for them (plugins): id -> seconds. */
export type Timestamps = { created_at: number; updated_at: number };
export type MetaMap = ReadonlyMap<string, Timestamps>;

export interface ViewContext {
  index: DocIndex;
  meta: MetaMap;
  plugins: ReadonlyMap<string, PluginDefinition<any>>;
  /** Shown for entities that carry no timestamp (loaded from a file that had none). */
  loadedAt: number;
}

const DEFAULT_PORTS: Record<string, number> = { http: 80, https: 443, grpc: 80, grpcs: 443, ws: 80, wss: 443, tcp: 80, tls: 443 };

/** A service's url shorthand as Kong shows it: protocol, host, port and path (never url). */
function expandUrl(view: Record<string, unknown>): void {
  const url = view.url;
  delete view.url;
  if (typeof url !== 'string') return;
  try {
    const u = new URL(url);
    const protocol = u.protocol.replace(/:$/, '');
    view.protocol = protocol;
    view.host = u.hostname.replace(/^\[|\]$/g, '');
    view.port = u.port ? Number(u.port) : (DEFAULT_PORTS[protocol] ?? 80);
    view.path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '') ? u.pathname : null;
  } catch {
    view.url = url;
  }
}

function withDefaults(table: TableName, raw: Record<string, unknown>): Record<string, unknown> {
  const view = structuredClone(raw);
  for (const key of Object.keys(TABLES[table].nested)) delete view[key];
  const schema = TABLES[table].schema;
  // Only to fill defaults: the entity was validated whole when it was applied.
  if (schema) validateAgainst(schema, view, '');
  return view;
}

const UPSTREAM_DEFAULTS = { algorithm: 'round-robin', hash_on: 'none', hash_fallback: 'none', hash_on_cookie_path: '/', slots: 10000, use_srv_name: false };

/** "host" -> "host:8000" (Kong's default target port). */
export function normalizeTarget(target: string): string {
  if (/^\[[^\]]+\]:\d+$/.test(target) || /^[^:[\]]+:\d+$/.test(target)) return target;
  if (target.includes(':') && !target.startsWith('[')) return `[${target}]:8000`;
  return `${target}:8000`;
}

/** An entity as the admin API shows it (Kong's shape): defaults filled, references as {id}, unset fields null. */
export function viewOf(e: Entity, ctx: ViewContext): Record<string, unknown> {
  const spec = TABLES[e.table];
  const view = withDefaults(e.table, e.raw);
  view.id = e.id;
  if (e.table === 'services') {
    expandUrl(view);
    view.protocol ??= 'http';
    view.port ??= DEFAULT_PORTS[String(view.protocol)] ?? 80;
  }
  if (e.table === 'plugins') {
    const def = ctx.plugins.get(String(view.name));
    const config = structuredClone((view.config as Record<string, unknown> | undefined) ?? {});
    if (def) validateAgainst(def.schema, config, '');
    view.config = config;
    view.protocols ??= ['grpc', 'grpcs', 'http', 'https'];
  }
  if (e.table === 'upstreams') {
    for (const [k, v] of Object.entries(UPSTREAM_DEFAULTS)) view[k] ??= v;
  }
  if (e.table === 'targets') {
    if (typeof view.target === 'string') view.target = normalizeTarget(view.target);
    view.weight ??= 100;
  }
  if (e.table === 'certificates') {
    view.snis = ctx.index.children('snis', 'certificate', e.id).map((s) => s.raw.name);
  }
  for (const fk of spec.foreign) {
    const id = e.refs[fk.field];
    view[fk.field] = id ? { id } : null;
  }
  for (const field of spec.nullable) if (view[field] === undefined) view[field] = null;
  const stamps = ctx.meta.get(e.id);
  const created = typeof e.raw.created_at === 'number' ? e.raw.created_at : (stamps?.created_at ?? ctx.loadedAt);
  view.created_at = created;
  if (spec.docTimestamps.updated || e.table === 'plugins') view.updated_at = typeof e.raw.updated_at === 'number' ? e.raw.updated_at : (stamps?.updated_at ?? created);
  return view;
}

/** The fields of a view in a stable order: id first, timestamps last (JSON keeps insertion order). */
export function ordered(view: Record<string, unknown>): Record<string, unknown> {
  const { id, created_at, updated_at, ...rest } = view;
  const out: Record<string, unknown> = { id };
  for (const k of Object.keys(rest).sort()) out[k] = rest[k];
  out.created_at = created_at;
  if (updated_at !== undefined) out.updated_at = updated_at;
  return out;
}

export function present(e: Entity, ctx: ViewContext): Record<string, unknown> {
  return ordered(viewOf(e, ctx));
}
