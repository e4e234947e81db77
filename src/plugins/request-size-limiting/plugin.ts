import type { Exchange } from '../../pipeline/exchange.js';
import { errorReply } from '../../pipeline/reply.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import type { RequestSizeLimitingConfig } from './schema.js';

const UNITS = { megabytes: 1048576, kilobytes: 1024, bytes: 1 } as const;
const MESSAGE = 'Request size limit exceeded';

function expectsContinue(ex: Exchange): boolean {
  const v = ex.req.headers.expect;
  return typeof v === 'string' && v.trim().toLowerCase() === '100-continue';
}

function tooLarge(ex: Exchange, size: string) {
  return errorReply(ex, expectsContinue(ex) ? 417 : 413, MESSAGE, `request-size-limiting: body ${size}`);
}

export function create(config: RequestSizeLimitingConfig, _deps: PluginDeps): PluginInstance {
  const limit = config.allowed_payload_size * UNITS[config.size_unit];

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
      // No Content-Length: the core counts the body as it streams upstream and answers 413 at the limit.
      if (req.headers['transfer-encoding'] !== undefined) ex.requestBodyLimit = Math.min(limit, ex.requestBodyLimit ?? Infinity);
      return undefined;
    },
  };
}
