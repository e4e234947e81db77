import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Http2SecureServer, Http2ServerRequest, ServerHttp2Session, Settings as Http2Settings } from 'node:http2';
import type * as Http2Module from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestHandler } from '../pipeline/handler.js';
import { ALLOWED_METHODS, normalizeHttp2Request, normalizeRequest, unsupportedVersionStatus, validateHttp2Request, validateRequest, type Rejection } from './request-validation.js';
import { http2ResponseClass, type Http2Response } from './http2-response.js';
import { Http1Server } from './http1-server.js';
import type { Logger } from '../observability/logger.js';
import type { TlsContexts } from '../tls/contexts.js';
import { secureServerOptions, type TlsBinding } from '../tls/server.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parser errors that are not a plain 400; an unsupported version is told apart in `parseErrorStatus`. */
const CLIENT_ERROR_STATUS: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/** Kong-style `{"message": ...}` bodies for the answers the listener gives itself. */
const MESSAGES: Record<number, string> = {
  405: 'Method not allowed',
  431: 'Request header or cookie too large',
  501: 'Not implemented',
  505: 'HTTP version not supported',
};

function errorBody(status: number): string {
  return JSON.stringify({ message: MESSAGES[status] ?? 'Bad request' });
}

function parseErrorStatus(err: Error & { code?: string; rawPacket?: Buffer }): number {
  if (err.code === 'HPE_INVALID_VERSION') return unsupportedVersionStatus(err.rawPacket) ?? 400;
  return CLIENT_ERROR_STATUS[err.code ?? ''] ?? 400;
}

/** An error answer written straight to a socket that node's response machinery does not own (parse errors, CONNECT). */
function endSocket(socket: Socket | Duplex, status: number, extra: Record<string, string> = {}): void {
  const body = errorBody(status);
  let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(extra)) head += `${name}: ${value}\r\n`;
  head += `Date: ${new Date().toUTCString()}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  socket.end(head + body);
}

/** Parser and timeout options shared by the plain and the TLS listener. */
const SERVER_OPTIONS = {
  // Host rules (including a missing Host) are checked by validateRequest, answered like the others.
  requireHostHeader: false,
  maxHeaderSize: 16384,
  keepAliveTimeout: 60_000,
  headersTimeout: 60_000,
  requestTimeout: 0,
  joinDuplicateHeaders: false,
  insecureHTTPParser: false,
} satisfies http.ServerOptions;

/**
 * HTTP/2 settings of the TLS listener. Node advertises no stream limit by default; 128 is nginx's
 * http2_max_concurrent_streams. Node answers 431 above 16 KiB of headers, as for HTTP/1.1; the
 * advertised header list size lets nghttp2 refuse much larger ones before decoding them.
 */
const HTTP2_SETTINGS: Http2Settings = { maxConcurrentStreams: 128, maxHeaderListSize: 32768 };

/** The TLS listener's server: HTTP/2 responses are Http2Response, HTTP/1.1 ones node:http's. */
type TlsServer = Http2SecureServer<typeof IncomingMessage, typeof ServerResponse, typeof Http2ServerRequest, ReturnType<typeof http2ResponseClass>>;

const requireCjs = createRequire(import.meta.url);
/** RST_STREAM code of a stream cut off without an error (RFC 9113 7). */
const NGHTTP2_NO_ERROR = 0;

/** An HTTP/2 session without any frame for this long is closed with GOAWAY (streams still open finish first). */
const HTTP2_IDLE_TIMEOUT_MS = SERVER_OPTIONS.keepAliveTimeout;

/**
 * The proxy's HTTP/1.1 listener: node's strict parser, plus request validation before routing.
 * With `tls` it is the HTTPS listener: a node:http2 secure server with `allowHTTP1`, so ALPN picks
 * HTTP/2 or HTTP/1.1 per connection and both reach the same handler after the same validation;
 * the certificate is chosen per handshake from the live snapshot.
 */
export class HttpListener {
  readonly server: Http1Server | TlsServer;
  private draining = false;
  private readonly handler: RequestHandler;
  private readonly logger: Logger;

  private readonly tls: TlsBinding | undefined;
  /** Key of the certificate set whose default is installed on the server. */
  private defaultKey: string | undefined;
  /** TLS listener: open HTTP/2 sessions (closed with GOAWAY on drain) and all connections (for forceClose). */
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly sockets = new Set<Socket>();
  /** The TLS listener's HTTP/2 response class (undefined on the plain listener). */
  private readonly http2Response: ReturnType<typeof http2ResponseClass> | undefined;

  constructor(handler: RequestHandler, logger: Logger, tls?: TlsBinding) {
    this.handler = handler;
    this.logger = logger;
    this.tls = tls;
    if (tls) {
      // Loaded here, not at module load: node:http2 costs ~5 MB that a plain-HTTP gateway never needs.
      const h2 = requireCjs('node:http2') as typeof Http2Module;
      this.http2Response = http2ResponseClass(h2);
      const server = h2.createSecureServer(
        { ...secureServerOptions(tls, logger), allowHTTP1: true, settings: HTTP2_SETTINGS, Http2ServerResponse: this.http2Response },
        (req, res) => this.onTlsRequest(req, res, false),
      );
      // The HTTP/1.1 side of an allowHTTP1 server reads node:http's parser and timeout settings
      // from the server object (as http.createServer stores them), not from the options.
      Object.assign(server, SERVER_OPTIONS);
      this.server = server;
      this.watchTls(server, tls);
      this.watchTlsRequests(server);
    } else {
      this.server = new Http1Server(
        { maxHeaderSize: SERVER_OPTIONS.maxHeaderSize, keepAliveTimeout: SERVER_OPTIONS.keepAliveTimeout, headersTimeout: SERVER_OPTIONS.headersTimeout },
        {
          request: (req, res, expectsContinue) => this.onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse, expectsContinue),
          clientError: (err, socket) => this.onClientError(err, socket),
        },
      );
    }
  }

  /** A request node's parser refused (or whose head timed out): a JSON error answer, then close. */
  private onClientError(err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex): void {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = parseErrorStatus(err);
    endSocket(socket, status);
    this.logger.info({ type: 'access', status, reason: `parse error (${err.code ?? err.message})`, client_ip: (socket as Socket).remoteAddress }, 'request rejected');
  }

  /** The TLS listener's node server events: Expect: 100-continue, parser errors and CONNECT. */
  private watchTlsRequests(server: TlsServer): void {
    // With a listener here node leaves "100 Continue" to us: a request we refuse gets its final
    // status at once instead of an invitation to send a body first.
    server.on('checkContinue', (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2Response) => this.onTlsRequest(req, res, true));
    server.on('clientError', (err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex) => this.onClientError(err, socket));
    // CONNECT arrives here rather than as a request; validation refuses it like any other invalid
    // request. Over HTTP/2 node passes the stream's request and response instead of a socket.
    server.on('connect', (req: IncomingMessage | Http2ServerRequest, socket: Duplex | Http2Response) => {
      if (this.http2Response && socket instanceof this.http2Response) {
        this.reject(req as Http2ServerRequest, socket, { status: 405, reason: 'CONNECT is not supported', headers: { allow: ALLOWED_METHODS } });
        return;
      }
      const rejection = validateRequest(req as IncomingMessage) ?? { status: 405, reason: 'CONNECT is not supported' };
      endSocket(socket as Duplex, rejection.status, rejection.headers);
      this.logRejection(req, rejection);
    });
  }

  /** Handshake failures, HTTP/2 session bookkeeping and errors of the TLS listener. */
  private watchTls(server: TlsServer, tls: TlsBinding): void {
    const logger = this.logger;
    this.useCertificates(tls.contexts());
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    // Ahead of node's own listener, which re-emits the error as 'clientError': the socket is
    // destroyed first, so no HTTP/1.1 error text is written into a failed handshake.
    server.prependListener('tlsClientError', (err: Error & { code?: string }, socket: Duplex) => {
      socket.destroy();
      const none = tls.contexts().size === 0;
      const fields = { type: 'tls', reason: err.code ?? err.message, client_ip: (socket as Socket).remoteAddress };
      if (none) logger.warn(fields, 'TLS handshake refused: no certificate is configured');
      else logger.info(fields, 'TLS handshake failed');
    });
    server.on('session', (session: ServerHttp2Session) => {
      if (this.draining) session.close();
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
      session.setTimeout(HTTP2_IDLE_TIMEOUT_MS, () => session.close());
    });
    // A session's protocol or socket error ends that session only; node has already destroyed it.
    server.on('sessionError', (err: Error & { code?: string }, session: ServerHttp2Session) => {
      logger.info({ type: 'http2', reason: err.code ?? err.message, client_ip: session.socket?.remoteAddress }, 'HTTP/2 session failed');
    });
  }

  /**
   * Installs the default certificate of a (new) snapshot, and whether new connections are asked
   * for a client certificate; SNI handshakes read the live certificates themselves.
   */
  useCertificates(contexts: TlsContexts): void {
    if (!this.tls || this.server instanceof Http1Server) return;
    if (this.defaultKey === contexts.key) return;
    this.defaultKey = contexts.key;
    this.server.setSecureContext(this.tls.defaultOptions(contexts));
    // Node reads this per accepted connection; the constructor's option only sets the first value.
    (this.server as Http2SecureServer & { requestCert: boolean }).requestCert = contexts.clientCertificates.request;
  }

  private logRejection(req: IncomingMessage | Http2ServerRequest, rejection: Rejection): void {
    this.logger.info({ type: 'access', method: req.method, status: rejection.status, reason: rejection.reason, client_ip: req.socket.remoteAddress }, 'request rejected');
  }

  /** A request on the TLS listener: HTTP/2 streams and HTTP/1.1 requests arrive on the same event. */
  private onTlsRequest(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2Response, expectsContinue: boolean): void {
    if (req.httpVersionMajor === 2) this.onHttp2Request(req as Http2ServerRequest, res as Http2Response, expectsContinue);
    else this.onRequest(req as IncomingMessage, res as ServerResponse, expectsContinue);
  }

  private onHttp2Request(req: Http2ServerRequest, res: Http2Response, expectsContinue: boolean): void {
    const rejection = validateHttp2Request(req);
    if (rejection) return this.reject(req, res, rejection);
    normalizeHttp2Request(req);
    if (req.url === '*') {
      res.writeHead(200, { allow: ALLOWED_METHODS, 'content-length': 0 });
      res.end();
      return;
    }
    if (expectsContinue) res.writeContinue();
    // Http2Response and the normalised request carry what the handler reads from their HTTP/1 counterparts.
    this.handler.handle(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  }

  /** Answers a refused HTTP/2 request on its stream; an unread request body is cut off with RST_STREAM(NO_ERROR). */
  private reject(req: Http2ServerRequest, res: Http2Response, rejection: Rejection): void {
    const body = errorBody(rejection.status);
    res.writeHead(rejection.status, { ...rejection.headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body, () => {
      if (!req.complete) req.stream.close(NGHTTP2_NO_ERROR);
    });
    this.logRejection(req, rejection);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    if (this.draining) res.shouldKeepAlive = false;
    const rejection = validateRequest(req);
    if (rejection) {
      const body = errorBody(rejection.status);
      res.shouldKeepAlive = false;
      res.writeHead(rejection.status, {
        ...rejection.headers,
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        connection: 'close',
      });
      res.end(body);
      this.logRejection(req, rejection);
      return;
    }
    normalizeRequest(req);
    if (req.url === '*') {
      // OPTIONS * asks about the server itself (RFC 9110 9.3.7): no route can match "*", so the gateway answers.
      if (expectsContinue) res.shouldKeepAlive = false;
      res.writeHead(200, { allow: ALLOWED_METHODS, 'content-length': 0 });
      res.end();
      return;
    }
    if (expectsContinue) res.writeContinue();
    this.handler.handle(req, res);
  }

  listen(address: ListenAddress): Promise<ListenAddress> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.server.listen(address.port, address.host, () => {
        this.server.off('error', onError);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : address);
      });
    });
  }

  /** Stops accepting; idle keep-alive connections close now, busy ones after their response. */
  beginDrain(): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // An allowHTTP1 Http2SecureServer has it too (for its HTTP/1.1 connections); the typings omit it.
    (this.server as unknown as Http1Server).closeIdleConnections();
    // GOAWAY: the client opens no new streams here; streams in flight finish, then the session closes.
    for (const session of this.sessions) session.close();
    return closed;
  }

  forceClose(): void {
    if (this.server instanceof Http1Server) return this.server.closeAllConnections();
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
  }
}
