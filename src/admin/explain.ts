import type { BoundPlugin, CompiledRoute, Snapshot } from '../config/snapshot.js';
import { normalizePath } from '../lib/path.js';
import { upstreamPathV0, upstreamPathV1 } from '../router/upstream-path.js';
import { indexOf } from './doc-index.js';
import type { ConfigDocument } from './doc.js';
import { badRequest } from './errors.js';

/** The request GET /debug/route describes (query: method, host, path, header=Name:value, sni, scheme, consumer). */
export interface RouteQuery {
  method: string;
  host: string;
  path: string;
  headers: Record<string, string[]>;
  sni: string | undefined;
  scheme: 'http' | 'https';
  consumer: string | undefined;
  limit: number;
}

export function parseRouteQuery(q: URLSearchParams): RouteQuery {
  const headers: Record<string, string[]> = {};
  for (const h of q.getAll('header')) {
    const i = h.indexOf(':');
    if (i <= 0) throw badRequest(`header "${h}": expected Name:value`);
    const name = h.slice(0, i).trim().toLowerCase();
    (headers[name] ??= []).push(h.slice(i + 1).trim());
  }
  const scheme = q.get('scheme') ?? (q.get('sni') ? 'https' : 'http');
  if (scheme !== 'http' && scheme !== 'https') throw badRequest('scheme: expected http or https');
  const limit = Number(q.get('limit') ?? 100);
  if (!Number.isInteger(limit) || limit < 0 || limit > 10000) throw badRequest('limit: expected an integer from 0 to 10000');
  return {
    method: (q.get('method') ?? 'GET').toUpperCase(),
    host: q.get('host') ?? '',
    path: q.get('path') ?? '/',
    headers,
    sni: q.get('sni')?.toLowerCase() || undefined,
    scheme,
    consumer: q.get('consumer') ?? undefined,
    limit,
  };
}

function routeRef(r: CompiledRoute): Record<string, unknown> {
  return { id: r.id, name: r.name ?? null };
}

/** Which entity a plugin is scoped to, read from the snapshot's document. */
function scopeOf(config: ConfigDocument, p: BoundPlugin): string {
  const e = indexOf(config).byId('plugins', p.id);
  if (!e) return 'unknown';
  const parts = (['consumer', 'route', 'service'] as const).filter((f) => e.refs[f]);
  return parts.length ? parts.join('+') : 'global';
}

function pluginList(config: ConfigDocument, plugins: readonly BoundPlugin[], phase: string): Record<string, unknown>[] {
  return plugins.map((p) => ({
    name: p.name,
    id: p.id,
    priority: p.priority,
    scope: scopeOf(config, p),
    phase,
    hooks: (['rewrite', 'access', 'response', 'log'] as const).filter((h) => typeof p.instance[h] === 'function'),
  }));
}

/**
 * The route debugger's answer for one request against one snapshot: the route that matches and
 * what it would do (upstream path, https rule), every other route with the reason it lost, and the
 * plugins that would run, in order.
 */
export function explainRequest(snapshot: Snapshot, q: RouteQuery): Record<string, unknown> {
  const path = normalizePath(q.path.split('?')[0] ?? '/');
  if (path === undefined) throw badRequest(`path "${q.path}": not a valid request path`);
  const rawHost = q.host;
  const colon = rawHost.lastIndexOf(':');
  const hasPort = colon > 0 && rawHost.indexOf(']', colon) < 0;
  const host = (hasPort ? rawHost.slice(0, colon) : rawHost).toLowerCase();
  const port = hasPort ? rawHost.slice(colon + 1) : q.scheme === 'https' ? '443' : '80';
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(q.headers)) headers[k] = v.length === 1 ? v[0]! : v;
  const request = { method: q.method, host, port, path, headers, sni: q.sni };
  const { match, candidates } = snapshot.router.explain(request);
  const config = snapshot.config as unknown as ConfigDocument;

  const listed = candidates.slice(0, q.limit).map((c) => ({
    route: routeRef(c.route),
    route_path: c.routePath ?? null,
    rank: c.rank,
    result: !c.mismatches.length ? (match && c.route === match.route && c.routePath === match.routePath ? 'matched' : 'matches, but a route with higher precedence wins') : 'no match',
    reasons: c.mismatches,
  }));
  const out: Record<string, unknown> = { request: { ...request, scheme: q.scheme } };
  const rewrite = pluginList(config, snapshot.globalPlugins.rewrite, 'rewrite');
  if (!match) {
    out.matched = null;
    out.outcome = '404 {"message":"no Route matched with those values"}';
    // Only rewrite hooks run before routing; the 404 then goes through the global response/log hooks.
    out.plugins = rewrite;
  } else {
    const route = match.route;
    const consumer = q.consumer ? snapshot.consumers.find(q.consumer) ?? snapshot.consumers.byCustom(q.consumer) : undefined;
    if (q.consumer && !consumer) throw badRequest(`consumer "${q.consumer}": no such consumer`);
    const chain = consumer ? route.chainFor(consumer.id) : route.plugins;
    const service = route.service;
    const upstreamPath = service ? (route.pathHandling === 'v1' ? upstreamPathV1 : upstreamPathV0)(service.path, path, match.matchedPath, route.stripPath) : undefined;
    out.matched = {
      route: routeRef(route),
      route_path: match.routePath ?? null,
      matched_path: match.matchedPath,
      captures: match.captures ?? null,
      service: service ? { id: service.id, name: service.name ?? null } : null,
      upstream_url: service ? `${service.protocol}://${service.hostHeader}${upstreamPath}` : null,
    };
    out.outcome = !route.protocols.has(q.scheme)
      ? route.httpsRedirectStatusCode === 426
        ? '426 Please use HTTPS protocol'
        : `${route.httpsRedirectStatusCode} redirect to https`
      : service
        ? `proxied to ${service.protocol}://${service.hostHeader}${upstreamPath}`
        : '503 no Service found with those values';
    out.plugins = [...rewrite, ...pluginList(config, chain.all, 'access')];
    if (consumer) out.consumer = { id: consumer.id, username: consumer.username ?? null };
  }
  out.candidates = listed;
  out.candidates_total = candidates.length;
  return out;
}
