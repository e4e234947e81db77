import http from 'node:http';
import type { Socket } from 'node:net';
import type { RequestHandler } from '../pipeline/handler.js';
import { validateRequest } from './request-validation.js';
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

/** The proxy's HTTP/1.1 listener: node's strict parser, plus request validation before routing. */
export class HttpListener {
  readonly server: http.Server;
  private draining = false;

  constructor(handler: RequestHandler, logger: Logger) {
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
      (req, res) => {
        if (this.draining) res.shouldKeepAlive = false;
        const rejection = validateRequest(req);
        if (rejection) {
          const body = JSON.stringify({ message: rejection.status === 405 ? 'Method not allowed' : 'Bad request' });
          res.shouldKeepAlive = false;
          res.writeHead(rejection.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
          res.end(body);
          logger.info({ type: 'access', method: req.method, status: rejection.status, reason: rejection.reason, client_ip: req.socket.remoteAddress }, 'request rejected');
          return;
        }
        handler.handle(req, res);
      },
    );
    this.server.on('clientError', (err: Error & { code?: string }, socket: Socket) => {
      if (!socket.writable || (err.code === 'ECONNRESET')) {
        socket.destroy();
        return;
      }
      const [status, text] = CLIENT_ERROR_STATUS[err.code ?? ''] ?? [400, 'Bad Request'];
      const body = JSON.stringify({ message: status === 431 ? 'Request header or cookie too large' : 'Bad request' });
      socket.end(`HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
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
