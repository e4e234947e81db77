/**
 * The proxy's HTTP/1.1 client to upstreams: keep-alive connections, one request at a time per
 * connection, responses parsed by Node's own llhttp binding (strict mode, the parser node:http
 * uses), bodies streamed both ways with backpressure.
 *
 * Why not undici here: on the benchmark (docs/performance.md) undici's dispatch path cost about
 * 30 µs of CPU per proxied request; this client does the same work with one write per request
 * head, no per-request Request object or header re-validation pass, and Kong's read/write
 * timeouts as socket idle timeouts. undici stays for plugins that call out (JWKS, revalidation).
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Readable } from 'node:stream';
import type { HeaderMap } from '../pipeline/exchange.js';
import { HTTPParser, consumeSocket, socketReadActivity, type HTTPParserInstance, type StreamHandle } from '../lib/llhttp.js';

/** Coded upstream failures; the handler maps them to 502/504 and decides about retries. */
export const UpstreamErrors = {
  CONNECT_TIMEOUT: 'GH_UPSTREAM_CONNECT_TIMEOUT',
  READ_TIMEOUT: 'GH_UPSTREAM_READ_TIMEOUT',
  WRITE_TIMEOUT: 'GH_UPSTREAM_WRITE_TIMEOUT',
  /** The connection closed before a complete response. */
  CLOSED: 'GH_UPSTREAM_CLOSED',
  /** A kept-alive connection was closed by the upstream before any response byte (safe to retry idempotent requests). */
  STALE: 'GH_UPSTREAM_STALE_CONNECTION',
  BAD_RESPONSE: 'GH_UPSTREAM_BAD_RESPONSE',
  BAD_REQUEST: 'GH_UPSTREAM_BAD_REQUEST_BODY',
  POOL_CLOSED: 'GH_UPSTREAM_POOL_CLOSED',
  /** The upstream's certificate failed verification (chain, name, date or tls_verify_depth). */
  TLS_VERIFY: 'GH_UPSTREAM_TLS_VERIFY',
} as const;

export type UpstreamError = Error & { code: string };

function upstreamError(code: string, message: string, cause?: unknown): UpstreamError {
  return Object.assign(new Error(message, cause ? { cause } : undefined), { code });
}

/** The receiving side of one upstream request (the proxy's per-request handler implements it). */
export interface ResponseSink {
  /** Status and raw header list (name, value, name, value...). */
  onHeaders(status: number, rawHeaders: string[], statusMessage: string): void;
  /** A body chunk; return false to pause reading until `resume()` is called on the handle. */
  onData(chunk: Buffer): boolean;
  onEnd(): void;
  /** Before onHeaders: nothing was sent to the client yet. After: the response is broken mid-body. */
  onError(err: UpstreamError): void;
}

export type RequestBody = null | Buffer | Readable | AsyncIterable<Buffer>;

export interface UpstreamRequest {
  method: string;
  /** Path and query, already normalised. */
  path: string;
  /** Lower-case names; must include host. content-length / transfer-encoding are set here from the body. */
  headers: HeaderMap;
  body: RequestBody;
  /** Length of a streamed body when the client declared one (forwarded as Content-Length). */
  contentLength: number | undefined;
  /** Milliseconds without a byte from the upstream before giving up (Kong's read_timeout). */
  readTimeout: number;
  /** Milliseconds without progress writing the request body (Kong's write_timeout). */
  writeTimeout: number;
}

/** Returned by request(): lets the caller resume a paused response or abort the call. */
export interface RequestHandle {
  resume(): void;
  abort(): void;
}

export interface Http1PoolOptions {
  protocol: 'http' | 'https';
  host: string;
  port: number;
  connectTimeout: number;
  /** Most connections (busy + idle). */
  maxConnections: number;
  /** Milliseconds an idle connection stays open. */
  keepAliveTimeout: number;
  /** Verify the upstream's certificate (https). */
  tlsVerify: boolean;
  /** TLS server name when it is not `host` (a balanced target: host is its IP, this its host name). */
  servername?: string | undefined;
  /** Most intermediates allowed in the upstream's verified chain (https with tlsVerify). */
  tlsVerifyDepth?: number | undefined;
  /** Trust store and client certificate of the TLS connections (https); node's defaults when absent. */
  secureContext?: tls.SecureContext | undefined;
  maxHeaderSize: number;
}

/** Intermediates between the peer's certificate and the anchor of the chain node reports. */
function intermediates(cert: tls.DetailedPeerCertificate): number {
  let n = 0;
  let c = cert;
  // Node links the last certificate (the anchor) to itself.
  while (c.issuerCertificate && c.issuerCertificate !== c && c.issuerCertificate.fingerprint256 !== c.fingerprint256) {
    c = c.issuerCertificate;
    n++;
  }
  // The last one reached is the anchor, not an intermediate.
  return Math.max(0, n - 1);
}

/**
 * Node's host name check, plus Kong's tls_verify_depth (nginx's proxy_ssl_verify_depth: the
 * number of intermediates allowed). Node runs it only after the chain verified.
 */
export function upstreamIdentityCheck(depth: number | undefined): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (host, cert) => {
    const problem = tls.checkServerIdentity(host, cert);
    if (problem || depth === undefined) return problem;
    const found = intermediates(cert as tls.DetailedPeerCertificate);
    if (found <= depth) return undefined;
    return Object.assign(new Error(`certificate chain too long: ${found} intermediate certificate(s), tls_verify_depth is ${depth}`), { code: 'CERT_CHAIN_TOO_LONG' });
  };
}

const METHODS_WITH_BODY_SEMANTICS = new Set(['POST', 'PUT', 'PATCH']);
const CRLF = '\r\n';

class Connection {
  readonly socket: net.Socket;
  readonly parser: HTTPParserInstance;
  call: Call | undefined;
  /** Requests completed on this connection (0: fresh). */
  served = 0;
  alive = true;
  /** Idle keep-alive limit this upstream announced (ms), if lower than the pool's. */
  idleTimeout: number | undefined;
  /** Set when a response completed during parser.execute(); acted on once execute returns. */
  private completed: { reusable: boolean } | undefined;
  /** The socket handle llhttp reads directly (plain TCP); undefined: reads arrive as 'data' events. */
  private readonly handle: StreamHandle | undefined;
  /** Parser callbacks arrived with no request outstanding: the upstream sent extra bytes. */
  private broken = false;
  /** The socket's current inactivity timeout (ms; -1: none set). */
  private timeoutMs = -1;

  constructor(
    readonly pool: Http1Pool,
    socket: net.Socket,
  ) {
    this.socket = socket;
    this.parser = new HTTPParser();
    this.parser.initialize(HTTPParser.RESPONSE, {}, pool.options.maxHeaderSize, 0);
    const parser = this.parser;
    parser[HTTPParser.kOnHeaders] = (headers: string[]) => (this.call ? this.call.addHeaders(headers) : (this.broken = true));
    parser[HTTPParser.kOnHeadersComplete] = (
      _major: number,
      minor: number,
      headers: string[] | undefined,
      _method: unknown,
      _url: unknown,
      status: number,
      statusMessage: string,
      _upgrade: boolean,
      keepAlive: boolean,
    ) => {
      if (this.call) return this.call.headersComplete(minor, headers, status, statusMessage, keepAlive);
      this.broken = true;
      return 0;
    };
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => (this.call ? this.call.body(chunk) : (this.broken = true));
    parser[HTTPParser.kOnMessageComplete] = () => {
      const call = this.call;
      if (!call) return void (this.broken = true);
      const reusable = call.messageComplete();
      if (reusable === undefined) return; // an interim (1xx) response ended
      // Detach now, so bytes after this response in the same read are seen as extra; release after execute().
      this.call = undefined;
      this.completed = { reusable };
    };
    // TLS sockets keep 'data' events (their handle is the TLS layer's).
    this.handle = socket instanceof tls.TLSSocket ? undefined : consumeSocket(parser, socket, (ret) => this.afterExecute(ret));
    if (this.handle === undefined) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
    socket.on('error', (err) => this.fail(err as UpstreamError));
    socket.on('timeout', () => this.onTimeout());
    socket.on('drain', () => this.call?.drained());
  }

  /**
   * Sets the socket's inactivity timeout (read, write or idle keep-alive). Node restarts the timer
   * on every read and write, so an unchanged value needs no call: with Kong's defaults all three are
   * 60 s and this saves four timer re-insertions per request.
   */
  inactivityTimeout(ms: number): void {
    if (ms === this.timeoutMs) return;
    this.timeoutMs = ms;
    this.socket.setTimeout(ms);
  }

  /** After llhttp executed a read of the consumed handle. */
  private afterExecute(ret: number | Error): void {
    socketReadActivity(this.socket);
    if (!this.alive) return;
    if (this.call === undefined && this.completed === undefined) {
      // Bytes with no request outstanding: the upstream broke framing; never reuse this connection.
      this.destroy();
      return;
    }
    this.executed(ret);
  }

  /** Pauses reading (the client is slower than the upstream). */
  pauseReading(): void {
    if (this.handle !== undefined) this.handle.readStop();
    else this.socket.pause();
  }

  resumeReading(): void {
    if (!this.alive) return;
    if (this.handle !== undefined) this.handle.readStart();
    else this.socket.resume();
  }

  private onData(chunk: Buffer): void {
    if (!this.call) {
      // Bytes with no request outstanding: the upstream broke framing; never reuse this connection.
      this.destroy();
      return;
    }
    this.executed(this.parser.execute(chunk));
  }

  private executed(out: number | Error): void {
    if (out instanceof Error) {
      this.completed = undefined;
      return this.fail(upstreamError(UpstreamErrors.BAD_RESPONSE, `invalid response from upstream: ${(out as { code?: string }).code ?? out.message}`, out));
    }
    this.settle();
  }

  /** After a response completed: reuse the connection unless the upstream misbehaved. */
  private settle(): void {
    const completed = this.completed;
    if (!completed) return;
    this.completed = undefined;
    this.served++;
    if (!completed.reusable || this.broken || !this.alive) return this.destroy();
    this.pool.release(this);
  }

  private onEnd(): void {
    // A response delimited by the connection closing ends here.
    if (this.call?.responding) {
      const out = this.parser.finish();
      if (out instanceof Error) this.fail(upstreamError(UpstreamErrors.BAD_RESPONSE, 'invalid response end', out));
      this.completed = undefined;
    }
    this.onClose();
  }

  private onClose(): void {
    if (!this.alive) return;
    this.alive = false;
    const call = this.call;
    this.call = undefined;
    if (call) {
      const stale = this.served > 0 && !call.responding && !call.bodyStarted;
      call.fail(upstreamError(stale ? UpstreamErrors.STALE : UpstreamErrors.CLOSED, stale ? 'kept-alive upstream connection was closed' : 'upstream closed the connection'));
    }
    this.pool.forget(this);
    this.releaseParser();
    this.socket.destroy();
  }

  private onTimeout(): void {
    if (!this.call) return this.destroy(); // idle keep-alive expired
    const writing = this.call.writing;
    this.fail(
      upstreamError(
        writing ? UpstreamErrors.WRITE_TIMEOUT : UpstreamErrors.READ_TIMEOUT,
        writing ? 'timed out writing the request to the upstream' : 'timed out waiting for the upstream',
      ),
    );
  }

  private releaseParser(): void {
    if (this.handle !== undefined) this.parser.unconsume();
    this.parser.close();
  }

  fail(err: UpstreamError): void {
    const call = this.call;
    this.call = undefined;
    call?.fail(err);
    this.destroy();
  }

  destroy(): void {
    if (!this.alive) return;
    this.alive = false;
    this.pool.forget(this);
    this.releaseParser();
    this.socket.destroy();
  }
}

/** One request on one connection. */
class Call implements RequestHandle {
  private connection: Connection | undefined;
  private headers: string[] | undefined;
  private keepAlive = true;
  private finished = false;
  private paused = false;
  /** The response status line arrived. */
  responding = false;
  bodyStarted = false;
  /** Request body still being sent. */
  writing = false;
  private bodySource: Readable | undefined;
  private bodyDone = false;
  private pendingHead: string | undefined;

  /** Writes the request head if it is still pending (corked with what follows). */
  private flushHead(socket: net.Socket): void {
    if (this.pendingHead === undefined) return;
    socket.cork();
    socket.write(this.pendingHead, 'latin1');
    this.pendingHead = undefined;
    process.nextTick(() => socket.uncork());
  }

  constructor(
    readonly pool: Http1Pool,
    readonly request: UpstreamRequest,
    readonly sink: ResponseSink,
  ) {}

  start(connection: Connection): void {
    if (this.finished) return this.pool.release(connection);
    this.connection = connection;
    connection.call = this;
    const socket = connection.socket;
    const r = this.request;
    connection.inactivityTimeout(r.readTimeout);
    const body = r.body;
    let head = `${r.method} ${r.path} HTTP/1.1${CRLF}`;
    const h = r.headers;
    for (const name in h) {
      if (name === 'content-length' || name === 'transfer-encoding' || name === 'connection') continue;
      const v = h[name]!;
      if (typeof v === 'string') head += `${name}: ${v}${CRLF}`;
      else for (const item of v) head += `${name}: ${item}${CRLF}`;
    }
    if (body === null) {
      if (METHODS_WITH_BODY_SEMANTICS.has(r.method)) head += `content-length: 0${CRLF}`;
      this.bodyDone = true;
      socket.write(`${head}${CRLF}`, 'latin1');
      return;
    }
    if (Buffer.isBuffer(body)) {
      head += `content-length: ${body.length}${CRLF}${CRLF}`;
      this.bodyDone = true;
      if (body.length < 16384) socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
      else {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(body);
        socket.uncork();
      }
      return;
    }
    const chunked = r.contentLength === undefined;
    head += chunked ? `transfer-encoding: chunked${CRLF}${CRLF}` : `content-length: ${r.contentLength}${CRLF}${CRLF}`;
    // The head goes out with the first body bytes: a body the client's parser rejects at once
    // (bad chunking) never reaches the upstream, not even as a request line.
    this.pendingHead = head;
    this.writing = true;
    this.bodyStarted = true;
    this.connection!.inactivityTimeout(r.writeTimeout);
    if (isReadable(body)) this.pipeStream(body, chunked, r.contentLength);
    else void this.pipeIterable(body, chunked, r.contentLength);
  }

  private pipeStream(source: Readable, chunked: boolean, length: number | undefined): void {
    this.bodySource = source;
    let sent = 0;
    const socket = this.connection!.socket;
    const onData = (chunk: Buffer) => {
      this.flushHead(socket);
      sent += chunk.length;
      if (length !== undefined && sent > length) return this.bodyFailed('request body longer than its Content-Length');
      const ok = chunked ? writeChunk(socket, chunk) : socket.write(chunk);
      if (!ok) source.pause();
    };
    const onEnd = () => {
      cleanup();
      if (length !== undefined && sent !== length) return this.bodyFailed('request body shorter than its Content-Length');
      this.flushHead(socket);
      if (chunked) socket.write(`0${CRLF}${CRLF}`, 'latin1');
      this.bodyFinished();
    };
    const onError = () => {
      cleanup();
      this.bodyFailed('client request body failed');
    };
    const onAborted = () => {
      cleanup();
      this.bodyFailed('client went away during the request body');
    };
    const cleanup = () => {
      source.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onAborted);
      this.bodySource = undefined;
    };
    source.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onAborted);
  }

  private async pipeIterable(source: AsyncIterable<Buffer>, chunked: boolean, length: number | undefined): Promise<void> {
    let sent = 0;
    try {
      for await (const chunk of source) {
        const socket = this.connection?.socket;
        if (!socket || this.finished) return;
        this.flushHead(socket);
        sent += chunk.length;
        const ok = chunked ? writeChunk(socket, chunk) : socket.write(chunk);
        if (!ok) await new Promise<void>((resolve) => socket.once('drain', resolve).once('close', resolve));
      }
    } catch (err) {
      return this.bodyFailed((err as Error).message, err as UpstreamError);
    }
    if (length !== undefined && sent !== length) return this.bodyFailed('request body length mismatch');
    const socket = this.connection?.socket;
    if (socket) this.flushHead(socket);
    if (chunked) socket?.write(`0${CRLF}${CRLF}`, 'latin1');
    this.bodyFinished();
  }

  private bodyFinished(): void {
    this.bodyDone = true;
    this.writing = false;
    if (!this.finished) this.connection?.inactivityTimeout(this.request.readTimeout);
  }

  private bodyFailed(message: string, cause?: UpstreamError): void {
    const err = cause?.code ? cause : upstreamError(UpstreamErrors.BAD_REQUEST, message, cause);
    this.connection?.fail(err);
  }

  drained(): void {
    this.bodySource?.resume();
  }

  addHeaders(headers: string[]): void {
    if (this.headers) this.headers.push(...headers);
    else this.headers = headers.slice();
  }

  /** Returns 1 to tell llhttp that this response has no body (HEAD). */
  headersComplete(minor: number, headers: string[] | undefined, status: number, statusMessage: string, keepAlive: boolean): number {
    if (headers) this.addHeaders(headers);
    const all = this.headers ?? [];
    this.headers = undefined;
    // Interim 1xx responses are not forwarded; the final response follows on the same message stream.
    if (status < 200) return 0;
    this.responding = true;
    this.keepAlive = keepAlive && minor >= 1;
    const c = this.connection;
    if (c) {
      c.inactivityTimeout(this.request.readTimeout);
      // Honour the upstream's `Keep-Alive: timeout=N` (node servers say 5 s): close our side a
      // second earlier, so a request is not sent on a connection the upstream is closing.
      for (let i = 0; i < all.length; i += 2) {
        if (all[i]!.length === 10 && all[i]!.toLowerCase() === 'keep-alive') {
          const m = /(?:^|[\s,;])timeout\s*=\s*(\d+)/i.exec(all[i + 1]!);
          if (m) c.idleTimeout = Math.max(0, Number(m[1]) * 1000 - 1000);
        }
      }
    }
    this.sink.onHeaders(status, all, statusMessage);
    return this.request.method === 'HEAD' ? 1 : 0;
  }

  body(chunk: Buffer): void {
    if (this.finished) return;
    if (!this.sink.onData(chunk) && !this.paused) {
      this.paused = true;
      this.connection?.pauseReading();
    }
  }

  /** Returns whether the connection may be reused, or undefined at the end of an interim response. */
  messageComplete(): boolean | undefined {
    if (!this.responding) return undefined;
    if (this.finished) return false;
    this.finished = true;
    const c = this.connection;
    this.connection = undefined;
    if (this.paused) c?.resumeReading();
    // An answer before the whole request body was sent leaves the connection mid-request: not reusable.
    const reusable = this.keepAlive && this.bodyDone;
    if (!this.bodyDone) this.stopBody();
    this.sink.onEnd();
    return reusable;
  }

  private stopBody(): void {
    this.bodySource?.removeAllListeners('data');
    this.bodySource = undefined;
  }

  fail(err: UpstreamError): void {
    if (this.finished) return;
    this.finished = true;
    this.connection = undefined;
    this.sink.onError(err);
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.connection?.resumeReading();
  }

  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.pool.dequeue(this);
    this.connection?.destroy();
    this.connection = undefined;
  }
}

function writeChunk(socket: net.Socket, chunk: Buffer): boolean {
  if (!chunk.length) return true;
  socket.cork();
  socket.write(`${chunk.length.toString(16)}${CRLF}`, 'latin1');
  socket.write(chunk);
  const ok = socket.write(CRLF, 'latin1');
  socket.uncork();
  return ok;
}

function isReadable(body: unknown): body is Readable {
  return typeof (body as Readable).on === 'function' && typeof (body as Readable).pause === 'function';
}

/** Keep-alive connections to one upstream origin. */
export class Http1Pool {
  readonly options: Http1PoolOptions;
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private readonly queue: Call[] = [];
  private connecting = 0;
  private closed = false;

  private readonly identityCheck: (host: string, cert: tls.PeerCertificate) => Error | undefined;

  constructor(options: Http1PoolOptions) {
    this.options = options;
    this.identityCheck = upstreamIdentityCheck(options.tlsVerifyDepth);
  }

  /** Connections open now (busy and idle). */
  get size(): number {
    return this.all.size;
  }

  request(request: UpstreamRequest, sink: ResponseSink): RequestHandle {
    const call = new Call(this, request, sink);
    if (this.closed) {
      queueMicrotask(() => call.fail(upstreamError(UpstreamErrors.POOL_CLOSED, 'upstream pool is closed')));
      return call;
    }
    const c = this.idle.pop();
    if (c) call.start(c);
    else {
      this.queue.push(call);
      this.connectIfNeeded();
    }
    return call;
  }

  private connect(): void {
    const o = this.options;
    this.connecting++;
    const socket =
      o.protocol === 'https'
        ? tls.connect({
            host: o.host,
            port: o.port,
            // SNI is the service host (a balanced target's host name); RFC 6066 forbids IP literals as server names.
            servername: o.servername ?? (net.isIP(o.host) ? undefined : o.host),
            rejectUnauthorized: o.tlsVerify,
            secureContext: o.secureContext,
            checkServerIdentity: this.identityCheck,
            ALPNProtocols: ['http/1.1'],
          })
        : net.connect({ host: o.host, port: o.port });
    socket.setNoDelay(true);
    let settled = false;
    const timer = setTimeout(() => {
      onFail(upstreamError(UpstreamErrors.CONNECT_TIMEOUT, `connecting to ${o.host}:${o.port} timed out`));
      socket.destroy();
    }, o.connectTimeout);
    const onFail = (raw: UpstreamError) => {
      if (settled) return;
      settled = true;
      // Node sets authorizationError before it destroys a socket whose certificate it refused.
      const refused = o.protocol === 'https' ? (socket as tls.TLSSocket).authorizationError : undefined;
      const err = refused
        ? upstreamError(UpstreamErrors.TLS_VERIFY, `upstream TLS certificate verification failed for ${o.host}:${o.port} (${String(refused)}: ${raw.message})`, raw)
        : raw;
      clearTimeout(timer);
      this.connecting--;
      // A failed connect fails the oldest waiting request; others keep waiting for other connections.
      const call = this.queue.shift();
      call?.fail(err);
      this.connectIfNeeded();
    };
    socket.once('error', onFail);
    socket.once(o.protocol === 'https' ? 'secureConnect' : 'connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('error', onFail);
      this.connecting--;
      const c = new Connection(this, socket);
      this.all.add(c);
      if (this.closed) return c.destroy();
      this.release(c);
    });
  }

  /** A connection is free: give it to the next waiting request, or keep it idle. */
  release(c: Connection): void {
    if (!c.alive) return;
    const next = this.queue.shift();
    if (next) return next.start(c);
    if (this.closed) return c.destroy();
    // keepAliveTimeout 0 means no limit of our own; an upstream hint of 1 s or less means do not keep.
    const base = this.options.keepAliveTimeout;
    const hint = c.idleTimeout;
    if (hint !== undefined && hint <= 0) return c.destroy();
    c.inactivityTimeout(hint === undefined ? base : base === 0 ? hint : Math.min(hint, base));
    this.idle.push(c);
  }

  forget(c: Connection): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    this.connectIfNeeded();
  }

  /** Opens a connection when requests wait that no pending connect will serve. */
  private connectIfNeeded(): void {
    if (!this.closed && this.queue.length > this.connecting && this.all.size + this.connecting < this.options.maxConnections) this.connect();
  }

  dequeue(call: Call): void {
    const i = this.queue.indexOf(call);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** Stops new requests; idle connections close now, busy ones when their response ends. */
  close(): void {
    this.closed = true;
    for (const c of [...this.idle]) c.destroy();
  }

  destroy(): void {
    this.closed = true;
    for (const c of [...this.all]) c.destroy();
    for (const call of this.queue.splice(0)) call.fail(upstreamError(UpstreamErrors.POOL_CLOSED, 'upstream pool is closed'));
  }
}
