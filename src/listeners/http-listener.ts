import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { RequestHandler } from '../pipeline/handler.js';
import { ALLOWED_METHODS, normalizeRequest, unsupportedVersionStatus, validateRequest, type Rejection } from './request-validation.js';
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
const SERVER_OPTIONS: http.ServerOptions = {
  // Host rules (including a missing Host) are checked by validateRequest, answered like the others.
  requireHostHeader: false,
  maxHeaderSize: 16384,
  keepAliveTimeout: 60_000,
  headersTimeout: 60_000,
  requestTimeout: 0,
  joinDuplicateHeaders: false,
  insecureHTTPParser: false,
};

/**
 * The proxy's HTTP/1.1 listener: node's strict parser, plus request validation before routing.
 * With `tls` it is the HTTPS listener: the same options, callbacks and validation over TLS, the
 * certificate chosen per handshake from the live snapshot.
 */
export class HttpListener {
  readonly server: http.Server | https.Server;
  private draining = false;
  private readonly handler: RequestHandler;
  private readonly logger: Logger;

  private readonly tls: TlsBinding | undefined;
  /** Key of the certificate set whose default is installed on the server. */
  private defaultKey: string | undefined;

  constructor(handler: RequestHandler, logger: Logger, tls?: TlsBinding) {
    this.handler = handler;
    this.logger = logger;
    this.tls = tls;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res, false);
    this.server = tls ? https.createServer({ ...SERVER_OPTIONS, ...secureServerOptions(tls, logger) }, onRequest) : http.createServer(SERVER_OPTIONS, onRequest);
    if (tls) {
      this.useCertificates(tls.contexts());
      this.server.on('tlsClientError', (err: Error & { code?: string }, socket: Duplex) => {
        socket.destroy();
        const none = tls.contexts().size === 0;
        const fields = { type: 'tls', reason: err.code ?? err.message, client_ip: (socket as Socket).remoteAddress };
        if (none) logger.warn(fields, 'TLS handshake refused: no certificate is configured');
        else logger.info(fields, 'TLS handshake failed');
      });
    }
    // With a listener here node leaves "100 Continue" to us: a request we refuse gets its final
    // status at once instead of an invitation to send a body first.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res, true));
    this.server.on('clientError', (err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex) => {
      if (!socket.writable || err.code === 'ECONNRESET') {
        socket.destroy();
        return;
      }
      const status = parseErrorStatus(err);
      endSocket(socket, status);
      logger.info({ type: 'access', status, reason: `parse error (${err.code ?? err.message})`, client_ip: (socket as Socket).remoteAddress }, 'request rejected');
    });
    // CONNECT arrives here rather than as a request; validation refuses it like any other invalid request.
    this.server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      const rejection = validateRequest(req) ?? { status: 405, reason: 'CONNECT is not supported' };
      endSocket(socket, rejection.status, rejection.headers);
      this.logRejection(req, rejection);
    });
  }

  /**
   * Installs the default certificate of a (new) snapshot, and whether new connections are asked
   * for a client certificate; SNI handshakes read the live certificates themselves.
   */
  useCertificates(contexts: TlsContexts): void {
    if (!this.tls || !(this.server instanceof https.Server)) return;
    if (this.defaultKey === contexts.key) return;
    this.defaultKey = contexts.key;
    this.server.setSecureContext(this.tls.defaultOptions(contexts));
    // Node reads this per accepted connection; the constructor's option only sets the first value.
    (this.server as https.Server & { requestCert: boolean }).requestCert = contexts.clientCertificates.request;
  }

  private logRejection(req: IncomingMessage, rejection: Rejection): void {
    this.logger.info({ type: 'access', method: req.method, status: rejection.status, reason: rejection.reason, client_ip: req.socket.remoteAddress }, 'request rejected');
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
    this.server.closeIdleConnections();
    return closed;
  }

  forceClose(): void {
    this.server.closeAllConnections();
  }
}
