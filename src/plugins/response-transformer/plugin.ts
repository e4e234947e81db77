import type { PluginDeps, PluginInstance } from '../types.js';
import type { ResponseTransformerConfig } from './schema.js';
import { compileHeaderOps, compileJsonOps, hasJsonOps, isJsonContentType, transformHeaders, transformJson } from './transform.js';

export function create(config: ResponseTransformerConfig, deps: PluginDeps): PluginInstance {
  const headerOps = compileHeaderOps(config);
  const jsonOps = compileJsonOps(config);
  const withHeaders =
    headerOps.remove.length + headerOps.rename.length + headerOps.replace.length + headerOps.add.length + headerOps.append.length > 0;
  // Entries whose typed value does not convert are dropped at compile time, but they still make
  // Kong buffer and re-encode the body.
  const withJson =
    hasJsonOps(jsonOps) ||
    config.replace.json.length + config.add.json.length + config.append.json.length > 0;

  return {
    response(ex) {
      if (withHeaders) transformHeaders(headerOps, ex.responseHeaders);
    },

    needsResponseBody(ex) {
      return withJson && isJsonContentType(ex.responseHeaders['content-type']);
    },

    responseBody(ex, body) {
      // The core may pass the body when another plugin asked for it: decide again.
      if (body.length === 0 || !withJson || !isJsonContentType(ex.responseHeaders['content-type'])) return body;
      const next = transformJson(jsonOps, body);
      if (!next) {
        deps.logger.warn({ plugin: 'response-transformer', status: ex.status }, 'body transform skipped: not a JSON object');
        return body;
      }
      return next;
    },
  };
}
