import type { IncomingMessage } from 'node:http';
import type { Exchange } from '../../pipeline/exchange.js';
import { errorReply } from '../../pipeline/reply.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import type { RequestSizeLimitingConfig } from './schema.js';

const UNITS = { megabytes: 1048576, kilobytes: 1024, bytes: 1 } as const;
const MESSAGE = 'Request size limit exceeded';
const EXCEEDED = 'request-size-limiting:exceeded';

/** The body stream error that makes the upstream call fail when a streamed body crosses the limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'GATEHOUSE_BODY_TOO_LARGE';
  constructor(limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

function expectsContinue(ex: Exchange): boolean {
  const v = ex.req.headers.expect;
  return typeof v === 'string' && v.trim().toLowerCase() === '100-continue';
}

function tooLarge(ex: Exchange, size: string) {
  return errorReply(ex, expectsContinue(ex) ? 417 : 413, MESSAGE, `request-size-limiting: body ${size}`);
}

export function create(config: RequestSizeLimitingConfig, _deps: PluginDeps): PluginInstance {
  const limit = config.allowed_payload_size * UNITS[config.size_unit];

  /**
   * Counts a body without Content-Length as the HTTP parser hands it over (before anyone reads
   * it), so nothing is buffered here. At the limit the request stream is failed: the upstream
   * call aborts and the handler's error reply becomes our 413 in `response`. Like undici does for
   * request bodies, the stream is detached from its socket first, so the client connection
   * survives long enough to get the answer (and is then closed: the rest of the body is unread).
   */
  function countWhileStreaming(ex: Exchange): void {
    const req = ex.req as IncomingMessage & { push: (chunk: unknown, encoding?: BufferEncoding) => boolean };
    let seen = req.readableLength;
    const push = req.push;
    let over = false;
    const onOver = () => {
      over = true;
      ex.shared[EXCEEDED] = seen;
      if (ex.res.headersSent) {
        // Too late for a 413 (the upstream already answered): cut the connection instead.
        req.socket?.destroy();
        return;
      }
      ex.res.shouldKeepAlive = false;
      req.on('error', () => undefined);
      (req as { socket: unknown }).socket = null;
      req.destroy(new BodyTooLargeError(limit));
    };
    req.push = function (chunk: unknown, encoding?: BufferEncoding): boolean {
      if (over) return true; // the rest of the body is read and dropped until the connection closes
      if (chunk !== null && chunk !== undefined) {
        seen += (chunk as Buffer).length;
        if (seen > limit) {
          onOver();
          return true;
        }
      }
      return push.call(this, chunk, encoding);
    };
    if (seen > limit) onOver();
  }

  return {
    access(ex) {
      const req = ex.req;
      const cl = req.headers['content-length'];
      if (cl !== undefined && /^\d+$/.test(cl)) {
        return Number(cl) > limit ? tooLarge(ex, `Content-Length ${cl} > ${limit}`) : undefined;
      }
      if (config.require_content_length && req.headers['transfer-encoding'] !== 'chunked') {
        return errorReply(ex, 411, 'A valid Content-Length header is required', 'request-size-limiting: no Content-Length');
      }
      if (req.headers['transfer-encoding'] !== undefined && !req.complete) countWhileStreaming(ex);
      else if (req.readableLength > limit) return tooLarge(ex, `${req.readableLength} bytes > ${limit}`);
      return undefined;
    },

    response(ex) {
      const seen = ex.shared[EXCEEDED];
      if (seen === undefined || !ex.localReply) return;
      const reply = tooLarge(ex, `streamed ${String(seen)} bytes > ${limit}`);
      ex.status = reply.status;
      ex.reason = reply.reason;
      ex.responseBody = Buffer.from(JSON.stringify(reply.body));
      ex.responseHeaders['content-type'] = 'application/json; charset=utf-8';
      ex.responseHeaders.connection = 'close';
    },
  };
}
