import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { Exchange, type HeaderMap, type LocalReply, type Outcome } from './exchange.js';
import { errorReply } from './reply.js';
import type { RequestIds } from './request-ids.js';
import type { BoundPlugin, PluginChain, Snapshot } from '../config/snapshot.js';
import type { SnapshotHolder } from '../runtime/holder.js';
import type { Logger } from '../observability/logger.js';
import { normalizePath } from '../lib/path.js';
import { upstreamPathV0, upstreamPathV1 } from '../router/upstream-path.js';
import { requestHeadersForUpstream, responseHeadersFromRaw } from '../proxy/headers.js';
import { UpstreamErrors, type RequestBody, type RequestHandle, type ResponseSink, type UpstreamError } from '../proxy/http1-client.js';
import { EMPTY_CHAIN } from '../config/compile.js';
import { IDENTITY_HEADERS } from './consumer.js';
import type { TargetAddress, UpstreamRuntime } from '../upstream/runtime.js';

export interface HandlerDeps {
  holder: SnapshotHolder;
  logger: Logger;
  ids: RequestIds;
  version: string;
  /** Counters read by the admin /status endpoint. */
  stats: { requests: number };
}

/** Identity headers the gateway owns: a client's copies are dropped before any plugin runs. */
const CLIENT_MAY_NOT_SEND: ReadonlySet<string> = new Set(IDENTITY_HEADERS);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Failures before anything reached the upstream: retried for any method. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', UpstreamErrors.CONNECT_TIMEOUT]);
const TIMEOUT_ERRORS = new Set([UpstreamErrors.CONNECT_TIMEOUT, UpstreamErrors.READ_TIMEOUT, UpstreamErrors.WRITE_TIMEOUT, 'ETIMEDOUT']);

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function elapsed(since: number): number {
  return Math.round(performance.now() - since);
}

/**
 * The request path: parse and normalise, route, run plugin phases, forward, stream the answer
 * back. One instance per gateway; all per-request state lives on the Exchange.
 */
export class RequestHandler {
  private readonly deps: HandlerDeps;
  private readonly via: string;
  private readonly server: string;

  constructor(deps: HandlerDeps) {
    this.deps = deps;
    this.via = `gatehouse/${deps.version}`;
    this.server = `gatehouse/${deps.version}`;
  }

  /** Entry point for node:http 'request'. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const snap = this.deps.holder.acquire();
    this.deps.stats.requests++;
    const ex = new Exchange(req, res, this.deps.ids.next(), performance.now());
    res.once('close', () => {
      ex.inFlight?.clientClosed();
      this.finish(ex, snap);
    });
    try {
      const pending = this.process(ex, snap);
      if (pending) pending.catch((err) => this.fail(ex, snap, err, undefined));
    } catch (err) {
      this.fail(ex, snap, err, undefined);
    }
  }

  private process(ex: Exchange, snap: Snapshot): Promise<void> | undefined {
    const req = ex.req;
    const url = req.url ?? '/';
    // The listener hands over origin-form targets only (absolute-form is rewritten there).
    const target = url;
    const q = target.indexOf('?');
    const rawPath = q < 0 ? target : target.slice(0, q);
    ex.query = q < 0 ? null : target.slice(q + 1);
    const path = normalizePath(rawPath);
    if (path === undefined) {
      ex.res.shouldKeepAlive = false;
      return this.reply(ex, snap, EMPTY_CHAIN, errorReply(ex, 400, 'Bad request', 'malformed request path'));
    }
    ex.path = path;

    const socket = req.socket as TLSSocket;
    ex.scheme = socket.encrypted ? 'https' : 'http';
    const hostHeader = req.headers.host ?? '';
    const colon = hostHeader.lastIndexOf(':');
    const hasPort = colon > 0 && hostHeader.indexOf(']', colon) < 0;
    ex.host = (hasPort ? hostHeader.slice(0, colon) : hostHeader).toLowerCase();
    ex.hostPort = hasPort ? Number(hostHeader.slice(colon + 1)) : (socket.localPort ?? 0);
    const peer = socket.remoteAddress ?? '';
    ex.clientIp = this.clientIp(snap, req, peer);

    const globals = snap.globalPlugins;
    if (globals.rewrite.length) {
      const out = this.runHooks(ex, globals.rewrite, 'rewrite', 0);
      if (isThenable(out)) return out.then((r) => (r ? this.reply(ex, snap, globals, r) : this.route(ex, snap)));
      if (out) return this.reply(ex, snap, globals, out);
    }
    return this.route(ex, snap);
  }

  private route(ex: Exchange, snap: Snapshot): Promise<void> | undefined {
    const req = ex.req;
    const match = snap.router.match({
      method: req.method ?? 'GET',
      host: ex.host,
      port: String(ex.hostPort),
      path: ex.path,
      headers: req.headers,
      sni: ex.scheme === 'https' ? (req.socket as TLSSocket).servername || undefined : undefined,
    });
    if (!match) return this.reply(ex, snap, snap.globalPlugins, errorReply(ex, 404, 'no Route matched with those values', 'no route'));
    const route = match.route;
    ex.route = route;
    ex.uriCaptures = match.captures;
    const chain = route.plugins;
    ex.chain = chain;

    if (!route.protocols.has(ex.scheme)) {
      if (route.httpsRedirectStatusCode === 426) {
        return this.reply(ex, snap, chain, errorReply(ex, 426, 'Please use HTTPS protocol', 'https required', { connection: 'Upgrade', upgrade: 'TLS/1.2, HTTP/1.1' }));
      }
      const location = `https://${ex.host}${req.url ?? '/'}`;
      return this.reply(ex, snap, chain, { status: route.httpsRedirectStatusCode, headers: { location }, reason: 'https redirect' });
    }
    const service = route.service;
    if (!service) return this.reply(ex, snap, chain, errorReply(ex, 503, 'no Service found with those values', 'route without service'));
    ex.service = service;

    const matchedPath = match.matchedPath;
    ex.upstreamPath =
      route.pathHandling === 'v1'
        ? upstreamPathV1(service.path, ex.path, matchedPath, route.stripPath)
        : upstreamPathV0(service.path, ex.path, matchedPath, route.stripPath);
    ex.upstreamQuery = ex.query;
    this.prepareUpstreamHeaders(ex, snap, route.stripPath && matchedPath !== '/' && matchedPath !== '' ? matchedPath : undefined);

    if (chain.mayBufferRequest.length && this.hasBody(req) && chain.mayBufferRequest.some((p) => p.instance.needsRequestBody!(ex))) {
      return this.bufferRequest(ex, snap).then((ok) => (ok ? this.access(ex, snap) : undefined));
    }
    return this.access(ex, snap);
  }

  private access(ex: Exchange, snap: Snapshot): Promise<void> | undefined {
    const chain = ex.chain!;
    if (chain.access.length) {
      const out = this.runHooks(ex, chain.access, 'access', 0);
      if (isThenable(out)) {
        return out.then((r) => {
          if (r) return this.reply(ex, snap, ex.chain!, r);
          this.forward(ex, snap, 0);
          return undefined;
        });
      }
      if (out) return this.reply(ex, snap, ex.chain!, out);
    }
    this.forward(ex, snap, 0);
    return undefined;
  }

  /**
   * Runs one phase's hooks in priority order; stays synchronous until a hook returns a promise.
   * When an access hook identifies a consumer that has plugins of its own, the rest of the phase
   * (and the later phases) run that consumer's chain for the route, as Kong does.
   */
  private runHooks(ex: Exchange, plugins: readonly BoundPlugin[], phase: 'rewrite' | 'access', from: number): Outcome | Promise<Outcome> {
    for (let i = from; i < plugins.length; i++) {
      const plugin = plugins[i]!;
      const consumerBefore = ex.consumer;
      let out: Outcome | Promise<Outcome>;
      try {
        out = plugin.instance[phase]!(ex);
      } catch (err) {
        return this.pluginError(ex, plugin, phase, err);
      }
      if (isThenable(out)) {
        return (out as Promise<Outcome>).then(
          (r) => r ?? this.continueHooks(ex, plugins, phase, i, consumerBefore),
          (err) => this.pluginError(ex, plugin, phase, err),
        );
      }
      if (out) return out;
      if (ex.consumer !== consumerBefore && phase === 'access') return this.continueHooks(ex, plugins, phase, i, consumerBefore);
    }
    return undefined;
  }

  private continueHooks(ex: Exchange, plugins: readonly BoundPlugin[], phase: 'rewrite' | 'access', done: number, consumerBefore: unknown): Outcome | Promise<Outcome> {
    const consumer = ex.consumer;
    if (phase === 'access' && consumer && consumer !== consumerBefore && ex.route) {
      const chain = ex.route.chainFor(consumer.id);
      if (chain !== ex.chain) {
        ex.chain = chain;
        const priority = plugins[done]!.priority;
        const rest = chain.access.filter((p) => p.priority < priority);
        return this.runHooks(ex, rest, phase, 0);
      }
    }
    return this.runHooks(ex, plugins, phase, done + 1);
  }

  private pluginError(ex: Exchange, plugin: BoundPlugin, phase: string, err: unknown): LocalReply {
    this.deps.logger.error({ err, plugin: plugin.name, phase, request_id: ex.requestId }, 'plugin failed');
    return errorReply(ex, 500, 'An unexpected error occurred', `plugin ${plugin.name} failed in ${phase}`);
  }

  private clientIp(snap: Snapshot, req: IncomingMessage, peer: string): string {
    const s = snap.settings;
    if (s.trusted.empty || !s.trusted.has(peer)) return peer;
    const header = req.headers[s.realIpHeader];
    const value = Array.isArray(header) ? header.join(',') : header;
    if (!value) return peer;
    const hops = value.split(',').map((h) => h.trim()).filter(Boolean);
    if (!s.realIpRecursive) return hops[hops.length - 1] ?? peer;
    for (let i = hops.length - 1; i >= 0; i--) if (!s.trusted.has(hops[i]!)) return hops[i]!;
    return hops[0] ?? peer;
  }

  private prepareUpstreamHeaders(ex: Exchange, snap: Snapshot, strippedPrefix: string | undefined): void {
    const req = ex.req;
    const h = requestHeadersForUpstream(req.rawHeaders, req.headers.connection, CLIENT_MAY_NOT_SEND);
    const peer = req.socket.remoteAddress ?? '';
    const trusted = !snap.settings.trusted.empty && snap.settings.trusted.has(peer);
    const xff = h['x-forwarded-for'];
    h['x-forwarded-for'] = xff === undefined ? peer : `${Array.isArray(xff) ? xff.join(', ') : xff}, ${peer}`;
    if (!trusted || h['x-forwarded-proto'] === undefined) h['x-forwarded-proto'] = ex.scheme;
    if (!trusted || h['x-forwarded-host'] === undefined) h['x-forwarded-host'] = ex.host;
    if (!trusted || h['x-forwarded-port'] === undefined) h['x-forwarded-port'] = String(req.socket.localPort ?? '');
    if (!trusted || h['x-forwarded-path'] === undefined) h['x-forwarded-path'] = ex.path;
    if (!trusted || h['x-forwarded-prefix'] === undefined) {
      if (strippedPrefix) h['x-forwarded-prefix'] = strippedPrefix;
      else delete h['x-forwarded-prefix'];
    }
    h['x-real-ip'] = ex.clientIp;
    if (snap.settings.viaHeader) {
      const via = `${req.httpVersion} ${this.via}`;
      const prev = h.via;
      h.via = prev === undefined ? via : `${Array.isArray(prev) ? prev.join(', ') : prev}, ${via}`;
    }
    if (snap.settings.requestIdUpstream) h['x-gatehouse-request-id'] = ex.requestId;
    h.host = ex.route!.preserveHost ? (req.headers.host ?? ex.service!.hostHeader) : ex.service!.hostHeader;
    ex.upstreamHeaders = h;
  }

  private hasBody(req: IncomingMessage): boolean {
    const cl = req.headers['content-length'];
    return (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
  }

  private bufferRequest(ex: Exchange, snap: Snapshot): Promise<boolean> {
    const limit = snap.settings.maxRequestBodyBuffer;
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const req = ex.req;
      const onData = (c: Buffer) => {
        size += c.length;
        if (size > limit) {
          cleanup();
          void this.reply(ex, snap, ex.chain!, errorReply(ex, 413, 'Request size limit exceeded', 'request body larger than the buffer limit'));
          resolve(false);
          return;
        }
        chunks.push(c);
      };
      const onEnd = () => {
        cleanup();
        ex.requestBody = Buffer.concat(chunks, size);
        resolve(true);
      };
      const onError = () => {
        cleanup();
        resolve(false);
      };
      const cleanup = () => {
        req.off('data', onData).off('end', onEnd).off('error', onError);
      };
      req.on('data', onData).on('end', onEnd).on('error', onError);
    });
  }

  /** Sends the request upstream (attempt 0 is the first try). */
  private forward(ex: Exchange, snap: Snapshot, attempt: number): void {
    const service = ex.service!;
    const req = ex.req;
    let body: RequestBody = null;
    let contentLength: number | undefined;
    if (ex.requestBody !== undefined) {
      if (ex.requestBodyLimit !== undefined && ex.requestBody.length > ex.requestBodyLimit) {
        return this.upstreamFailed(ex, snap, attempt, Object.assign(new Error(`request body larger than ${ex.requestBodyLimit} bytes`), { code: BODY_TOO_LARGE }));
      }
      body = ex.requestBody;
    } else if (this.hasBody(req)) {
      body = ex.requestBodyLimit === undefined ? req : limitBody(req, ex.requestBodyLimit);
      const cl = req.headers['content-length'];
      if (cl !== undefined && req.headers['transfer-encoding'] === undefined) contentLength = Number(cl);
    }
    let pool = service.pool;
    let address: TargetAddress | undefined;
    const balanced = service.upstream;
    if (balanced !== undefined) {
      const runtime = balanced.runtime;
      const waiting = runtime.ready;
      if (waiting) {
        // A target host name is still being resolved for the first time (just after a reload).
        void waiting.then(() => {
          if (!ex.res.destroyed) this.forward(ex, snap, attempt);
        });
        return;
      }
      const previous = ex.tried === undefined ? undefined : (ex.tried[ex.tried.length - 1] as TargetAddress);
      address = runtime.pick(ex, ex.tried);
      if (address === undefined) {
        if (attempt === 0) ex.proxyLatency = elapsed(ex.startedAt);
        this.deps.logger.warn({ request_id: ex.requestId, upstream: runtime.name, attempts: attempt }, 'no healthy upstream target');
        void this.reply(ex, snap, ex.chain ?? EMPTY_CHAIN, errorReply(ex, 503, 'failure to get a peer from the ring-balancer', `upstream ${runtime.name}: no healthy target`));
        return;
      }
      (ex.tried ??= []).push(address);
      pool = balanced.poolFor(address);
      // Kong sends the target's host (or upstream.host_header) unless preserve_host is on or a plugin set its own.
      const h = ex.upstreamHeaders;
      if (!ex.route!.preserveHost && (h.host === service.hostHeader || (previous !== undefined && h.host === previous.hostHeader))) h.host = address.hostHeader;
      address.inflight++;
    }
    if (attempt === 0) ex.proxyLatency = elapsed(ex.startedAt);
    const call = new UpstreamCall(this, ex, snap, attempt, performance.now(), address, balanced?.runtime);
    call.handle = pool.http1.request(
      {
        method: ex.method,
        path: ex.upstreamQuery === null ? ex.upstreamPath : `${ex.upstreamPath}?${ex.upstreamQuery}`,
        headers: ex.upstreamHeaders,
        body,
        contentLength,
        readTimeout: service.readTimeout,
        writeTimeout: service.writeTimeout,
      },
      call,
    );
  }

  /** Called by UpstreamCall when the upstream failed before a response started. */
  upstreamFailed(ex: Exchange, snap: Snapshot, attempt: number, err: Error & { code?: string }): void {
    if (ex.res.destroyed) return;
    const code = err.code ?? '';
    if (code === BODY_TOO_LARGE) {
      // The rest of the body stays unread: answer, then close the connection.
      ex.res.shouldKeepAlive = false;
      const expect = ex.req.headers.expect?.toLowerCase() === '100-continue';
      void this.reply(ex, snap, ex.chain ?? EMPTY_CHAIN, errorReply(ex, expect ? 417 : 413, 'Request size limit exceeded', err.message));
      return;
    }
    const connectFailure = CONNECT_ERRORS.has(code);
    const replayable = ex.requestBody !== undefined || !this.hasBody(ex.req) || (!ex.req.readableDidRead && !ex.req.destroyed);
    // A refused upstream certificate is refused again on the next try to the same origin.
    const tlsRefused = code === UpstreamErrors.TLS_VERIFY;
    const retryable = replayable && !tlsRefused && (connectFailure || IDEMPOTENT.has(ex.method));
    if (retryable && attempt < ex.service!.retries) {
      this.forward(ex, snap, attempt + 1);
      return;
    }
    const timeout = TIMEOUT_ERRORS.has(code);
    this.deps.logger.warn(
      { err: { code, message: err.message }, request_id: ex.requestId, service: ex.service?.name, attempts: attempt + 1 },
      tlsRefused ? 'upstream TLS certificate verification failed' : 'upstream request failed',
    );
    void this.reply(
      ex,
      snap,
      ex.chain ?? EMPTY_CHAIN,
      timeout
        ? errorReply(ex, 504, 'The upstream server is timing out', `upstream timeout (${code})`)
        : errorReply(ex, 502, 'An invalid response was received from the upstream server', `upstream error (${code || err.message})`),
    );
  }

  /** Status and headers from the upstream: decorate, run response hooks, then start the client response. */
  upstreamResponded(
    ex: Exchange,
    snap: Snapshot,
    status: number,
    rawHeaders: string[],
    sentAt: number,
  ): BoundPlugin[] | undefined | Promise<BoundPlugin[] | undefined> {
    ex.upstreamLatency = elapsed(sentAt);
    ex.status = status;
    const h = responseHeadersFromRaw(rawHeaders);
    const s = snap.settings;
    if (s.viaHeader) {
      const prev = h.via;
      h.via = prev === undefined ? `1.1 ${this.via}` : `${Array.isArray(prev) ? prev.join(', ') : prev}, 1.1 ${this.via}`;
    }
    if (s.serverHeader && h.server === undefined) h.server = this.server;
    if (s.upstreamLatencyHeader) h['x-gatehouse-upstream-latency'] = String(ex.upstreamLatency);
    if (s.proxyLatencyHeader) h['x-gatehouse-proxy-latency'] = String(ex.proxyLatency);
    if (s.requestIdHeader) h['x-gatehouse-request-id'] = ex.requestId;
    if (ex.balancerCookie !== undefined) {
      const prev = h['set-cookie'];
      h['set-cookie'] = prev === undefined ? ex.balancerCookie : [...(Array.isArray(prev) ? prev : [prev]), ex.balancerCookie];
    }
    ex.responseHeaders = h;
    const chain = ex.chain!;
    if (chain.response.length) {
      const out = this.runResponseHooks(ex, chain.response, 0);
      if (isThenable(out)) return out.then(() => this.wantsResponseBody(ex, chain));
    }
    return this.wantsResponseBody(ex, chain);
  }

  /** The plugins that want this response's body buffered (undefined: stream it). */
  private wantsResponseBody(ex: Exchange, chain: PluginChain): BoundPlugin[] | undefined {
    if (!chain.mayBufferResponse.length || ex.req.method === 'HEAD' || ex.status === 204 || ex.status === 304) return undefined;
    const wanting = chain.mayBufferResponse.filter((p) => p.instance.needsResponseBody!(ex));
    return wanting.length ? wanting : undefined;
  }

  private runResponseHooks(ex: Exchange, plugins: readonly BoundPlugin[], from: number): void | Promise<void> {
    for (let i = from; i < plugins.length; i++) {
      const plugin = plugins[i]!;
      try {
        const out = plugin.instance.response!(ex);
        if (isThenable(out)) {
          return (out as Promise<void>).then(
            () => this.runResponseHooks(ex, plugins, i + 1),
            (err) => void this.deps.logger.error({ err, plugin: plugin.name, phase: 'response', request_id: ex.requestId }, 'plugin failed'),
          );
        }
      } catch (err) {
        this.deps.logger.error({ err, plugin: plugin.name, phase: 'response', request_id: ex.requestId }, 'plugin failed');
      }
    }
  }

  /** Runs body hooks over a buffered response body; returns the body to send. */
  transformBody(ex: Exchange, body: Buffer, plugins: readonly BoundPlugin[]): Buffer {
    for (const plugin of plugins) {
      if (!plugin.instance.responseBody) continue;
      try {
        body = plugin.instance.responseBody(ex, body);
      } catch (err) {
        this.deps.logger.error({ err, plugin: plugin.name, phase: 'body', request_id: ex.requestId }, 'plugin failed');
      }
    }
    return body;
  }

  /** Sends a response produced by the gateway (router, plugin, upstream failure). */
  reply(ex: Exchange, snap: Snapshot, chain: PluginChain, reply: LocalReply): Promise<void> | undefined {
    const res = ex.res;
    if (res.headersSent || res.destroyed) return undefined;
    ex.localReply = true;
    ex.reason = reply.reason;
    ex.status = reply.status;
    let body: Buffer | undefined;
    const h: HeaderMap = {};
    if (reply.body !== undefined && reply.body !== null) {
      if (typeof reply.body === 'string' || Buffer.isBuffer(reply.body)) body = Buffer.isBuffer(reply.body) ? reply.body : Buffer.from(reply.body);
      else {
        body = Buffer.from(JSON.stringify(reply.body));
        h['content-type'] = 'application/json; charset=utf-8';
      }
    }
    if (reply.headers) for (const k in reply.headers) h[k.toLowerCase()] = reply.headers[k]!;
    const s = snap.settings;
    if (s.serverHeader) h.server = this.server;
    if (s.responseLatencyHeader) h['x-gatehouse-response-latency'] = String(elapsed(ex.startedAt));
    if (s.requestIdHeader) h['x-gatehouse-request-id'] = ex.requestId;
    ex.responseHeaders = h;
    ex.responseBody = body;
    const send = () => {
      if (res.headersSent || res.destroyed) return;
      const out = ex.responseBody;
      const wanting = out && this.wantsResponseBody(ex, chain);
      if (out && wanting) ex.responseBody = this.transformBody(ex, out, wanting);
      const final = ex.responseBody;
      const headers = ex.responseHeaders;
      delete headers['transfer-encoding'];
      const status = ex.status;
      if (status === 204 || status === 304 || status < 200) {
        // No body by definition; a 304 may keep the Content-Length a plugin gave it (of the stored representation).
        if (status !== 304) delete headers['content-length'];
      } else if (final) headers['content-length'] = String(final.length);
      else if (!(ex.req.method === 'HEAD' && headers['content-length'] !== undefined)) headers['content-length'] = '0';
      res.writeHead(status, headers as Record<string, string | string[]>);
      res.end(ex.req.method === 'HEAD' ? undefined : final);
      // Unread request bodies of short-circuited requests are drained; huge ones close the connection.
      if (!ex.req.complete) this.discardBody(ex);
    };
    if (chain.response.length) {
      const out = this.runResponseHooks(ex, chain.response, 0);
      if (isThenable(out)) return out.then(send);
    }
    send();
    return undefined;
  }

  private discardBody(ex: Exchange): void {
    const req = ex.req;
    let seen = 0;
    req.on('data', (c: Buffer) => {
      seen += c.length;
      if (seen > 1_048_576) req.socket.destroy();
    });
    req.resume();
  }

  /** A response-phase hook failed: 500 if nothing was sent yet, otherwise cut the connection. */
  responseFailed(ex: Exchange, snap: Snapshot, err: unknown): void {
    this.fail(ex, snap, err, undefined);
  }

  private fail(ex: Exchange, snap: Snapshot, err: unknown, plugin: string | undefined): void {
    this.deps.logger.error({ err, plugin, request_id: ex.requestId }, 'request failed');
    if (!ex.res.headersSent) void this.reply(ex, snap, EMPTY_CHAIN, errorReply(ex, 500, 'An unexpected error occurred', 'internal error'));
    else ex.res.destroy();
  }

  private finish(ex: Exchange, snap: Snapshot): void {
    const chain = ex.chain ?? snap.globalPlugins;
    for (const p of chain.log) {
      try {
        p.instance.log!(ex);
      } catch (err) {
        this.deps.logger.error({ err, plugin: p.name, phase: 'log', request_id: ex.requestId }, 'plugin failed');
      }
    }
    if (snap.settings.accessLog) {
      this.deps.logger.info(
        {
          type: 'access',
          request_id: ex.requestId,
          method: ex.req.method,
          path: ex.path,
          route: ex.route?.name ?? ex.route?.id,
          service: ex.service?.name ?? ex.service?.id,
          status: ex.res.writableFinished ? ex.status || ex.res.statusCode : 499,
          client_ip: ex.clientIp,
          latency_ms: elapsed(ex.startedAt),
          upstream_latency_ms: ex.upstreamLatency,
          proxy_latency_ms: ex.proxyLatency,
          target: ex.tried === undefined ? undefined : ex.tried[ex.tried.length - 1]!.key,
          reason: ex.reason,
        },
        'request',
      );
    }
    this.deps.holder.release(snap);
  }
}

const BODY_TOO_LARGE = 'GH_BODY_TOO_LARGE';
/** What a failed attempt counts as in the latency balancer's average (ms). */
const FAILURE_LATENCY_MS = 1000;

/** The request stream, failing once more than `limit` bytes went through (no buffering). */
async function* limitBody(req: IncomingMessage, limit: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of req) {
    seen += (chunk as Buffer).length;
    if (seen > limit) throw Object.assign(new Error(`streamed request body larger than ${limit} bytes`), { code: BODY_TOO_LARGE });
    yield chunk as Buffer;
  }
}

/** The response side of one attempt: streams the upstream response to the client with backpressure. */
class UpstreamCall implements ResponseSink {
  handle: RequestHandle | undefined;
  private started = false;
  private chunks: Buffer[] | undefined;
  private bodyPlugins: BoundPlugin[] | undefined;
  private size = 0;
  /** Response hooks are still running (async): body chunks wait here. */
  private waiting: Buffer[] | undefined;
  private endedWhileWaiting = false;
  /** Resumes the upstream once the client took what was written (set while waiting for 'drain'). */
  private onDrain: (() => void) | undefined;
  /** The balanced target's in-flight count was given back. */
  private settled = false;

  constructor(
    private readonly handler: RequestHandler,
    private readonly ex: Exchange,
    private readonly snap: Snapshot,
    private readonly attempt: number,
    private readonly sentAt: number,
    /** Balanced services: the target address of this attempt and its upstream. */
    private readonly address: TargetAddress | undefined,
    private readonly upstream: UpstreamRuntime | undefined,
  ) {
    // The handler's one 'close' listener tells this attempt (no listener per attempt).
    ex.inFlight = this;
  }

  /** The client connection closed: stop the upstream call unless the response was complete. */
  clientClosed(): void {
    if (this.ex.res.writableFinished) return;
    this.handle?.abort();
    this.settle();
  }

  /** This attempt is over: no more client events for it. */
  private detach(res: Exchange['res']): void {
    if (this.ex.inFlight === this) this.ex.inFlight = undefined;
    if (this.onDrain !== undefined) {
      res.off('drain', this.onDrain);
      this.onDrain = undefined;
    }
  }

  /** Gives back the target's in-flight slot (once per attempt). */
  private settle(): void {
    if (this.settled || this.address === undefined) return;
    this.settled = true;
    this.address.inflight--;
  }

  onHeaders(status: number, rawHeaders: string[]): void {
    this.started = true;
    if (this.address !== undefined) {
      // Passive health checks and the latency balancer judge a target by its response head.
      const now = performance.now();
      this.upstream!.observe(this.address, now - this.sentAt, now);
      this.upstream!.health.reportStatus(this.address, status);
    }
    const res = this.ex.res;
    if (res.destroyed) return;
    let wantsBody: BoundPlugin[] | undefined | Promise<BoundPlugin[] | undefined>;
    try {
      wantsBody = this.handler.upstreamResponded(this.ex, this.snap, status, rawHeaders, this.sentAt);
    } catch (err) {
      this.handle?.abort();
      this.handler.responseFailed(this.ex, this.snap, err);
      return;
    }
    if (isThenable(wantsBody)) {
      this.waiting = [];
      wantsBody.then(
        (plugins) => {
          const pending = this.waiting!;
          this.waiting = undefined;
          this.begin(plugins);
          for (const c of pending) this.onData(c);
          if (this.endedWhileWaiting) this.onEnd();
          else this.handle?.resume();
        },
        (err) => {
          this.handle?.abort();
          this.handler.responseFailed(this.ex, this.snap, err);
        },
      );
    } else this.begin(wantsBody);
  }

  private begin(bodyPlugins: BoundPlugin[] | undefined): void {
    const res = this.ex.res;
    if (res.destroyed) return;
    if (bodyPlugins) {
      this.bodyPlugins = bodyPlugins;
      this.chunks = [];
      return;
    }
    res.writeHead(this.ex.status, this.ex.responseHeaders as Record<string, string | string[]>);
  }

  onData(chunk: Buffer): boolean {
    if (this.waiting) {
      this.waiting.push(chunk);
      return false;
    }
    const res = this.ex.res;
    if (res.destroyed) return true;
    if (this.chunks) {
      this.size += chunk.length;
      if (this.size <= this.snap.settings.maxResponseBodyBuffer) {
        this.chunks.push(chunk);
        return true;
      }
      // Too large to transform: send what we have untransformed and stream the rest.
      const pending = this.chunks;
      this.chunks = undefined;
      this.begin(undefined);
      for (const c of pending) res.write(c);
    }
    if (res.write(chunk)) return true;
    // The client is slower than the upstream: the upstream pauses until the client drains.
    if (this.onDrain === undefined) {
      this.onDrain = () => {
        this.onDrain = undefined;
        this.handle?.resume();
      };
      res.once('drain', this.onDrain);
    }
    return false;
  }

  onEnd(): void {
    this.settle();
    if (this.waiting) {
      this.endedWhileWaiting = true;
      return;
    }
    const res = this.ex.res;
    this.detach(res);
    if (res.destroyed) return;
    if (this.chunks) {
      const body = this.handler.transformBody(this.ex, Buffer.concat(this.chunks, this.size), this.bodyPlugins!);
      const h = this.ex.responseHeaders;
      delete h['transfer-encoding'];
      h['content-length'] = String(body.length);
      res.writeHead(this.ex.status, h as Record<string, string | string[]>);
      res.end(body);
      return;
    }
    res.end();
  }

  onError(err: UpstreamError): void {
    if (this.address !== undefined && !this.settled && err.code !== BODY_TOO_LARGE) {
      const now = performance.now();
      const timeout = TIMEOUT_ERRORS.has(err.code ?? '');
      this.upstream!.health.reportFailure(this.address, timeout ? 'timeout' : 'tcp');
      // A fast failure must not make a target look fast to the latency balancer.
      this.upstream!.observe(this.address, Math.max(now - this.sentAt, FAILURE_LATENCY_MS), now);
    }
    this.settle();
    const res = this.ex.res;
    this.detach(res);
    if (!this.started || (!res.headersSent && (this.chunks || this.waiting))) {
      if (this.started) this.ex.reason = 'upstream failed mid-body';
      this.waiting = undefined;
      this.handler.upstreamFailed(this.ex, this.snap, this.attempt, err);
      return;
    }
    // Part of the response already went out: cut the client connection so it sees a truncated body.
    this.ex.reason = `upstream failed mid-body (${err.code})`;
    res.destroy();
  }
}
