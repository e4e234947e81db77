import type { Exchange } from '../../pipeline/exchange.js';
import { exitReply } from '../../pipeline/reply.js';
import { decodeArgs } from '../request-transformer/args.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { echoBody } from './echo.js';
import type { RequestTerminationConfig } from './schema.js';

/** The plugin's own default messages (not the PDK's). Other statuses without a message: empty body. */
const DEFAULT_MESSAGES: Record<number, string> = {
  401: 'Unauthorized',
  404: 'Not found',
  405: 'Method not allowed',
  500: 'An unexpected error occurred',
  502: 'Bad Gateway',
  503: 'Service unavailable',
};

export function create(config: RequestTerminationConfig, deps: PluginDeps): PluginInstance {
  const status = config.status_code;
  const message = config.message ?? DEFAULT_MESSAGES[status];
  const reason = `request-termination: ${status}`;
  const trigger = config.trigger;
  // Headers are looked up like ngx.req.get_headers(): lower case, `_` also matching `-`.
  const triggerHeaders = trigger ? [...new Set([trigger.toLowerCase(), trigger.toLowerCase().replaceAll('_', '-')])] : [];

  function triggered(ex: Exchange): boolean {
    if (!trigger) return true;
    if (triggerHeaders.some((h) => ex.req.headers[h] !== undefined)) return true;
    return decodeArgs(ex.query).has(trigger);
  }

  return {
    needsRequestBody(ex) {
      return config.echo && triggered(ex);
    },

    access(ex) {
      if (!triggered(ex)) return undefined;
      if (config.echo) return exitReply(status, echoBody(ex, message, deps), reason);
      if (config.body !== undefined) {
        return exitReply(status, config.body, reason, config.content_type ? { 'content-type': config.content_type } : undefined);
      }
      return exitReply(status, message === undefined ? undefined : { message }, reason);
    },
  };
}
