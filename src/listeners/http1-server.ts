/**
 * The plain listener's HTTP/1.1 server: node's llhttp parser (strict, exactly as node:http runs it)
 * driven straight from net sockets, with a request and a response object that carry the members
 * of IncomingMessage and ServerResponse the gateway uses and nothing else.
 *
 * Why not node:http here (docs/performance.md): with the same upstream client, a minimal proxy on
 * this server costs ~26 µs of CPU per request against ~35 µs on node:http. The difference is
 * node's per-request machinery: an IncomingMessage stream that is ended and dumped even without a
 * body (several nextTicks), a ServerResponse writable with its own buffering and 'finish'
 * bookkeeping, per-request socket timeout changes. Here a request without a body never touches its
 * stream state, the response head and a small body leave in one write, and the socket keeps one
 * idle timeout. The behaviour that matters to clients is node's: parser errors reach the same
 * clientError answer, keep-alive and framing follow node's rules (Connection/Keep-Alive headers,
 * chunked for HTTP/1.1 bodies of unknown length, close-delimited for HTTP/1.0, no body on HEAD,
 * 1xx, 204, 304), Expect: 100-continue, pipelined requests answered in order, 408 on a request head
 * slower than headersTimeout. The HTTP/1.1 conformance suite runs against this server in npm test.
 */
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import { HTTPParser, PARSER_METHODS, consumeSocket, socketReadActivity, type HTTPParserInstance, type ParserError, type StreamHandle } from '../lib/llhttp.js';
import { distinctFromRaw, headersFromRaw } from './request-validation.js';

export interface Http1ServerOptions {
  /** Largest request head (bytes); larger ones get 431 through clientError. */
  maxHeaderSize: number;
  /** Milliseconds an idle keep-alive connection stays open (also announced in Keep-Alive). */
  keepAliveTimeout: number;
  /** Milliseconds a request head may take to arrive; slower ones get 408 through clientError. */
  headersTimeout: number;
}

export interface Http1ServerHandlers {
  /** A parsed request; with `expectsContinue` the client waits for writeContinue() before its body. */
  request(req: Http1Request, res: Http1Response, expectsContinue: boolean): void;
  /** A request the parser refused, or a head that timed out: answer on the socket and end it. */
  clientError(err: ParserError, socket: net.Socket): void;
}

type OutgoingHeaders = Record<string, string | number | readonly string[] | undefined>;

/** node's continueExpression. */
const CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;
/** node's checkIsHttpToken and checkInvalidHeaderChar: a bad name or value would split the response. */
const HEADER_NAME = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Pipelined requests waiting behind the one being answered before the connection stops reading. */
const MAX_WAITING = 16;
/** node's default maxHeadersCount (2000 fields): names and values beyond it are dropped, as node does. */
const MAX_HEADER_ITEMS = 4000;
/** A body answered before it was read is read and thrown away up to this size; past it the connection closes. */
const MAX_DISCARDED_BODY = 1_048_576;
/** Bodies up to this size are copied behind the head into one buffer (one syscall); larger ones go as a corked writev. */
const COPY_LIMIT = 16_384;
const CONTINUE_LINE = 'HTTP/1.1 100 Continue\r\n\r\n';

function codedError(message: string, code: string): ParserError {
  return Object.assign(new Error(message), { code });
}

/** Body paused for the request stream's backpressure, or for pipelined requests piling up. */
const PAUSED_BODY = 1;
const PAUSED_WAITING = 2;
/** Nothing more is read: the connection closes once its last answer is written. */
const PAUSED_STOPPED = 4;

/** One client connection: parser, the response being written and the pipelined requests behind it. */
class Connection {
  readonly parser: HTTPParserInstance;
  /** Header fields of the head being parsed, when llhttp hands them over in parts. */
  private headerItems: string[] = [];
  private url = '';
  /** The request whose body the parser is reading. */
  private reading: Http1Request | undefined;
  /** The response being produced; requests behind it wait (not yet dispatched) in `waiting`. */
  active: Http1Response | undefined;
  private readonly waiting: Http1Response[] = [];
  /** Date.now() when the head being parsed began (0: not inside a head). */
  private headStartedAt = 0;
  /** No more requests are read from this connection. */
  private stopped = false;
  /** A parse error to answer once the responses in flight are written. */
  private pendingError: ParserError | undefined;
  private paused = 0;
  private closed = false;
  /** The socket handle llhttp reads directly (undefined: reads arrive as 'data' events). */
  private handle: StreamHandle | undefined;
  /** The last head parsed asked for an upgrade: llhttp stops after it within the read. */
  private upgradeAsked = false;
  /** Bytes of an answered, unread request body thrown away so far. */
  discarded = 0;

  constructor(
    readonly server: Http1Server,
    readonly socket: net.Socket,
  ) {
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.REQUEST, {}, server.options.maxHeaderSize, HTTPParser.kLenientNone);
    this.parser = parser;
    parser[HTTPParser.kOnMessageBegin] = () => {
      this.headStartedAt = Date.now();
    };
    parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
      if (this.headerItems.length < MAX_HEADER_ITEMS) this.headerItems.push(...headers);
      this.url += url;
    };
    parser[HTTPParser.kOnHeadersComplete] = (
      major: number,
      minor: number,
      headers: string[] | undefined,
      method: number,
      url: string | undefined,
      _status: unknown,
      _message: unknown,
      upgrade: boolean,
      keepAlive: boolean,
    ) => this.headersComplete(major, minor, headers, method, url, upgrade, keepAlive);
    parser[HTTPParser.kOnBody] = (chunk: Buffer) => this.reading?.pushBody(chunk);
    parser[HTTPParser.kOnMessageComplete] = () => {
      // Trailer fields arrive like header fields; they are not forwarded (as node:http, they would
      // only reach req.trailers).
      if (this.headerItems.length) this.headerItems = [];
      this.url = '';
      const req = this.reading;
      this.reading = undefined;
      req?.bodyComplete();
    };
    socket.setTimeout(server.options.keepAliveTimeout);
    this.handle = consumeSocket(parser, socket, (ret) => this.afterExecute(ret));
    if (this.handle === undefined) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
    socket.on('error', () => {
      // 'close' follows and cleans up; a reset by the client is not the gateway's error.
    });
    socket.on('timeout', () => this.onTimeout());
    socket.on('drain', () => this.active?.emit('drain'));
    // After our side ended (a final response, or an error answer), close once it is flushed.
    socket.on('finish', () => socket.destroy());
  }

  /** Nothing in progress: no response, no request waiting, no head half read. */
  get idle(): boolean {
    return this.active === undefined && this.waiting.length === 0 && this.headStartedAt === 0 && this.reading === undefined;
  }

  /** After llhttp executed a read of the consumed handle. */
  private afterExecute(ret: number | ParserError): void {
    socketReadActivity(this.socket);
    if (this.stopped) return;
    if (typeof ret !== 'number') {
      ret.rawPacket = this.parser.getCurrentBuffer();
      return this.parseFailed(ret);
    }
    if (this.upgradeAsked) {
      // llhttp stopped after a request that asked for an upgrade: parse what followed it.
      this.upgradeAsked = false;
      const read = this.parser.getCurrentBuffer();
      if (ret > 0 && ret < read.length && !this.closed) return this.onData(read.subarray(ret));
    }
    if (this.headStartedAt !== 0 && Date.now() - this.headStartedAt > this.server.options.headersTimeout) this.headTimedOut();
  }

  private onData(chunk: Buffer): void {
    if (this.stopped) return;
    let data = chunk;
    for (;;) {
      const ret = this.parser.execute(data);
      if (typeof ret !== 'number') {
        (ret as ParserError).rawPacket = chunk;
        return this.parseFailed(ret as ParserError);
      }
      // llhttp stops after a request that asked for an upgrade (CONNECT, Upgrade:); it is answered
      // as a plain request (or refused), and parsing goes on with what followed it.
      this.upgradeAsked = false;
      if (ret === 0 || ret >= data.length || this.stopped || this.closed) break;
      data = data.subarray(ret);
    }
    if (this.headStartedAt !== 0 && Date.now() - this.headStartedAt > this.server.options.headersTimeout) this.headTimedOut();
  }

  private headersComplete(
    major: number,
    minor: number,
    headers: string[] | undefined,
    method: number,
    url: string | undefined,
    upgrade: boolean,
    keepAlive: boolean,
  ): number {
    this.headStartedAt = 0;
    // A request after the connection stopped reading (a final response, a parse error) is not
    // served: llhttp reading the handle may still parse what the client sent meanwhile.
    if (this.stopped) return 0;
    if (upgrade) this.upgradeAsked = true;
    let raw = headers;
    if (raw === undefined) {
      raw = this.headerItems;
      this.headerItems = [];
    }
    let target = url;
    if (target === undefined) {
      target = this.url;
      this.url = '';
    }
    const req = new Http1Request(this, PARSER_METHODS[method] ?? '', target, major, minor, raw, upgrade);
    const res = new Http1Response(this, req, keepAlive);
    this.reading = req;
    if (this.active === undefined) this.dispatch(res);
    else {
      this.waiting.push(res);
      if (this.waiting.length >= MAX_WAITING) this.pause(PAUSED_WAITING);
    }
    return 0;
  }

  /** Hands a request to the gateway (node's rules for Expect apply first). */
  private dispatch(res: Http1Response): void {
    this.active = res;
    const req = res.req;
    let expectsContinue = false;
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
      const expect = req.headers.expect;
      if (expect !== undefined) {
        if (!CONTINUE.test(expect)) {
          // An expectation the server cannot meet (RFC 9110 10.1.1), as node answers it.
          res.writeHead(417);
          res.end();
          return;
        }
        expectsContinue = true;
        res.expectContinue = true;
      }
    }
    try {
      this.server.handlers.request(req, res, expectsContinue);
    } catch (err) {
      // The listener and the handler answer their own failures; this is a last resort.
      this.socket.destroy(err as Error);
    }
  }

  /** The response was handed to the socket: read on, or close. */
  responseEnded(res: Http1Response): void {
    if (this.active !== res) return;
    this.active = undefined;
    const req = res.req;
    if (res.last || this.server.closing) return this.finishWriting();
    if (!req.complete && !req.beingRead) {
      // Answered before its body was read (an auth failure on an upload): read on and throw it away.
      req.dumped = true;
      this.resume(PAUSED_BODY);
    }
    const next = this.waiting.shift();
    if (next) {
      if (this.waiting.length < MAX_WAITING) this.resume(PAUSED_WAITING);
      this.dispatch(next);
      return;
    }
    const err = this.pendingError;
    if (err) {
      this.pendingError = undefined;
      this.server.handlers.clientError(err, this.socket);
    }
  }

  /** No more requests: end our side once the last response is flushed ('finish' then destroys). */
  private finishWriting(): void {
    this.stopped = true;
    this.waiting.length = 0;
    this.pause(PAUSED_STOPPED);
    this.socket.end();
  }

  pause(reason: number): void {
    if (this.paused === 0) {
      if (this.handle !== undefined) this.handle.readStop();
      else this.socket.pause();
    }
    this.paused |= reason;
  }

  resume(reason: number): void {
    if ((this.paused & reason) === 0) return;
    this.paused &= ~reason;
    if (this.paused !== 0 || this.closed) return;
    if (this.handle !== undefined) this.handle.readStart();
    else this.socket.resume();
  }

  private parseFailed(err: ParserError): void {
    this.stopped = true;
    this.headStartedAt = 0;
    const req = this.reading;
    this.reading = undefined;
    this.waiting.length = 0;
    const active = this.active;
    const answerNow = active === undefined || !active.wroteHead;
    if (active !== undefined && answerNow) {
      // Its answer has not started: the error answer replaces it (detached first, so an upstream
      // failure caused by the abort below cannot answer in its place).
      this.active = undefined;
      active.detach();
    }
    // A body the parser refused (bad chunking) never reaches the upstream complete: the upstream
    // call sees the request stream fail and drops its connection.
    if (req !== undefined && !req.complete) req.abort();
    if (answerNow) this.server.handlers.clientError(err, this.socket);
    // Part of a response is on the wire already; the error answer follows it.
    else this.pendingError = err;
  }

  private headTimedOut(): void {
    this.parseFailed(codedError('request head not received in time', 'ERR_HTTP_REQUEST_TIMEOUT'));
  }

  private onEnd(): void {
    // The client will send no more: answer what was asked, then close.
    if (!this.stopped) {
      const ret = this.parser.finish();
      if (ret instanceof Error && this.active === undefined && this.waiting.length === 0) {
        // A request cut off mid-head or mid-body: node answers it as a parse error.
        return this.parseFailed(ret as ParserError);
      }
    }
    const req = this.reading;
    this.reading = undefined;
    if (req !== undefined && !req.complete) req.abort();
    this.stopped = true;
    const lastInLine = this.waiting.length ? this.waiting[this.waiting.length - 1] : this.active;
    if (lastInLine === undefined) this.socket.end();
    else lastInLine.last = true;
  }

  private onTimeout(): void {
    if (this.active !== undefined || this.waiting.length) return; // the upstream's timeouts apply
    if (this.headStartedAt !== 0 && !this.stopped) return this.headTimedOut();
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopped = true;
    this.server.forget(this);
    const req = this.reading;
    this.reading = undefined;
    if (req !== undefined && !req.complete) req.abort();
    const active = this.active;
    this.active = undefined;
    if (active) {
      if (!active.req.complete) active.req.abort();
      active.detach();
    }
    this.waiting.length = 0;
    if (this.handle !== undefined) this.parser.unconsume();
    this.parser.close();
  }
}

/** Node's ECONNRESET "aborted" error of a request whose connection closed mid-body. */
function abortedError(): ParserError {
  return codedError('aborted', 'ECONNRESET');
}

/**
 * A request: IncomingMessage's members the gateway reads. The body is a Readable; a request
 * without a body never touches the stream state unless someone reads it.
 */
export class Http1Request extends Readable {
  readonly method: string;
  url: string;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  readonly httpVersion: string;
  rawHeaders: string[];
  readonly upgrade: boolean;
  /** The whole request (head and body) was received. */
  complete = false;
  aborted = false;
  /** Answered before the body was read: further body bytes are thrown away. */
  dumped = false;
  private headerMap: IncomingHttpHeaders | undefined;
  private distinct: NodeJS.Dict<string[]> | undefined;
  private bodyBytes = false;
  private readRequested = false;
  private endPending = false;

  constructor(
    private readonly connection: Connection,
    method: string,
    url: string,
    major: number,
    minor: number,
    rawHeaders: string[],
    upgrade: boolean,
  ) {
    super();
    this.method = method;
    this.url = url;
    this.httpVersionMajor = major;
    this.httpVersionMinor = minor;
    this.httpVersion = major === 1 && minor === 1 ? '1.1' : `${major}.${minor}`;
    this.rawHeaders = rawHeaders;
    this.upgrade = upgrade;
  }

  get socket(): net.Socket {
    return this.connection.socket;
  }

  /** Built on first use, with node's rules for repeated fields. */
  get headers(): IncomingHttpHeaders {
    return (this.headerMap ??= headersFromRaw(this.rawHeaders));
  }

  set headers(value: IncomingHttpHeaders) {
    this.headerMap = value;
  }

  get headersDistinct(): NodeJS.Dict<string[]> {
    return (this.distinct ??= distinctFromRaw(this.rawHeaders));
  }

  set headersDistinct(value: NodeJS.Dict<string[]>) {
    this.distinct = value;
  }

  /** Someone consumes the body (so it is not thrown away when the response ends first). */
  get beingRead(): boolean {
    return this.readRequested || this.readableFlowing === true || this.listenerCount('data') > 0;
  }

  override _read(): void {
    this.readRequested = true;
    if (this.endPending) {
      this.endPending = false;
      this.push(null);
      return;
    }
    this.connection.resume(PAUSED_BODY);
  }

  pushBody(chunk: Buffer): void {
    if (this.dumped) {
      this.connection.discarded += chunk.length;
      if (this.connection.discarded > MAX_DISCARDED_BODY) this.connection.socket.destroy();
      return;
    }
    this.bodyBytes = true;
    if (!this.push(chunk)) this.connection.pause(PAUSED_BODY);
  }

  bodyComplete(): void {
    this.complete = true;
    this.connection.discarded = 0;
    if (this.dumped) return;
    // Ending the stream costs several ticks; a request nobody reads ends only if it is read.
    if (this.bodyBytes || this.readRequested) this.push(null);
    else this.endPending = true;
  }

  /** The connection closed (or the body failed to parse) before the request was complete. */
  abort(): void {
    if (this.complete || this.aborted) return;
    this.aborted = true;
    this.emit('aborted');
    // As IncomingMessage: the error reaches only those who listen for it.
    this.destroy(this.listenerCount('error') > 0 ? abortedError() : undefined);
  }
}

/**
 * A response: ServerResponse's members the gateway uses. The head is built by writeHead and sent
 * with the first body bytes (one write for a small response).
 */
export class Http1Response extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  shouldKeepAlive: boolean;
  /** The client sent Expect: 100-continue; a final answer without the invitation closes the connection. */
  expectContinue = false;
  /** The connection closes after this response. */
  last = false;
  /** Some of the head is on the wire. */
  wroteHead = false;
  private sent100 = false;
  private head: string | undefined;
  private hasBody = true;
  private chunked = false;
  private closeEmitted = false;
  /** Content-Length implied by end(data) before any head was written. */
  private impliedLength: number | undefined;

  constructor(
    private readonly connection: Connection,
    readonly req: Http1Request,
    keepAlive: boolean,
  ) {
    super();
    this.shouldKeepAlive = keepAlive;
  }

  get socket(): net.Socket {
    return this.connection.socket;
  }

  writeContinue(): void {
    if (this.headersSent || this.sent100 || this.destroyed) return;
    this.sent100 = true;
    this.connection.socket.write(CONTINUE_LINE, 'latin1');
  }

  writeHead(statusCode: number, reasonOrHeaders?: string | OutgoingHeaders | readonly string[], maybeHeaders?: OutgoingHeaders | readonly string[]): this {
    if (this.headersSent) throw codedError('Cannot write headers after they are sent to the client', 'ERR_HTTP_HEADERS_SENT');
    if (!Number.isInteger(statusCode) || statusCode < 100 || statusCode > 999) {
      throw Object.assign(new RangeError(`Invalid status code: ${statusCode}`), { code: 'ERR_HTTP_INVALID_STATUS_CODE' });
    }
    let reason: string | undefined;
    let headers: OutgoingHeaders | readonly string[] | undefined;
    if (typeof reasonOrHeaders === 'string') {
      reason = reasonOrHeaders;
      headers = maybeHeaders;
      if (INVALID_VALUE.test(reason)) throw codedError('Invalid character in statusMessage', 'ERR_INVALID_CHAR');
    } else headers = reasonOrHeaders;
    this.statusCode = statusCode;
    const conn = this.connection;
    const server = conn.server;
    let head = `HTTP/1.1 ${statusCode} ${reason ?? STATUS_CODES[statusCode] ?? 'unknown'}\r\n`;
    const seen = new HeadFacts();
    if (Array.isArray(headers)) {
      const list = headers as readonly string[];
      for (let i = 0; i + 1 < list.length; i += 2) head += seen.line(list[i]!, list[i + 1]!);
    } else if (headers !== undefined) {
      const map = headers as OutgoingHeaders;
      for (const name in map) {
        const value = map[name];
        if (value === undefined) continue;
        if (typeof value === 'object') for (const item of value) head += seen.line(name, item);
        else head += seen.line(name, typeof value === 'string' ? value : String(value));
      }
    }
    if (this.req.method === 'HEAD' || statusCode === 204 || statusCode === 304 || statusCode < 200) this.hasBody = false;
    if (seen.length === undefined && !seen.transferEncoding && this.impliedLength !== undefined && this.hasBody) {
      head += `Content-Length: ${this.impliedLength}\r\n`;
      seen.length = this.impliedLength;
    }
    if (this.expectContinue && !this.sent100) this.shouldKeepAlive = false;
    // HTTP/1.0 has no chunked coding: a body of unknown length ends with the connection.
    const chunkable = this.req.httpVersionMinor >= 1;
    if (!seen.connection) {
      if (this.shouldKeepAlive && !this.last && !server.closing && (seen.length !== undefined || chunkable)) head += server.keepAliveLines;
      else {
        head += 'Connection: close\r\n';
        this.last = true;
      }
    } else if (seen.connectionClose || !this.shouldKeepAlive || server.closing) this.last = true;
    if (seen.length === undefined && !seen.transferEncoding) {
      if (!this.hasBody) {
        // Nothing to frame.
      } else if (!chunkable) this.last = true;
      else {
        head += 'Transfer-Encoding: chunked\r\n';
        this.chunked = true;
      }
    } else if (seen.chunked) this.chunked = true;
    if (!seen.date) head += server.dateLine();
    this.head = `${head}\r\n`;
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer | string, encoding?: BufferEncoding | (() => void)): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const data = typeof chunk === 'string' ? Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8') : chunk;
    return this.send(data, false);
  }

  end(chunk?: Buffer | string | (() => void) | null, callback?: () => void): this {
    let data: Buffer | undefined;
    if (typeof chunk === 'function') callback = chunk;
    else if (typeof chunk === 'string') data = Buffer.from(chunk);
    else if (chunk) data = chunk;
    if (this.writableEnded || this.destroyed) return this;
    if (!this.headersSent) {
      this.impliedLength = data === undefined ? 0 : data.length;
      this.writeHead(this.statusCode);
    }
    this.writableEnded = true;
    this.send(data, true);
    this.writableFinished = true;
    // 'finish' and 'close' at once (node defers them a tick; a tick per request is measurable), and
    // before the next pipelined request is dispatched, so this one's log phase runs first.
    if (callback) this.once('finish', callback);
    this.emit('finish');
    this.emitClose();
    this.connection.responseEnded(this);
    return this;
  }

  /** Writes the pending head, body bytes and chunk framing; small pieces are joined into one buffer. */
  private send(data: Buffer | undefined, final: boolean): boolean {
    const socket = this.connection.socket;
    let prefix = this.head ?? '';
    this.head = undefined;
    if (prefix !== '') this.wroteHead = true;
    const body = this.hasBody && data !== undefined && data.length > 0 ? data : undefined;
    let suffix = '';
    if (this.chunked && this.hasBody) {
      if (body !== undefined) {
        prefix += `${body.length.toString(16)}\r\n`;
        suffix = final ? '\r\n0\r\n\r\n' : '\r\n';
      } else if (final) prefix += '0\r\n\r\n';
    }
    if (body === undefined) return prefix === '' ? !socket.writableNeedDrain : socket.write(prefix, 'latin1');
    if (prefix === '' && suffix === '') return socket.write(body);
    if (body.length <= COPY_LIMIT) {
      const out = Buffer.allocUnsafe(prefix.length + body.length + suffix.length);
      out.write(prefix, 0, 'latin1');
      body.copy(out, prefix.length);
      if (suffix !== '') out.write(suffix, prefix.length + body.length, 'latin1');
      return socket.write(out);
    }
    socket.cork();
    if (prefix !== '') socket.write(prefix, 'latin1');
    let ok = socket.write(body);
    if (suffix !== '') ok = socket.write(suffix, 'latin1');
    socket.uncork();
    return ok;
  }

  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.connection.socket.destroy();
    }
    return this;
  }

  /** The connection is gone (or gave this response up): nothing more can be sent. */
  detach(): void {
    this.destroyed = true;
    this.emitClose();
  }

  emitClose(): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit('close');
  }
}

/** What the header fields given to writeHead said about framing and connection handling. */
class HeadFacts {
  connection = false;
  connectionClose = false;
  length: number | undefined = undefined;
  transferEncoding = false;
  chunked = false;
  date = false;

  /** One "name: value" line, after node's checks on the name and value. */
  line(name: string, value: string): string {
    if (!HEADER_NAME.test(name)) throw codedError(`Header name must be a valid HTTP token ["${name}"]`, 'ERR_INVALID_HTTP_TOKEN');
    if (INVALID_VALUE.test(value)) throw codedError(`Invalid character in header content ["${name}"]`, 'ERR_INVALID_CHAR');
    const n = name.length;
    if (n === 4 || n === 10 || n === 14 || n === 17) {
      const lower = name.toLowerCase();
      if (lower === 'connection') {
        this.connection = true;
        if (/(?:^|\W)close(?:$|\W)/i.test(value)) this.connectionClose = true;
      } else if (lower === 'content-length') this.length = Number(value);
      else if (lower === 'transfer-encoding') {
        this.transferEncoding = true;
        if (/(?:^|\W)chunked(?:$|\W)/i.test(value)) this.chunked = true;
      } else if (lower === 'date') this.date = true;
    }
    return `${name}: ${value}\r\n`;
  }
}

/**
 * The listening socket. A net.Server, so listen/close/address and the 'connection' event are
 * node's; connections are tracked for closeIdleConnections / closeAllConnections as node:http does.
 */
export class Http1Server extends net.Server {
  readonly options: Http1ServerOptions;
  readonly handlers: Http1ServerHandlers;
  /** close() was called: every response from now on closes its connection. */
  closing = false;
  readonly keepAliveLines: string;
  private readonly clients = new Set<Connection>();
  private dateSecond = -1;
  private dateText = '';

  constructor(options: Http1ServerOptions, handlers: Http1ServerHandlers) {
    // allowHalfOpen: a client that half-closes after its request still gets the answer.
    super({ noDelay: true, allowHalfOpen: true });
    this.options = options;
    this.handlers = handlers;
    this.keepAliveLines = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(options.keepAliveTimeout / 1000)}\r\n`;
    this.on('connection', (socket: net.Socket) => this.clients.add(new Connection(this, socket)));
  }

  /** The Date line, rebuilt once a second. */
  dateLine(): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.dateText = `Date: ${new Date(now).toUTCString()}\r\n`;
    }
    return this.dateText;
  }

  forget(connection: Connection): void {
    this.clients.delete(connection);
  }

  override close(callback?: (err?: Error) => void): this {
    this.closing = true;
    return super.close(callback);
  }

  closeIdleConnections(): void {
    for (const c of this.clients) if (c.idle) c.socket.destroy();
  }

  closeAllConnections(): void {
    for (const c of this.clients) c.socket.destroy();
  }
}
