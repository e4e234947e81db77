import { createHash } from 'node:crypto';
import type { BoundPlugin, CompiledRoute, CompiledService, PluginChain, Snapshot } from './snapshot.js';
import type { NormalConfig, NormalPlugin } from './normalize.js';
import { compileSettings } from './settings.js';
import { Router } from '../router/router.js';
import type { PoolManager } from '../proxy/pool.js';
import type { PluginDeps } from '../plugins/types.js';
import { ConfigError } from '../lib/errors.js';
import { ConsumerIndex, type Consumer } from './consumers.js';

export interface CompileDeps {
  pools: PoolManager;
  pluginDeps: Omit<PluginDeps, 'consumers'>;
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

/**
 * Kong's precedence among instances of one plugin, most specific first: consumer+route+service,
 * consumer+route, consumer+service, route+service, consumer, route, service, global.
 */
function specificity(p: NormalPlugin): number {
  const c = p.consumerId !== undefined;
  const r = p.routeId !== undefined;
  const s = p.serviceId !== undefined;
  if (c && r && s) return 8;
  if (c && r) return 7;
  if (c && s) return 6;
  if (r && s) return 5;
  if (c) return 4;
  if (r) return 3;
  if (s) return 2;
  return 1;
}

/** For each plugin name, the most specific instance that applies to this route (and consumer). */
function choose(plugins: NormalPlugin[], routeId: string, serviceId: string | undefined, consumerId: string | undefined): NormalPlugin[] {
  const chosen = new Map<string, NormalPlugin>();
  for (const p of plugins) {
    if (p.routeId && p.routeId !== routeId) continue;
    if (p.serviceId && p.serviceId !== serviceId) continue;
    if (p.consumerId && p.consumerId !== consumerId) continue;
    const prev = chosen.get(p.entity.name);
    if (!prev || specificity(p) > specificity(prev)) chosen.set(p.entity.name, p);
  }
  return [...chosen.values()];
}

/**
 * Builds the immutable snapshot: services with their pools, plugin instances bound to their
 * config, per-route plugin chains and the router. Throws ConfigError when a plugin refuses its
 * config; nothing is half-built (plugin instances created so far are disposed).
 */
export function compileSnapshot(normal: NormalConfig, deps: CompileDeps, version: number): Snapshot {
  const settings = compileSettings(normal.config._gatehouse);
  const consumerList: Consumer[] = normal.consumers.map((c) => Object.freeze({ id: c.id, username: c.username, custom_id: c.customId, tags: Object.freeze([...c.tags]) }));
  const consumerById = new Map(consumerList.map((c) => [c.id, c]));
  const consumers = new ConsumerIndex(
    consumerList,
    normal.credentials.map((c) => Object.freeze({ id: c.id, type: c.type, consumer: consumerById.get(c.consumerId)!, fields: Object.freeze({ ...c.fields, id: c.id }) })),
  );
  const pluginDeps: PluginDeps = { ...deps.pluginDeps, consumers };
  const bound = new Map<string, BoundPlugin>();
  const errors: string[] = [];
  for (const p of normal.plugins) {
    if (!p.entity.enabled) continue;
    try {
      const instance = p.definition.create(p.entity.config, pluginDeps);
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
        tlsVerify: e.tls_verify ?? true,
      }),
    });
  }

  const applicable = normal.plugins.filter((p) => bound.has(p.id));
  const consumersWithPlugins = new Set(applicable.filter((p) => p.consumerId).map((p) => p.consumerId!));
  const globalPlugins = buildChain(applicable.filter((p) => !p.routeId && !p.serviceId && !p.consumerId).map((p) => bound.get(p.id)!));
  const routes = new Map<string, CompiledRoute>();
  const routerInput: ConstructorParameters<typeof Router>[0] = [];
  for (const r of normal.routes) {
    const service = r.serviceId ? services.get(r.serviceId) : undefined;
    // Routes whose service is disabled are left out of the router, as in Kong.
    if (service && normal.services.find((s) => s.id === r.serviceId)?.entity.enabled === false) continue;
    const e = r.entity;
    const byConsumer = new Map<string, PluginChain>();
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
      plugins: buildChain(choose(applicable, r.id, r.serviceId, undefined).map((p) => bound.get(p.id)!)),
      chainFor(consumerId: string): PluginChain {
        if (!consumersWithPlugins.has(consumerId)) return this.plugins;
        let chain = byConsumer.get(consumerId);
        if (!chain) {
          chain = buildChain(choose(applicable, r.id, r.serviceId, consumerId).map((p) => bound.get(p.id)!));
          byConsumer.set(consumerId, chain);
        }
        return chain;
      },
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
    consumers,
    consumersWithPlugins,
    dispose: disposePlugins,
  };
  return Object.freeze(snapshot);
}
