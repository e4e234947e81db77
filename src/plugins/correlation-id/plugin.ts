import type { Exchange, HeaderValue } from '../../pipeline/exchange.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { makeGenerator } from './generators.js';
import type { CorrelationIdConfig } from './schema.js';

function first(v: HeaderValue | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function create(config: CorrelationIdConfig, _deps: PluginDeps): PluginInstance {
  const header = config.header_name.toLowerCase();
  const generate = makeGenerator(config.generator);
  // The ID chosen in access, for echo_downstream (like kong.ctx.plugin).
  const chosen = new WeakMap<Exchange, string>();

  return {
    access(ex) {
      let id = first(ex.upstreamHeaders[header]);
      if (!id) {
        id = generate(ex);
        ex.upstreamHeaders[header] = id;
      }
      if (config.echo_downstream) chosen.set(ex, id);
      return undefined;
    },

    response(ex) {
      if (!config.echo_downstream) return;
      // access may not have run (a reply produced before it): fall back like Kong's header_filter.
      let id = chosen.get(ex) ?? first(ex.req.headers[header]);
      if (!id) id = generate(ex);
      ex.responseHeaders[header] = id;
    },
  };
}
