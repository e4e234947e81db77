import { normalizeConfig, type NormalConfig } from '../config/normalize.js';
import type { PluginDefinition } from '../plugins/types.js';
import { declarativeId } from '../lib/uuid.js';
import { formatAt, getAt, parseAt, type ConfigDocument, type DocPath } from './doc.js';
import type { TableName } from './tables.js';
import type { MetaMap, Timestamps } from './views.js';

/** Fields the normalizer generates when a credential has none (Kong does the same). */
const GENERATED: Partial<Record<string, string[]>> = {
  keyauth_credentials: ['key'],
  jwt_secrets: ['key', 'secret'],
  hmacauth_credentials: ['secret'],
};

/** The entity at `where` in our private copy, given its id (written first, as Kong lists it). */
function at(doc: ConfigDocument, where: string, id: string): Record<string, unknown> {
  const path = parseAt(where);
  const parent = getAt(doc, path.slice(0, -1)) as Record<string | number, unknown>;
  const raw = parent[path[path.length - 1]!] as Record<string, unknown>;
  if (typeof raw.id === 'string') return raw;
  const pinned = { id, ...raw };
  parent[path[path.length - 1]!] = pinned;
  return pinned;
}

function loose(doc: ConfigDocument, table: TableName): { path: DocPath; raw: Record<string, unknown>; parentId?: string }[] {
  const out: { path: DocPath; raw: Record<string, unknown>; parentId?: string }[] = [];
  const list = doc[table];
  if (Array.isArray(list)) list.forEach((raw, i) => raw && typeof raw === 'object' && out.push({ path: [table, i], raw: raw as Record<string, unknown> }));
  return out;
}

export interface Pinned {
  doc: ConfigDocument;
  meta: MetaMap;
  normal: NormalConfig;
}

/**
 * Validates a whole document (the same normalizeConfig as a file load) and returns a copy in which
 * every entity carries its id, its resolved references as {id} and the secrets the normalizer
 * generated. From then on ids are stable whatever is added, moved or renamed, and
 * an entity can be found by id alone. Throws ConfigError naming every bad field.
 */
export function pinDocument(input: unknown, plugins: ReadonlyMap<string, PluginDefinition<any>>, now: number, previousMeta?: MetaMap): Pinned {
  const normal = normalizeConfig(input, plugins);
  const doc = structuredClone(input) as ConfigDocument;
  // Timestamps are not added: entities loaded from a file show the load time (as Kong DB-less
  // does), and two more fields on each of 10,000 routes cost a fifth of every validation.
  const meta = new Map<string, Timestamps>();

  for (const s of normal.services) at(doc, s.at, s.id);
  for (const r of normal.routes) {
    const raw = at(doc, r.at, r.id);
    if (raw.service !== undefined && r.serviceId) raw.service = { id: r.serviceId };
  }
  for (const c of normal.consumers) at(doc, c.at, c.id);
  for (const c of normal.credentials) {
    const raw = at(doc, c.at, c.id);
    for (const f of GENERATED[c.type] ?? []) if (raw[f] === undefined && c.fields[f] !== undefined) raw[f] = c.fields[f];
    if (raw.consumer !== undefined) raw.consumer = { id: c.consumerId };
  }
  for (const p of normal.plugins) {
    const raw = at(doc, p.at, p.id);
    if (raw.service !== undefined && p.serviceId) raw.service = { id: p.serviceId };
    if (raw.route !== undefined && p.routeId) raw.route = { id: p.routeId };
    if (raw.consumer !== undefined && p.consumerId) raw.consumer = { id: p.consumerId };
    meta.set(String(raw.id), previousMeta?.get(String(raw.id)) ?? { created_at: now, updated_at: now });
  }

  for (const u of normal.upstreams) {
    at(doc, u.at, u.id);
    for (const t of u.targets) {
      const raw = at(doc, t.at, t.id);
      if (raw.upstream !== undefined) raw.upstream = { id: u.id };
    }
  }

  // Certificates and SNIs: ids and resolved references (their checks are the normalizer's).
  const claim = (table: TableName, path: DocPath, raw: Record<string, unknown>, key: string | undefined) => {
    if (typeof raw.id !== 'string') raw.id = declarativeId(table, key ?? formatAt(path));
  };
  const certificateIds = new Set<string>();
  for (const c of loose(doc, 'certificates')) {
    claim('certificates', c.path, c.raw, undefined);
    certificateIds.add(String(c.raw.id));
    const snis = c.raw.snis;
    if (Array.isArray(snis)) {
      snis.forEach((s, j) => {
        // Kong accepts a certificate's SNIs as plain names too.
        if (typeof s === 'string') (snis as unknown[])[j] = s = { name: s };
        if (s && typeof s === 'object') claim('snis', [...c.path, 'snis', j], s as Record<string, unknown>, String((s as { name?: unknown }).name));
      });
    }
  }
  for (const s of loose(doc, 'snis')) {
    const ref = s.raw.certificate;
    const key = typeof ref === 'string' ? ref : ref && typeof ref === 'object' ? (ref as { id?: string }).id : undefined;
    if (key && certificateIds.has(key)) s.raw.certificate = { id: key };
    claim('snis', s.path, s.raw, String(s.raw.name));
  }
  // cert_digest is generated when absent (Kong computes it on every write).
  const caDigests = new Map(normal.caCertificates.map((c) => [c.id, c.digest]));
  for (const c of loose(doc, 'ca_certificates')) {
    claim('ca_certificates', c.path, c.raw, undefined);
    const digest = caDigests.get(String(c.raw.id));
    if (c.raw.cert_digest === undefined && digest !== undefined) c.raw.cert_digest = digest;
  }
  return { doc, meta, normal };
}
