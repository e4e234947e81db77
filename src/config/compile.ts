import { createHash } from 'node:crypto';
import type { BoundPlugin, CompiledRoute, CompiledService, PluginChain, Snapshot } from './snapshot.js';
import type { NormalConfig, NormalPlugin } from './normalize.js';
import { compileSettings } from './settings.js';
import { Router } from '../router/router.js';
import type { PoolManager } from '../proxy/pool.js';
import type { PluginDeps } from '../plugins/types.js';
import { ConfigError } from '../lib/errors.js';

export interface CompileDeps {
  pools: PoolManager;
  pluginDeps: PluginDeps;
}

export function buildChain(plugins: BoundPlugin[]): PluginChain {
  const all = [...plugins].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
  const having = (hook: keyof BoundPlugin['instance']) => Object.freeze(all.filter((p) => typeof p.instance[hook] === 'function'));
  return Object.freeze({
    all: Object.freeze(all),
    rewrite: having('rewrite'),
    access: having('access'),
    response: having('response'),
    log: having('log'),
    mayBufferRequest: having('needsRequestBody'),
    mayBufferResponse: having('needsResponseBody'),
  });
}

export const EMPTY_CHAIN = buildChain([]);

function canonicalHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

/** Kong's precedence among instances of one plugin: the most specific scope wins. */
function specificity(p: NormalPlugin): number {
  return (p.routeId ? 2 : 0) + (p.serviceId ? 1 : 0);
}

/**
 * Builds the immutable snapshot: services with their pools, plugin instances bound to their
 * config, per-route plugin chains and the router. Throws ConfigError when a plugin refuses its
 * config; nothing is half-built (plugin instances created so far are disposed).
 */
export function compileSnapshot(normal: NormalConfig, deps: CompileDeps, version: number): Snapshot {
  const settings = compileSettings(normal.config._gatehouse);
  const bound = new Map<string, BoundPlugin>();
  const errors: string[] = [];
  for (const p of normal.plugins) {
    if (!p.entity.enabled) continue;
    try {
      const instance = p.definition.create(p.entity.config, deps.pluginDeps);
      bound.set(p.id, { id: p.id, name: p.entity.name, priority: p.definition.priority, instance });
    } catch (err) {
      errors.push(`${p.at}.config: ${(err as Error).message}`);
    }
  }
  const disposePlugins = async () => {
    await Promise.all([...bound.values()].map(async (b) => b.instance.dispose?.()));
  };
  if (errors.length) {
    void disposePlugins();
    throw new ConfigError(errors);
  }

  const services = new Map<string, CompiledService>();
  for (const s of normal.services) {
    const e = s.entity;
    const defaultPort = s.protocol === 'https' ? 443 : 80;
    const hostForHeader = s.host.includes(':') ? `[${s.host}]` : s.host;
    services.set(s.id, {
      id: s.id,
      name: e.name,
      protocol: s.protocol,
      host: s.host,
      port: s.port,
      path: s.path,
      hostHeader: s.port === defaultPort ? hostForHeader : `${hostForHeader}:${s.port}`,
      connectTimeout: e.connect_timeout,
      readTimeout: e.read_timeout,
      writeTimeout: e.write_timeout,
      retries: e.retries,
      pool: deps.pools.get({
        protocol: s.protocol,
        host: s.host,
        port: s.port,
        connectTimeout: e.connect_timeout,
        poolSize: settings.keepAlivePoolSize,
        keepAliveTimeout: settings.keepAliveIdleTimeout,
      }),
    });
  }

  // Consumer-scoped plugins are bound but only run once consumers are identified (auth issue).
  const applicable = normal.plugins.filter((p) => bound.has(p.id) && !p.consumerId);
  const globalPlugins = buildChain(applicable.filter((p) => !p.routeId && !p.serviceId).map((p) => bound.get(p.id)!));
  const routes = new Map<string, CompiledRoute>();
  const routerInput: ConstructorParameters<typeof Router>[0] = [];
  for (const r of normal.routes) {
    const service = r.serviceId ? services.get(r.serviceId) : undefined;
    // Routes whose service is disabled are left out of the router, as in Kong.
    if (service && normal.services.find((s) => s.id === r.serviceId)?.entity.enabled === false) continue;
    const chosen = new Map<string, NormalPlugin>();
    for (const p of applicable) {
      if (p.routeId && p.routeId !== r.id) continue;
      if (p.serviceId && p.serviceId !== r.serviceId) continue;
      const prev = chosen.get(p.entity.name);
      if (!prev || specificity(p) > specificity(prev)) chosen.set(p.entity.name, p);
    }
    const e = r.entity;
    const route: CompiledRoute = Object.freeze({
      id: r.id,
      name: e.name,
      service,
      protocols: new Set(e.protocols),
      stripPath: e.strip_path,
      preserveHost: e.preserve_host,
      pathHandling: e.path_handling,
      httpsRedirectStatusCode: e.https_redirect_status_code,
      requestBuffering: e.request_buffering,
      responseBuffering: e.response_buffering,
      plugins: buildChain([...chosen.values()].map((p) => bound.get(p.id)!)),
    });
    routes.set(r.id, route);
    routerInput.push({ route, config: e, order: r.order });
  }

  const router = new Router(routerInput);
  const { _gatehouse: _settings, ...entities } = normal.config;
  const snapshot: Snapshot = {
    version,
    hash: canonicalHash(entities),
    config: normal.config,
    settings,
    router,
    globalPlugins,
    services,
    routes,
    dispose: disposePlugins,
  };
  return Object.freeze(snapshot);
}
