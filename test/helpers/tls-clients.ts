import https from 'node:https';
import http2 from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { Readable } from 'node:stream';

export interface ClientRequest {
  method?: string;
  path: string;
  /** Host header (HTTP/1.1) or :authority (HTTP/2); default: the client's server name. */
  host?: string;
  headers?: Record<string, string>;
  /** A Buffer is sent with Content-Length; a Readable is streamed without one. */
  body?: Buffer | Readable;
}

export interface ClientResponse {
  status: number;
  /** Field names in lower case, no pseudo-headers. */
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The ALPN protocol of the connection the answer came on. */
  alpn: string | false | null;
}

/** One client, one protocol, to the gateway's TLS listener: requests share a connection (keep-alive / one session). */
export interface TlsClient {
  readonly protocol: 'http/1.1' | 'h2';
  request(r: ClientRequest): Promise<ClientResponse>;
  close(): void;
}

async function readBody(source: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of source) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** HTTPS over HTTP/1.1 (ALPN http/1.1) with a keep-alive agent. */
export function https1Client(port: number, ca: string, servername: string): TlsClient {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 4, ALPNProtocols: ['http/1.1'] });
  return {
    protocol: 'http/1.1',
    request(r) {
      return new Promise((resolve, reject) => {
        const req = https.request(
          { host: '127.0.0.1', port, path: r.path, method: r.method ?? 'GET', ca, servername, agent, headers: { host: r.host ?? servername, ...r.headers } },
          (res) => {
            const alpn = (res.socket as TLSSocket).alpnProtocol;
            readBody(res).then((body) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, alpn }), reject);
          },
        );
        req.on('error', reject);
        if (r.body instanceof Readable) r.body.pipe(req);
        else req.end(r.body);
      });
    },
    close: () => agent.destroy(),
  };
}

/** HTTP/2 (ALPN h2) over one session. */
export function http2Client(port: number, ca: string, servername: string): TlsClient {
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca, servername, ALPNProtocols: ['h2'] });
  // Stream errors arrive on the streams; a session error fails the requests in flight.
  session.on('error', () => {});
  return {
    protocol: 'h2',
    request(r) {
      return new Promise((resolve, reject) => {
        const method = r.method ?? 'GET';
        const stream = session.request(
          { ':method': method, ':path': r.path, ':authority': r.host ?? servername, ...(Buffer.isBuffer(r.body) ? { 'content-length': String(r.body.length) } : {}), ...r.headers },
          { endStream: r.body === undefined },
        );
        stream.on('error', reject);
        stream.on('response', (head) => {
          const headers: IncomingHttpHeaders = {};
          for (const [name, value] of Object.entries(head)) if (!name.startsWith(':')) headers[name] = value as string;
          readBody(stream).then(
            (body) => resolve({ status: Number(head[':status']), headers, body, alpn: (session.socket as TLSSocket).alpnProtocol }),
            reject,
          );
        });
        if (r.body instanceof Readable) r.body.pipe(stream);
        else if (r.body !== undefined) stream.end(r.body);
      });
    },
    close: () => session.close(),
  };
}
