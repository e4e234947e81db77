import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CompiledRoute, CompiledService, PluginChain } from '../config/snapshot.js';
import type { Consumer, Credential } from '../config/consumers.js';
import type { Address } from '../upstream/types.js';

export type HeaderValue = string | string[];
/** Header map with lower-case names, as plugins see and edit it. */
export type HeaderMap = Record<string, HeaderValue>;

/** A response produced by the gateway itself (a plugin, the router, an upstream failure). */
export interface LocalReply {
  status: number;
  /** A string or Buffer is sent as is; anything else is sent as JSON. Omitted: empty body. */
  body?: unknown;
  headers?: Record<string, HeaderValue>;
  /** Short reason for the access log, e.g. "key-auth: no key". */
  reason: string;
}

/** What an access or rewrite hook returns: nothing to continue, a reply to short-circuit. */
export type Outcome = LocalReply | undefined | void;

/**
 * One request as it crosses the gateway. Created once per request; plugins read and edit it.
 * Fields are all assigned in the constructor so every instance has the same shape.
 */
export class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  /** Method sent upstream; request-transformer may change it. */
  method: string;
  /** Request host, lower case, without port ("" when absent). */
  host: string;
  /** Port from the Host header, or the listener's port. */
  hostPort: number;
  /** Normalised request path (percent-decoded unreserved characters, no dot segments): the path matched. */
  path: string;
  /** Raw query string without the "?", or null when the request had no "?". */
  query: string | null;
  scheme: 'http' | 'https';
  /** The client address after trusted-proxy (real IP) processing. */
  clientIp: string;
  route: CompiledRoute | undefined;
  service: CompiledService | undefined;
  /** Named and positional captures of a regex route path. */
  uriCaptures: Record<string, string> | undefined;
  /** Path sent upstream (computed from the route and service; plugins may replace it). */
  upstreamPath: string;
  /** Query string sent upstream, without "?" (null: none). */
  upstreamQuery: string | null;
  /** Headers sent upstream, lower-case names, hop-by-hop already removed. */
  upstreamHeaders: HeaderMap;
  /** The whole request body, when a plugin on the route asked for it to be buffered. */
  requestBody: Buffer | undefined;
  /**
   * Most bytes of a streamed request body (one without Content-Length) to forward; set in access.
   * Crossing it aborts the upstream call and answers 413 (417 with Expect: 100-continue).
   */
  requestBodyLimit: number | undefined;
  /** Response status (from upstream or a local reply). */
  status: number;
  /** Response headers sent to the client, lower-case names. */
  responseHeaders: HeaderMap;
  /** The whole response body, when a plugin asked for it to be buffered. */
  responseBody: Buffer | undefined;
  /** True when the response came from the gateway, not the upstream. */
  localReply: boolean;
  /** Reason of the local reply, for the access log. */
  reason: string | undefined;
  /** Milliseconds spent waiting for the upstream's response headers (-1: no upstream call). */
  upstreamLatency: number;
  /** Milliseconds the gateway spent before sending upstream (-1: not proxied). */
  proxyLatency: number;
  /** Per-request state shared between plugins (like kong.ctx.shared). */
  shared: Record<string, unknown>;
  /** The plugins running for this request: the route's, or the identified consumer's for that route. */
  chain: PluginChain | undefined;
  /** The authenticated (or anonymous) consumer, set by an auth plugin through setConsumer(). */
  consumer: Consumer | undefined;
  /** The credential that authenticated the consumer (undefined for anonymous). */
  credential: Credential | undefined;
  /** Groups set by an auth plugin that knows them (e.g. from token claims), as Kong's authenticated_groups. */
  authenticatedGroups: string[] | undefined;
  /** Balanced services: the addresses tried so far (the last is the current one). */
  tried: Address[] | undefined;
  /** hash_on "cookie" gave the client a new cookie: the Set-Cookie value to add to the response. */
  balancerCookie: string | undefined;
  /** Internal: the upstream attempt in progress, told when the client connection closes. */
  inFlight: { clientClosed(): void } | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, requestId: string, startedAt: number) {
    this.req = req;
    this.res = res;
    this.requestId = requestId;
    this.startedAt = startedAt;
    this.method = req.method ?? 'GET';
    this.host = '';
    this.hostPort = 0;
    this.path = '/';
    this.query = null;
    this.scheme = 'http';
    this.clientIp = '';
    this.route = undefined;
    this.service = undefined;
    this.uriCaptures = undefined;
    this.upstreamPath = '/';
    this.upstreamQuery = null;
    this.upstreamHeaders = {};
    this.requestBody = undefined;
    this.requestBodyLimit = undefined;
    this.status = 0;
    this.responseHeaders = {};
    this.responseBody = undefined;
    this.localReply = false;
    this.reason = undefined;
    this.upstreamLatency = -1;
    this.proxyLatency = -1;
    this.shared = {};
    this.chain = undefined;
    this.consumer = undefined;
    this.credential = undefined;
    this.authenticatedGroups = undefined;
    this.tried = undefined;
    this.balancerCookie = undefined;
    this.inFlight = undefined;
  }
}
