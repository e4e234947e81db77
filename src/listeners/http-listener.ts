import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { RequestHandler } from '../pipeline/handler.js';
import { ALLOWED_METHODS, normalizeRequest, unsupportedVersionStatus, validateRequest } from './request-validation.js';
import type { Logger } from '../observability/logger.js';

export interface ListenAddress {
  host: string;
  port: number;
}

const CLIENT_ERROR_STATUS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [400, 'Bad Request'],
};

/** Kong-style `{"message": ...}` bodies for the answers the listener gives itself. */
const MESSAGES: Record<number, string> = {
  405: 'Method not allowed',
  431: 'Request header or cookie too large',
  505: 'HTTP version not supported',
};

function errorBody(status: number): string {
  return JSON.stringify({ message: MESSAGES[status] ?? 'Bad request' });
}

/** The proxy's HTTP/1.1 listener: node's strict parser, plus request validation before routing. */
export class HttpListener {
  readonly server: http.Server;
  private draining = false;
  private readonly handler: RequestHandler;
  private readonly logger: Logger;

  constructor(handler: RequestHandler, logger: Logger) {
    this.handler = handler;
    this.logger = logger;
    this.server = http.createServer(
      {
        requireHostHeader: true,
        maxHeaderSize: 16384,
        keepAliveTimeout: 60_000,
        headersTimeout: 60_000,
        requestTimeout: 0,
        joinDuplicateHeaders: false,
        insecureHTTPParser: false,
      },
      (req, res) => this.onRequest(req, res, false),
    );
    // With a listener here node leaves "100 Continue" to us: a request we refuse gets its final
    // status at once instead of an invitation to send a body first.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res, true));
    this.server.on('clientError', (err: Error & { code?: string; rawPacket?: Buffer }, socket: Socket) => {
      if (!socket.writable || err.code === 'ECONNRESET') {
        socket.destroy();
        return;
      }
      const [status, text] =
        err.code === 'HPE_INVALID_VERSION' && unsupportedVersionStatus(err.rawPacket) === 505
          ? [505, 'HTTP Version Not Supported']
          : (CLIENT_ERROR_STATUS[err.code ?? ''] ?? [400, 'Bad Request']);
      const body = errorBody(status);
      socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      logger.info({ type: 'access', status, reason: `parse error (${err.code ?? err.message})`, client_ip: socket.remoteAddress }, 'request rejected');
    });
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
      this.logger.info({ type: 'access', method: req.method, status: rejection.status, reason: rejection.reason, client_ip: req.socket.remoteAddress }, 'request rejected');
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
