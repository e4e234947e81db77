import { createHash } from 'node:crypto';
import type { BoundPlugin, CompiledRoute, CompiledService, PluginChain, Snapshot } from './snapshot.js';
import { TlsContexts, type ClientCertificateRequest } from '../tls/contexts.js';
import type { NormalConfig, NormalPlugin, NormalRoute, NormalService } from './normalize.js';
import { compileSettings } from './settings.js';
import { Router } from '../router/router.js';
import { ServiceUpstream, type UpstreamManager } from '../upstream/manager.js';
import type { UpstreamRuntime } from '../upstream/runtime.js';
import { poolKey, type PoolManager, type PoolOptions, type UpstreamPool } from '../proxy/pool.js';
import type { NormalCaCertificate } from '../tls/ca-certificates.js';
import type { NormalCertificate } from '../tls/certificates.js';
import type { PluginDefinition, PluginDeps, PluginInstance } from '../plugins/types.js';
import { ConfigError } from '../lib/errors.js';
import { ConsumerIndex, type Consumer } from './consumers.js';

export interface CompileDeps {
  pools: PoolManager;
  /** Upstream runtimes (balancers, health checks) kept across snapshots. */
  upstreams: UpstreamManager;
  pluginDeps: Omit<PluginDeps, 'consumers'>;
  /**
   * The snapshot this one will replace. What did not change is carried over instead of being
   * built again: plugin instances whose entity (and the consumers they read) did not change,
   * compiled services, compiled routes, plugin chains, the consumer index.
   */
  previous?: Snapshot | undefined;
  /**
   * The raw entity objects the normalized services and routes came from, in the normalizer's order
   * (services, then their nested routes followed by top-level routes). A service or route whose
   * object is the very one `previous` compiled (or a copy with the same field values, nested
   * lists aside), and whose id matches, has not changed. Callers pass documents they never
   * mutate (the admin API edits copy-on-write).
   */
  origins?: CompileOrigins | undefined;
}

export interface CompileOrigins {
  services: readonly unknown[];
  routes: readonly unknown[];
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
function choose(plugins: readonly NormalPlugin[], routeId: string, serviceId: string | undefined, consumerId: string | undefined): NormalPlugin[] {
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

/** A plugin instance shared by every snapshot that carries it; disposed when the last one is. */
interface SharedInstance {
  instance: PluginInstance;
  refs: number;
  /** Set when create() (or later, a hook) read deps.consumers. */
  readsConsumers: boolean;
  /** Set when create() read deps.caCertificates. */
  readsCaCertificates: boolean;
  /** The consumer index the instance sees (the newest snapshot's that carries it). */
  consumers: ConsumerIndex;
}

interface CarriedPlugin {
  fingerprint: string;
  definition: PluginDefinition<any>;
  shared: SharedInstance;
  bound: BoundPlugin;
  /** Changes whenever the instance is created anew: chain keys are made of these. */
  key: string;
}

/** What one snapshot hands to the next (kept on the snapshot under a symbol, never on the request path). */
interface Carry {
  plugins: Map<string, CarriedPlugin>;
  services: Map<string, { origin: unknown; poolKey: string; compiled: CompiledService }>;
  routes: Map<string, { origin: unknown; service: CompiledService | undefined; signature: string; compiled: CompiledRoute }>;
  chains: Map<string, PluginChain>;
  consumersKey: string;
  consumers: ConsumerIndex;
  /** Ids and digests of the ca_certificates the plugin instances saw. */
  caKey: string;
  serial: number;
}

const CARRY = Symbol('gatehouse.compile.carry');

function carryOf(s: Snapshot | undefined): Carry | undefined {
  return s ? (s as unknown as Record<symbol, Carry | undefined>)[CARRY] : undefined;
}

/**
 * The same entity as before: the same object, or (copy-on-write copied it because something
 * nested in it changed) an object whose own fields are the same values, nested lists aside.
 */
function sameOrigin(a: unknown, b: unknown): boolean {
  if (a === b) return a !== undefined;
  if (!a || !b || typeof a !== 'object' || typeof b !== 'object') return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let n = 0;
  for (const k in x) {
    if (k === 'routes' || k === 'plugins') continue;
    if (x[k] !== y[k]) return false;
    n++;
  }
  for (const k in y) if (k !== 'routes' && k !== 'plugins') n--;
  return n === 0;
}

function release(shared: SharedInstance): Promise<void> | void {
  if (--shared.refs > 0) return;
  return shared.instance.dispose?.();
}

// The closures that outlive a compile (plugin deps, dispose, lazy hash, route methods) are made by
// these module-level functions: a closure created inside compileSnapshot would keep its whole
// scope alive (the normalized config and the previous snapshot's carry), and through carried
// routes, every earlier generation.

function depsFor(base: Omit<PluginDeps, 'consumers'>, shared: SharedInstance, pluginId: string, caCertificates: ReadonlyMap<string, NormalCaCertificate>): PluginDeps {
  return {
    ...base,
    pluginId,
    get consumers() {
      shared.readsConsumers = true;
      return shared.consumers;
    },
    get caCertificates() {
      shared.readsCaCertificates = true;
      return caCertificates;
    },
  };
}

/** What the HTTPS listener asks clients for: a certificate while an enabled plugin wants one. */
function clientCertificateRequest(normal: NormalConfig, caById: ReadonlyMap<string, NormalCaCertificate>): ClientCertificateRequest {
  let request = false;
  const names = new Set<string>();
  for (const p of normal.plugins) {
    if (!p.entity.enabled || !p.definition.clientCertificateRequest) continue;
    request = true;
    for (const id of p.definition.clientCertificateRequest(p.entity.config).caNames) {
      const ca = caById.get(id);
      if (ca) names.add(ca.cert);
    }
  }
  return { request, caNames: [...names] };
}

/** The TLS part of an https service's pool: trust, depth and client certificate. */
function upstreamTls(
  s: NormalService,
  caById: ReadonlyMap<string, NormalCaCertificate>,
  certificateById: ReadonlyMap<string, NormalCertificate>,
): Pick<PoolOptions, 'tlsVerifyDepth' | 'ca' | 'clientCertificate' | 'tlsMaterial'> {
  const e = s.entity;
  const cas = e.ca_certificates?.map((id) => caById.get(id)!);
  const client = s.clientCertificateId === undefined ? undefined : certificateById.get(s.clientCertificateId)!;
  const clientDigest = client ? createHash('sha256').update(client.cert).update('\0').update(client.key).digest('hex') : '';
  return {
    tlsVerifyDepth: e.tls_verify_depth,
    ca: cas?.map((c) => c.cert),
    clientCertificate: client ? { cert: client.cert, key: client.key } : undefined,
    tlsMaterial: cas || client ? `${cas?.map((c) => c.digest).join(',') ?? '-'}|${clientDigest}` : undefined,
  };
}

function disposerFor(carried: ReadonlyMap<string, CarriedPlugin>): () => Promise<void> {
  let disposed = false;
  return async () => {
    if (disposed) return;
    disposed = true;
    await Promise.all([...carried.values()].map(async (c) => release(c.shared)));
  };
}

function lazyHash(config: NormalConfig['config']): () => string {
  let hash: string | undefined;
  return () => {
    if (hash === undefined) {
      const { _gatehouse: _settings, ...entities } = config;
      hash = canonicalHash(entities);
    }
    return hash;
  };
}

/** The chain a consumer gets on routes with these candidate plugins (memoised per consumer). */
type ConsumerChains = (consumerId: string, base: PluginChain) => PluginChain;

function consumerChains(candidates: readonly NormalPlugin[], routeId: string, serviceId: string | undefined, boundOf: ReadonlyMap<string, BoundPlugin>): ConsumerChains {
  const byConsumer = new Map<string, PluginChain>();
  const withConsumerPlugins = new Set(candidates.filter((p) => p.consumerId).map((p) => p.consumerId!));
  return (consumerId, base) => {
    if (!withConsumerPlugins.has(consumerId)) return base;
    let chain = byConsumer.get(consumerId);
    if (!chain) {
      chain = buildChain(choose(candidates, routeId, serviceId, consumerId).map((p) => boundOf.get(p.id)!));
      byConsumer.set(consumerId, chain);
    }
    return chain;
  };
}

/** A compiled route: a class, so 10,000 routes share one chainFor instead of a closure each. */
class Route implements CompiledRoute {
  readonly id: string;
  readonly name: string | undefined;
  readonly service: CompiledService | undefined;
  readonly protocols: ReadonlySet<string>;
  readonly stripPath: boolean;
  readonly preserveHost: boolean;
  readonly pathHandling: 'v0' | 'v1';
  readonly httpsRedirectStatusCode: number;
  readonly requestBuffering: boolean;
  readonly responseBuffering: boolean;
  readonly plugins: PluginChain;
  private readonly chains: ConsumerChains;

  constructor(r: NormalRoute, service: CompiledService | undefined, plugins: PluginChain, protocols: ReadonlySet<string>, chains: ConsumerChains) {
    const e = r.entity;
    this.id = r.id;
    this.name = e.name;
    this.service = service;
    this.protocols = protocols;
    this.stripPath = e.strip_path;
    this.preserveHost = e.preserve_host;
    this.pathHandling = e.path_handling;
    this.httpsRedirectStatusCode = e.https_redirect_status_code;
    this.requestBuffering = e.request_buffering;
    this.responseBuffering = e.response_buffering;
    this.plugins = plugins;
    this.chains = chains;
    Object.freeze(this);
  }

  chainFor(consumerId: string): PluginChain {
    return this.chains(consumerId, this.plugins);
  }
}

/**
 * Builds the immutable snapshot: services with their pools, plugin instances bound to their
 * config, per-route plugin chains and the router. Throws ConfigError when a plugin refuses its
 * config; nothing is half-built (plugin instances created so far are disposed). With
 * `deps.previous`, unchanged parts are reused, so a one-entity change costs little more than
 * the router rebuild.
 */
export function compileSnapshot(normal: NormalConfig, deps: CompileDeps, version: number): Snapshot {
  const caById = new Map(normal.caCertificates.map((c) => [c.id, c]));
  const clientRequest = clientCertificateRequest(normal, caById);
  // Before any plugin is created, so a bad certificate leaves nothing to dispose.
  const tls =
    deps.previous?.tls.key === TlsContexts.keyOf(normal.certificates, normal.tlsPolicy, clientRequest)
      ? deps.previous.tls
      : new TlsContexts(normal.certificates, normal.tlsPolicy, clientRequest);
  const prev = carryOf(deps.previous);
  const settings = compileSettings(normal.config._gatehouse);

  // Consumers: the previous index is kept when nothing about consumers or credentials changed, so
  // plugin instances that read it stay valid.
  const consumersKey = JSON.stringify([normal.consumers.map((c) => [c.id, c.username, c.customId, c.tags]), normal.credentials.map((c) => [c.id, c.type, c.consumerId, c.fields])]);
  let consumers: ConsumerIndex;
  const consumersKept = prev !== undefined && prev.consumersKey === consumersKey;
  if (consumersKept) {
    consumers = prev.consumers;
  } else {
    const consumerList: Consumer[] = normal.consumers.map((c) => Object.freeze({ id: c.id, username: c.username, custom_id: c.customId, tags: Object.freeze([...c.tags]) }));
    const consumerById = new Map(consumerList.map((c) => [c.id, c]));
    consumers = new ConsumerIndex(
      consumerList,
      normal.credentials.map((c) => Object.freeze({ id: c.id, type: c.type, consumer: consumerById.get(c.consumerId)!, fields: Object.freeze({ ...c.fields, id: c.id }) })),
    );
  }

  // Plugins that read ca_certificates are created again when any of them changes.
  const caKey = JSON.stringify(normal.caCertificates.map((c) => [c.id, c.digest]));
  const caKept = prev !== undefined && prev.caKey === caKey;

  let serial = prev?.serial ?? 0;
  const carried = new Map<string, CarriedPlugin>();
  const errors: string[] = [];
  for (const p of normal.plugins) {
    if (!p.entity.enabled) continue;
    const fingerprint = JSON.stringify(p.entity.config);
    const old = prev?.plugins.get(p.id);
    if (
      old &&
      old.fingerprint === fingerprint &&
      old.definition === p.definition &&
      old.bound.priority === p.definition.priority &&
      (consumersKept || !old.shared.readsConsumers) &&
      (caKept || !old.shared.readsCaCertificates)
    ) {
      old.shared.refs++;
      old.shared.consumers = consumers;
      carried.set(p.id, old);
      continue;
    }
    const shared = { refs: 1, readsConsumers: false, readsCaCertificates: false, consumers } as SharedInstance;
    try {
      shared.instance = p.definition.create(p.entity.config, depsFor(deps.pluginDeps, shared, p.id, caById));
      const bound = { id: p.id, name: p.entity.name, priority: p.definition.priority, instance: shared.instance };
      carried.set(p.id, { fingerprint, definition: p.definition, shared, bound, key: `${p.id}#${++serial}` });
    } catch (err) {
      errors.push(`${p.at}.config: ${(err as Error).message}`);
    }
  }
  const disposePlugins = disposerFor(carried);
  if (errors.length) {
    void disposePlugins();
    throw new ConfigError(errors);
  }

  const origins = deps.origins;
  const serviceOrigin = (i: number): unknown => {
    const o = origins?.services[i] as { id?: unknown } | undefined;
    return o && o.id === normal.services[i]!.id ? o : undefined;
  };
  const routeOrigin = (i: number): unknown => {
    if (!origins || origins.routes.length !== normal.routes.length) return undefined;
    const o = origins.routes[i] as { id?: unknown } | undefined;
    return o && o.id === normal.routes[i]!.id ? o : undefined;
  };

  // Upstreams by name: a service whose host is one of them is balanced over its targets.
  const upstreams = new Map<string, UpstreamRuntime>();
  const upstreamByName = new Map<string, UpstreamRuntime>();
  for (const u of normal.upstreams) {
    const runtime = deps.upstreams.get(u, settings.raw.dns_resolver);
    upstreams.set(u.id, runtime);
    upstreamByName.set(u.name, runtime);
  }

  const services = new Map<string, CompiledService>();
  const carriedServices: Carry['services'] = new Map();
  const disabledServices = new Set<string>();
  const certificateById = new Map(normal.certificates.map((c) => [c.id, c]));
  normal.services.forEach((s, i) => {
    const e = s.entity;
    if (e.enabled === false) disabledServices.add(s.id);
    const poolOptions: PoolOptions = {
      protocol: s.protocol,
      host: s.host,
      port: s.port,
      connectTimeout: e.connect_timeout,
      poolSize: settings.keepAlivePoolSize,
      keepAliveTimeout: settings.keepAliveIdleTimeout,
      // On unless the service turns it off (Kong's default comes from kong.conf and is off).
      tlsVerify: e.tls_verify ?? true,
      ...(s.protocol === 'https' ? upstreamTls(s, caById, certificateById) : {}),
    };
    const key = poolKey(poolOptions);
    const origin = serviceOrigin(i);
    const old = prev?.services.get(s.id);
    const runtime = upstreamByName.get(s.host.toLowerCase());
    let compiled: CompiledService;
    if (old && origin !== undefined && sameOrigin(old.origin, origin) && old.poolKey === key && old.compiled.upstream?.runtime === runtime) {
      compiled = old.compiled;
    } else {
      let pool: UpstreamPool;
      try {
        pool = deps.pools.get(poolOptions);
      } catch (err) {
        // The TLS material was checked when normalized; this is what createSecureContext still refuses.
        errors.push(`${s.at}: ${(err as Error).message}`);
        return;
      }
      const defaultPort = s.protocol === 'https' ? 443 : 80;
      const hostForHeader = s.host.includes(':') ? `[${s.host}]` : s.host;
      compiled = {
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
        pool,
        // A balanced service connects to its targets' addresses (pools per address); `pool` stays unused.
        upstream: runtime ? new ServiceUpstream(runtime, poolOptions, deps.pools) : undefined,
      };
    }
    services.set(s.id, compiled);
    carriedServices.set(s.id, { origin, poolKey: key, compiled });
  });
  if (errors.length) {
    void disposePlugins();
    throw new ConfigError(errors);
  }

  // Plugins by scope, so each route looks only at the ones that can apply to it.
  const applicable = normal.plugins.filter((p) => carried.has(p.id));
  const globalScope: NormalPlugin[] = [];
  const byService = new Map<string, NormalPlugin[]>();
  const byRoute = new Map<string, NormalPlugin[]>();
  for (const p of applicable) {
    const map = p.routeId ? byRoute : p.serviceId ? byService : undefined;
    if (!map) {
      globalScope.push(p);
      continue;
    }
    const k = (p.routeId ?? p.serviceId)!;
    let list = map.get(k);
    if (!list) map.set(k, (list = []));
    list.push(p);
  }
  const consumersWithPlugins = new Set(applicable.filter((p) => p.consumerId).map((p) => p.consumerId!));
  const chains = new Map<string, PluginChain>();
  const chainOf = (plugins: readonly NormalPlugin[]): PluginChain => {
    const list = plugins.map((p) => carried.get(p.id)!);
    const key = list
      .map((c) => c.key)
      .sort()
      .join(',');
    let chain = chains.get(key) ?? prev?.chains.get(key);
    if (!chain) chain = buildChain(list.map((c) => c.bound));
    chains.set(key, chain);
    return chain;
  };
  const globalPlugins = chainOf(globalScope.filter((p) => !p.consumerId));

  const routes = new Map<string, CompiledRoute>();
  const carriedRoutes: Carry['routes'] = new Map();
  const routerInput: ConstructorParameters<typeof Router>[0] = [];
  // Most routes have no plugin of their own: they share one candidate list, signature and chains.
  const sharedSignature = globalScope.map((p) => carried.get(p.id)!.key).join(',');
  let shared: { chain: PluginChain; chains: ConsumerChains } | undefined;
  // Routes with the same protocols share one (read-only) set.
  const protocolSets = new Map<string, ReadonlySet<string>>();
  const protocolsOf = (list: readonly string[]) => {
    const k = list.join(',');
    let set = protocolSets.get(k);
    if (!set) protocolSets.set(k, (set = new Set(list)));
    return set;
  };
  normal.routes.forEach((r, i) => {
    const service = r.serviceId ? services.get(r.serviceId) : undefined;
    // Routes whose service is disabled are left out of the router, as in Kong.
    if (service && disabledServices.has(r.serviceId!)) return;
    const ofService = r.serviceId ? byService.get(r.serviceId) : undefined;
    const ofRoute = byRoute.get(r.id);
    const own = ofService !== undefined || ofRoute !== undefined;
    const candidates = own ? [...globalScope, ...(ofService ?? []), ...(ofRoute ?? []).filter((p) => !p.serviceId || p.serviceId === r.serviceId)] : globalScope;
    const signature = own ? candidates.map((p) => carried.get(p.id)!.key).join(',') : sharedSignature;
    const origin = routeOrigin(i);
    const old = prev?.routes.get(r.id);
    let route: CompiledRoute;
    if (old && origin !== undefined && sameOrigin(old.origin, origin) && old.service === service && old.signature === signature) {
      route = old.compiled;
    } else if (!own) {
      if (!shared) {
        const boundOf = new Map(globalScope.map((p) => [p.id, carried.get(p.id)!.bound]));
        // Global plugins name no route or service: every plain route gets the same chains.
        shared = { chain: chainOf(choose(globalScope, r.id, undefined, undefined)), chains: consumerChains(globalScope, r.id, undefined, boundOf) };
      }
      route = new Route(r, service, shared.chain, protocolsOf(r.entity.protocols), shared.chains);
    } else {
      // Only what the chains need, so a route carried into later snapshots keeps nothing else alive.
      const boundOf = new Map(candidates.map((p) => [p.id, carried.get(p.id)!.bound]));
      route = new Route(r, service, chainOf(choose(candidates, r.id, r.serviceId, undefined)), protocolsOf(r.entity.protocols), consumerChains(candidates, r.id, r.serviceId, boundOf));
    }
    routes.set(r.id, route);
    carriedRoutes.set(r.id, { origin, service, signature, compiled: route });
    routerInput.push({ route, config: r.entity, order: r.order });
  });

  const router = new Router(routerInput);
  const snapshot: Omit<Snapshot, 'hash'> = {
    version,
    config: normal.config,
    settings,
    router,
    globalPlugins,
    services,
    routes,
    consumers,
    consumersWithPlugins,
    tls,
    upstreams,
    dispose: disposePlugins,
  };
  // The hash is computed when asked (the admin API's status), not on every reload.
  Object.defineProperty(snapshot, 'hash', { get: lazyHash(normal.config), enumerable: true });
  const carry: Carry = { plugins: carried, services: carriedServices, routes: carriedRoutes, chains, consumersKey, consumers, caKey, serial };
  Object.defineProperty(snapshot, CARRY, { value: carry, enumerable: false });
  return Object.freeze(snapshot) as Snapshot;
}
