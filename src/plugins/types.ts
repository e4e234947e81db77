import type { Static, TSchema } from '@sinclair/typebox';
import type { Logger } from '../observability/logger.js';
import type { Exchange, Outcome } from '../pipeline/exchange.js';
import type { ConsumerIndex } from '../config/consumers.js';
import type { GatewayScope } from '../runtime/gateway-scope.js';
import type { LimitStore } from '../cluster/limit-types.js';
import type { RedisRegistry } from '../cluster/redis.js';
import type { NormalCaCertificate } from '../tls/ca-certificates.js';

/** What a plugin instance may use. Passed in, never imported as module state. */
export interface PluginDeps {
  logger: Logger;
  /** Stable id of this gateway node (uuid). */
  nodeId: string;
  /** Worker number within the node (1-based; 0 in single-process mode). */
  workerId: number;
  version: string;
  /** Consumers and credentials of the snapshot being built. */
  consumers: ConsumerIndex;
  /** Id of the plugin entity being created (stable across reloads that keep the entity). */
  pluginId?: string;
  /** State kept for the gateway's life, across snapshots (keyed by plugin name). */
  scope: GatewayScope;
  /**
   * Node-local rate-limit counters (the `local` policy): in this process, or in the cluster primary
   * over IPC. Owned by the gateway, so counts survive reloads. Absent outside a Gateway (unit tests).
   */
  counters?: LimitStore;
  /** The gateway's shared Redis clients, one per distinct connection config. Absent outside a Gateway. */
  redis?: RedisRegistry;
  /** Wall clock in ms since the epoch (tests pass a controllable one). Default Date.now. */
  now?: () => number;
  /** The snapshot's ca_certificates by id (ids a plugin lists in `references` are known to exist). */
  caCertificates?: ReadonlyMap<string, NormalCaCertificate>;
}

/** An id in a plugin's config that names another entity; the config is refused when it does not exist. */
export interface PluginReference {
  /** Path inside `config`, e.g. "ca_certificates[0]". */
  field: string;
  table: 'ca_certificates';
  id: string;
}

/**
 * A plugin bound to one config (one per plugin entity, per snapshot). Hooks that do no I/O
 * stay synchronous: an await per plugin per request is measurable on the hot path.
 */
export interface PluginInstance {
  /** Before routing; only global plugins run it. */
  rewrite?(ex: Exchange): Outcome | Promise<Outcome>;
  /** After routing, before the upstream call: auth, limits, request edits. Return a reply to short-circuit. */
  access?(ex: Exchange): Outcome | Promise<Outcome>;
  /** Response status and headers are known (ex.status, ex.responseHeaders); edit headers here. Runs for local replies too. */
  response?(ex: Exchange): void | Promise<void>;
  /** Whole response body (only when needsResponseBody(ex) said so); returns the body to send. */
  responseBody?(ex: Exchange, body: Buffer): Buffer;
  /** After the response is sent. Must not throw. */
  log?(ex: Exchange): void;
  /** Asked after routing: does access need ex.requestBody buffered for this request? */
  needsRequestBody?(ex: Exchange): boolean;
  /** Asked in the response phase: should the response body be buffered and passed to responseBody? */
  needsResponseBody?(ex: Exchange): boolean;
  /**
   * Admin API requests the core does not answer itself (e.g. `DELETE /proxy-cache/{key}`) are
   * offered to every plugin instance of the live snapshot; return an answer, or undefined to pass.
   */
  admin?(request: AdminRequest): AdminAnswer | undefined | Promise<AdminAnswer | undefined>;
  /** When the snapshot that owns this instance is retired. */
  dispose?(): Promise<void> | void;
}

/** An admin API request as plugins see it (already parsed; body is parsed JSON or undefined). */
export interface AdminRequest {
  method: string;
  /** Path without the query string, e.g. "/proxy-cache/abc". */
  path: string;
  query: URLSearchParams;
  body: unknown;
}

export interface AdminAnswer {
  status: number;
  /** Sent as JSON; omitted: empty body. */
  body?: unknown;
}

/** A plugin: one folder, one declaration of its config schema (validation, type and docs). */
export interface PluginDefinition<S extends TSchema = TSchema> {
  /** kebab-case; the folder name, the registry key and the config `name`. */
  name: string;
  /** Higher runs first (Kong's bands: auth ~1000-1500, rate limit ~900, transforms ~800, cache ~100, logging ~10). */
  priority: number;
  /** The `config` schema, with defaults. */
  schema: S;
  /** Cross-field rules the schema cannot express; returns an error message naming the field, or undefined. */
  check?(config: Static<S>): string | undefined;
  /** Binds the validated config once per snapshot. */
  create(config: Static<S>, deps: PluginDeps): PluginInstance;
  /** Ids of other entities the config names; each must exist (the error names the field). */
  references?(config: Static<S>): readonly PluginReference[];
  /**
   * For plugins that authenticate by client certificate: while an enabled instance is live, the
   * HTTPS listener asks every client for a certificate (never requiring one). Returns the
   * ca_certificates ids whose names go into that request (Kong's send_ca_dn).
   */
  clientCertificateRequest?(config: Static<S>): { caNames: readonly string[] };
}

/** Helper that keeps the config type tied to the schema. */
export function definePlugin<S extends TSchema>(def: PluginDefinition<S>): PluginDefinition<S> {
  return def;
}
