import type { PluginInstance } from '../plugins/types.js';
import type { Router } from '../router/router.js';
import type { UpstreamPool } from '../proxy/pool.js';
import type { Settings } from './settings.js';
import type { DeclarativeConfig } from './schema.js';
import type { ConsumerIndex } from './consumers.js';
import type { TlsContexts } from '../tls/contexts.js';
import type { ServiceUpstream } from '../upstream/manager.js';
import type { UpstreamRuntime } from '../upstream/runtime.js';

/** A plugin entity bound to its config for this snapshot. */
export interface BoundPlugin {
  /** Entity id. */
  id: string;
  name: string;
  priority: number;
  instance: PluginInstance;
}

/** Plugins of one route (or the global set), sorted by priority, highest first, with per-phase lists. */
export interface PluginChain {
  all: readonly BoundPlugin[];
  rewrite: readonly BoundPlugin[];
  access: readonly BoundPlugin[];
  response: readonly BoundPlugin[];
  log: readonly BoundPlugin[];
  /** Any plugin that may ask for the request body. */
  mayBufferRequest: readonly BoundPlugin[];
  /** Any plugin that may ask for the response body. */
  mayBufferResponse: readonly BoundPlugin[];
}

export interface CompiledService {
  id: string;
  name: string | undefined;
  protocol: 'http' | 'https';
  host: string;
  port: number;
  /** Service path; undefined when none was given (treated as "/"). */
  path: string | undefined;
  /** Host header sent upstream when preserve_host is off: host, plus ":port" unless default for the protocol. */
  hostHeader: string;
  connectTimeout: number;
  readTimeout: number;
  writeTimeout: number;
  retries: number;
  pool: UpstreamPool;
  /** Set when the service's host names an upstream: requests go to its targets. */
  upstream: ServiceUpstream | undefined;
}

export interface CompiledRoute {
  id: string;
  name: string | undefined;
  service: CompiledService | undefined;
  protocols: ReadonlySet<string>;
  stripPath: boolean;
  preserveHost: boolean;
  pathHandling: 'v0' | 'v1';
  httpsRedirectStatusCode: number;
  requestBuffering: boolean;
  responseBuffering: boolean;
  plugins: PluginChain;
  /** The chain once a consumer is identified (consumer-scoped plugins merged in); memoised per consumer. */
  chainFor(consumerId: string): PluginChain;
}

/** Everything one config needs at request time, built once and never mutated. */
export interface Snapshot {
  /** Monotonic version within this process. */
  version: number;
  /** sha256 of the canonical config. */
  hash: string;
  config: DeclarativeConfig;
  settings: Settings;
  router: Router;
  /** Global plugins (no service, route or consumer scope). */
  globalPlugins: PluginChain;
  services: ReadonlyMap<string, CompiledService>;
  routes: ReadonlyMap<string, CompiledRoute>;
  consumers: ConsumerIndex;
  /** Consumers that have plugins scoped to them (only these change a request's chain). */
  consumersWithPlugins: ReadonlySet<string>;
  /** The certificates as SecureContexts, chosen per handshake by SNI. */
  tls: TlsContexts;
  /** Upstream runtimes by upstream id. */
  upstreams: ReadonlyMap<string, UpstreamRuntime>;
  /** Releases pools and plugin resources once no request uses this snapshot. */
  dispose(): Promise<void>;
}
