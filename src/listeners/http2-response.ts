import type { OutgoingHttpHeaders } from 'node:http2';
import type * as Http2Module from 'node:http2';

/**
 * Connection-specific fields (RFC 9113 8.2.2). node:http2 throws on all of them but Connection,
 * which it drops with a process warning; a plugin or an upstream may still have set one.
 */
const CONNECTION_SPECIFIC = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings'];

function withoutConnectionSpecific(headers: OutgoingHttpHeaders | undefined): OutgoingHttpHeaders | undefined {
  if (!headers) return headers;
  let out: OutgoingHttpHeaders | undefined;
  for (const name of CONNECTION_SPECIFIC) {
    if (headers[name] === undefined) continue;
    out ??= { ...headers };
    delete out[name];
  }
  return out ?? headers;
}

/**
 * The response class of HTTP/2 streams, given to the request handler where HTTP/1 gives an
 * http.ServerResponse: node's compatibility response plus the few members of ServerResponse the
 * handler uses and HTTP/2 lacks. Installed with the `Http2ServerResponse` server option, so
 * HTTP/1.1 responses on the same listener are untouched. Built from the node:http2 module the
 * caller loaded: the module costs ~5 MB, so only a gateway with a TLS listener loads it.
 */
export function http2ResponseClass(h2: typeof Http2Module) {
  class Http2Response extends h2.Http2ServerResponse {
    /** Connection reuse is an HTTP/1 notion; a draining HTTP/2 session gets GOAWAY instead. */
    shouldKeepAlive = true;

    override writeHead(statusCode: number, headersOrMessage?: OutgoingHttpHeaders | string, headers?: OutgoingHttpHeaders): this {
      if (typeof headersOrMessage === 'string') return super.writeHead(statusCode, headersOrMessage, withoutConnectionSpecific(headers));
      return super.writeHead(statusCode, withoutConnectionSpecific(headersOrMessage));
    }

    /**
     * A stream the client reset is closed at once but tells the compatibility response only on
     * the next tick; a write in between would reach stream.respond(), which throws. Such writes
     * are dropped: the 'close' event follows anyway.
     */
    override write(chunk: any, ...rest: any[]): boolean {
      if (this.stream.closed || this.stream.destroyed) return false;
      return (super.write as (...args: any[]) => boolean)(chunk, ...rest);
    }

    override end(...args: any[]): this {
      if (this.stream.closed || this.stream.destroyed) return this;
      return (super.end as (...a: any[]) => this)(...args);
    }
  }

  // As ServerResponse.destroyed: true once the stream is closed or reset (nothing more can be sent).
  // The compatibility response has no such member (the typings declare one), so a getter on the
  // prototype supplies it.
  Object.defineProperty(Http2Response.prototype, 'destroyed', {
    get(this: Http2Response): boolean {
      return this.stream.closed || this.stream.destroyed;
    },
  });
  return Http2Response;
}

export type Http2Response = InstanceType<ReturnType<typeof http2ResponseClass>>;
