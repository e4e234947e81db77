import { ConfigError } from '../lib/errors.js';
import { parseConfigText } from '../config/load.js';
import { PLAIN_PARAMS, hashPassword, BCRYPT_HASH, SCRYPT_HASH } from '../plugins/basic-auth/passwords.js';
import { ServiceEntity, RouteEntity, ConsumerEntity, PluginEntity } from '../config/schema.js';
import { AdminError, badRequest, methodNotAllowed, notFound, operationUnsupported } from './errors.js';
import { createEntity, deleteEntity, updateEntity, upsertEntity, type ChangeContext, type Scope } from './entities.js';
import { indexOf, type DocIndex, type Entity } from './doc-index.js';
import { declarativeError, hashDocument, type ConfigManager } from './manager.js';
import { paginate } from './pagination.js';
import { normalizeTarget, present, type ViewContext } from './views.js';
import { BY_PATH, CHILD_PATHS, TABLES, foreignFieldTo, type ForeignField, type Table, type TableName } from './tables.js';
import { parseRouteQuery } from './explain.js';
import { toYaml } from './persist.js';
import type { AdminTarget } from './target.js';

export interface ApiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Parsed JSON/YAML body (undefined when none). */
  body: unknown;
  /** The body as received (POST /config hashes it). */
  text: string;
}

export interface ApiResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

const ok = (body: unknown, status = 200): ApiResponse => ({ status, body });

/** Kong's message verbs for refused writes. */
const VERBS: Record<string, string> = { POST: 'create', PUT: 'create or update', PATCH: 'update', DELETE: 'remove' };

function readOnlyRefusal(method: string, table: string, byKey?: string): AdminError {
  return operationUnsupported(VERBS[method] ?? 'change', table, byKey);
}

const TABLE_SCHEMAS: Record<string, unknown> = { services: ServiceEntity, routes: RouteEntity, consumers: ConsumerEntity, plugins: PluginEntity };

/**
 * The admin API's endpoints besides the plugin-owned ones: returns undefined for a path it does
 * not know (the server then offers the request to the plugins, then answers 404).
 */
export async function handleApi(req: ApiRequest, target: AdminTarget): Promise<ApiResponse | undefined> {
  const { method, path } = req;
  const seg = path.split('/').filter(Boolean).map((s) => decodeURIComponent(s));
  const manager = target.manager;

  if (path === '/') return method === 'GET' ? ok(target.info()) : fail(methodNotAllowed());
  if (path === '/status') return method === 'GET' ? ok(await target.status()) : fail(methodNotAllowed());
  if (path === '/config') return configEndpoint(req, target);
  if (seg[0] === 'schemas') return schemaEndpoint(req, seg, manager?.plugins);
  if (seg[0] === 'plugins' && seg[1] === 'schema' && seg.length === 3) return schemaEndpoint(req, ['schemas', 'plugins', seg[2]!], manager?.plugins);
  if (path === '/plugins/enabled' && manager) return method === 'GET' ? ok({ enabled_plugins: [...manager.plugins.keys()].sort() }) : fail(methodNotAllowed());
  if (path === '/debug/route') {
    if (method !== 'GET') return fail(methodNotAllowed());
    if (!target.explainRoute) return undefined;
    return ok(await target.explainRoute(parseRouteQuery(req.query)));
  }
  if (path === '/cluster/nodes') {
    if (method !== 'GET') return fail(methodNotAllowed());
    if (!target.clusterNodes) return ok({ message: 'not running in cluster mode (--cluster-redis)', data: [], next: null }, 404);
    return ok({ data: await target.clusterNodes(), next: null });
  }
  if (!manager) return undefined;
  if (seg[0] === 'upstreams' && isHealthPath(seg)) return upstreamHealth(req, seg, target, manager);
  const table = seg[0] ? BY_PATH.get(seg[0]) : undefined;
  if (!table || seg.length > 4) return undefined;
  return entityEndpoint(req, manager, table, seg);
}

function fail(err: AdminError): ApiResponse {
  return { status: err.status, body: err.body, headers: err.headers };
}

async function configEndpoint(req: ApiRequest, target: AdminTarget): Promise<ApiResponse> {
  const manager = target.manager;
  if (req.method === 'GET') {
    const doc = manager ? manager.state.doc : target.exportConfig();
    // Kong answers {"config": "<yaml text>"}; the document itself is the default here.
    if (req.query.get('format') === 'yaml') return ok({ config: toYaml(doc as Record<string, unknown>) });
    return ok({ config: doc });
  }
  if (req.method !== 'POST') return fail(methodNotAllowed());
  if (manager?.readOnly) return fail(operationUnsupported('replace', 'config'));
  if (!req.text.trim()) return fail(badRequest('expected a declarative configuration'));
  let doc = req.body;
  try {
    if (doc && typeof doc === 'object' && typeof (doc as { config?: unknown }).config === 'string') doc = parseConfigText((doc as { config: string }).config, 'config');
  } catch (err) {
    if (err instanceof ConfigError) return fail(declarativeError(err.errors));
    throw err;
  }
  if (!manager) {
    try {
      await target.applyConfig(doc);
    } catch (err) {
      if (err instanceof ConfigError) return fail(declarativeError(err.errors));
      throw err;
    }
    return ok(await target.status(), 201);
  }
  const flatten = /^(1|true|on|yes)$/i.test(req.query.get('flatten_errors') ?? '') ? { doc } : undefined;
  const sourceHash = hashDocument(doc);
  const check = req.query.get('check_hash');
  if (check && /^(1|true|on|yes)$/i.test(check) && manager.state.sourceHash === sourceHash) return { status: 304 };
  try {
    const state = await manager.replace(doc, sourceHash);
    // Kong answers with the loaded entities keyed by table, then by id.
    const vctx = manager.viewContext(state);
    const out: Record<string, Record<string, unknown>> = {};
    for (const t of Object.values(TABLES)) {
      const list = vctx.index.list(t.name);
      if (!list.length) continue;
      const byId: Record<string, unknown> = {};
      for (const e of list) byId[e.id] = present(e, vctx);
      out[t.name] = byId;
    }
    return ok(out, 201);
  } catch (err) {
    if (err instanceof ConfigError) return fail(declarativeError(err.errors, flatten));
    throw err;
  }
}

function schemaEndpoint(req: ApiRequest, seg: string[], plugins: ConfigManager['plugins'] | undefined): ApiResponse | undefined {
  if (req.method !== 'GET') return fail(methodNotAllowed());
  if (seg.length === 3 && seg[1] === 'plugins') {
    const def = plugins?.get(seg[2]!);
    if (!def) return ok({ message: `No plugin named '${seg[2]}'` }, 404);
    return ok({ name: def.name, priority: def.priority, fields: { config: def.schema } });
  }
  if (seg.length === 2 && TABLE_SCHEMAS[seg[1]!]) return ok(TABLE_SCHEMAS[seg[1]!]);
  return seg.length === 2 ? fail(notFound()) : undefined;
}

/** Kong's endpoint key for a table in messages ("by 'name'"). */
function byKey(table: Table, key: string): string | undefined {
  return table.endpointKey && !/^[0-9a-f-]{36}$/i.test(key) ? table.endpointKey : undefined;
}

/** Passwords sent in clear are stored hashed (scrypt), as Kong stores them hashed. */
async function hashPasswords(table: TableName, body: unknown): Promise<unknown> {
  if (table !== 'basicauth_credentials' || !body || typeof body !== 'object') return body;
  const pw = (body as { password?: unknown }).password;
  if (typeof pw !== 'string' || !pw || BCRYPT_HASH.test(pw) || SCRYPT_HASH.test(pw) || /^\$(2[aby]|scrypt)\$/.test(pw)) return body;
  return { ...(body as object), password: await hashPassword(pw, PLAIN_PARAMS) };
}

function listPage(entities: readonly Entity[], req: ApiRequest, vctx: ViewContext, sorted: boolean): ApiResponse {
  const list = sorted ? entities : [...entities].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const page = paginate(list, req.query, req.path);
  const body: Record<string, unknown> = { data: page.data.map((e) => present(e, vctx)), next: page.next };
  if (page.offset !== undefined) body.offset = page.offset;
  return ok(body);
}

interface Located {
  /** The entity the URL names (undefined when it does not exist). */
  entity: Entity | undefined;
  scope: Scope | undefined;
}

async function entityEndpoint(req: ApiRequest, manager: ConfigManager, table: Table, seg: string[]): Promise<ApiResponse | undefined> {
  const { method } = req;
  const write = method !== 'GET' && method !== 'HEAD';
  const state = manager.state;
  const index = indexOf(state.doc);
  const vctx = manager.viewContext(state);

  // /services
  if (seg.length === 1) {
    if (method === 'GET') return listPage(index.sortedList(table.name), req, vctx, true);
    if (method !== 'POST') return fail(methodNotAllowed());
    if (manager.readOnly) return fail(readOnlyRefusal(method, table.name));
    const body = await hashPasswords(table.name, req.body);
    return ok(await manager.update((ctx) => present(createEntity(ctx, table.name, body), viewOf(manager, ctx))), 201);
  }

  const key = seg[1]!;
  // /services/{s}
  if (seg.length === 2) {
    if (write && manager.readOnly) return fail(readOnlyRefusal(method, table.name, byKey(table, key)));
    switch (method) {
      case 'GET': {
        const e = index.find(table.name, key);
        return e ? ok(present(e, vctx)) : fail(notFound());
      }
      case 'PATCH': {
        const body = await hashPasswords(table.name, req.body);
        return ok(
          await manager.update((ctx) => {
            const e = ctx.index.find(table.name, key);
            if (!e) throw notFound();
            return present(updateEntity(ctx, e, body, 'patch'), viewOf(manager, ctx));
          }),
        );
      }
      case 'PUT': {
        const body = await hashPasswords(table.name, req.body);
        return ok(await manager.update((ctx) => present(upsertEntity(ctx, table.name, key, body), viewOf(manager, ctx))));
      }
      case 'DELETE':
        await manager.update((ctx) => {
          const e = ctx.index.find(table.name, key);
          if (e) deleteEntity(ctx, e);
        });
        return { status: 204 };
      default:
        return fail(methodNotAllowed());
    }
  }

  const sub = seg[2]!;
  const childTableName = CHILD_PATHS[table.name]?.[sub];
  // /routes/{r}/service: the entity a reference points to.
  if (!childTableName && seg.length === 3 && table.foreign.some((f) => f.field === sub)) {
    if (method !== 'GET') return fail(methodNotAllowed());
    const e = index.find(table.name, key);
    const fk = table.foreign.find((f) => f.field === sub)!;
    const parentId = e?.refs[fk.field as ForeignField];
    const parent = parentId ? index.byId(fk.table, parentId) : undefined;
    return parent ? ok(present(parent, vctx)) : fail(notFound());
  }
  if (!childTableName) return undefined;
  const child = TABLES[childTableName];
  const field = foreignFieldTo(childTableName, table.name)!;
  const locate = (idx: DocIndex): Located => {
    const parent = idx.find(table.name, key);
    if (!parent) throw notFound();
    const scope = { field, parent };
    return { entity: seg[3] !== undefined ? idx.findWithin(childTableName, seg[3], field, parent.id) : undefined, scope };
  };

  // /services/{s}/routes
  if (seg.length === 3 || (seg[3] === 'all' && childTableName === 'targets' && method === 'GET')) {
    if (method === 'GET') {
      const { scope } = locate(index);
      return listPage(index.children(childTableName, field, scope!.parent.id), req, vctx, false);
    }
    if (method !== 'POST') return fail(methodNotAllowed());
    if (manager.readOnly) return fail(readOnlyRefusal(method, child.name));
    const body = await hashPasswords(childTableName, req.body);
    return ok(
      await manager.update((ctx) => {
        const { scope } = locate(ctx.index);
        return present(createEntity(ctx, childTableName, body, scope), viewOf(manager, ctx));
      }),
      201,
    );
  }

  // /services/{s}/routes/{r}
  const childKey = seg[3]!;
  if (write && manager.readOnly) return fail(readOnlyRefusal(method, child.name, byKey(child, childKey)));
  switch (method) {
    case 'GET': {
      const { entity } = locate(index);
      return entity ? ok(present(entity, vctx)) : fail(notFound());
    }
    case 'PATCH': {
      const body = await hashPasswords(childTableName, req.body);
      return ok(
        await manager.update((ctx) => {
          const { entity, scope } = locate(ctx.index);
          if (!entity) throw notFound();
          return present(updateEntity(ctx, entity, body, 'patch', scope), viewOf(manager, ctx));
        }),
      );
    }
    case 'PUT': {
      const body = await hashPasswords(childTableName, req.body);
      return ok(
        await manager.update((ctx) => {
          const { scope } = locate(ctx.index);
          return present(upsertEntity(ctx, childTableName, childKey, body, scope), viewOf(manager, ctx));
        }),
      );
    }
    case 'DELETE':
      await manager.update((ctx) => {
        const { entity } = locate(ctx.index);
        // Nested deletes answer 404 for a missing child (Kong); top-level ones 204.
        if (!entity) throw notFound();
        deleteEntity(ctx, entity);
      });
      return { status: 204 };
    default:
      return fail(methodNotAllowed());
  }
}

function viewOf(manager: ConfigManager, ctx: ChangeContext): ViewContext {
  return manager.viewContext({ doc: ctx.doc, meta: ctx.meta, loadedAt: manager.state.loadedAt });
}

/** /upstreams/{u}/health and /upstreams/{u}/targets/{t}[/{address}]/healthy|unhealthy */
function isHealthPath(seg: string[]): boolean {
  if (seg.length === 3) return seg[2] === 'health';
  return seg[2] === 'targets' && (seg.length === 5 || seg.length === 6) && (seg[seg.length - 1] === 'healthy' || seg[seg.length - 1] === 'unhealthy');
}

interface HealthAnswer {
  targets: Record<string, { health: string; data: Record<string, unknown> }>;
  balancer_health: string;
  weight: Record<string, number>;
}

/**
 * Health of an upstream's targets (Kong's shape): the target entities from the document, their
 * state from the gateway that balances them (a worker, when there are several: each worker checks
 * on its own, and the first to answer is shown; a PUT reaches every worker).
 */
async function upstreamHealth(req: ApiRequest, seg: string[], target: AdminTarget, manager: ConfigManager): Promise<ApiResponse> {
  const state = manager.state;
  const index = indexOf(state.doc);
  const upstream = index.find('upstreams', seg[1]!);
  if (!upstream) return fail(notFound());
  const nodeId = (target.info() as { node_id?: unknown }).node_id;
  if (seg.length === 3) {
    if (req.method !== 'GET') return fail(methodNotAllowed());
    const answer = await target.pluginAdmin({ method: 'GET', path: `/upstreams/${encodeURIComponent(upstream.id)}/health`, query: new URLSearchParams(), body: undefined });
    const health = answer && answer.status === 200 ? (answer.body as HealthAnswer) : undefined;
    const vctx = manager.viewContext(state);
    const targets = index.children('targets', 'upstream', upstream.id);
    if (/^(1|true|on|yes)$/i.test(req.query.get('balancer_health') ?? '')) {
      const any = targets.some((t) => health?.targets[t.id]?.health === 'HEALTHY' || health?.targets[t.id]?.health === 'HEALTHCHECKS_OFF');
      return ok({
        data: {
          id: upstream.id,
          health: any ? 'HEALTHY' : 'UNHEALTHY',
          balancer_health: health?.balancer_health ?? 'UNHEALTHY',
          details: { healthy: health?.balancer_health === 'HEALTHY', weight: health?.weight ?? { total: 0, available: 0, unavailable: 0 } },
        },
        next: null,
        node_id: nodeId,
      });
    }
    const data = targets.map((t) => ({ ...present(t, vctx), health: health?.targets[t.id]?.health ?? 'UNHEALTHY', data: health?.targets[t.id]?.data ?? null }));
    return ok({ data, next: null, node_id: nodeId });
  }
  if (req.method !== 'PUT' && req.method !== 'POST') return fail(methodNotAllowed());
  const t = index.findWithin('targets', seg[3]!, 'upstream', upstream.id) ?? index.children('targets', 'upstream', upstream.id).find((e) => e.raw.target === normalizeTarget(seg[3]!));
  if (!t) return fail(notFound());
  const address = seg.length === 6 ? `/${encodeURIComponent(seg[4]!)}` : '';
  const path = `/upstreams/${encodeURIComponent(upstream.id)}/targets/${encodeURIComponent(t.id)}${address}/${seg[seg.length - 1]}`;
  const answer = await target.pluginAdmin({ method: 'PUT', path, query: new URLSearchParams(), body: undefined });
  if (!answer) return fail(notFound());
  return { status: answer.status, body: answer.body };
}
