import type { Exchange, HeaderMap } from '../../pipeline/exchange.js';
import { exitReply } from '../../pipeline/reply.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { OriginPolicy } from './origins.js';
import type { CorsConfig } from './schema.js';

const SKIP = 'cors:skip-response-headers';

function header(ex: Exchange, name: string): string | undefined {
  const v = ex.req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Adds Origin to Vary unless it is listed already. */
function addVary(h: HeaderMap): void {
  const prev = h.vary;
  if (prev === undefined) {
    h.vary = 'Origin';
    return;
  }
  const joined = Array.isArray(prev) ? prev.join(', ') : prev;
  if (joined.split(',').some((t) => t.trim().toLowerCase() === 'origin' || t.trim() === '*')) return;
  h.vary = `${joined}, Origin`;
}

export function create(config: CorsConfig, _deps: PluginDeps): PluginInstance {
  const policy = new OriginPolicy(config.origins);
  const allowHeaders = config.headers?.length ? config.headers.join(',') : undefined;
  const allowMethods = config.methods.join(',');
  const exposed = config.exposed_headers?.length ? config.exposed_headers.join(',') : undefined;

  /** Sets ACAO (and Vary); returns true when the answer is the `*` wildcard. As Kong's configure_origin. */
  function origin(ex: Exchange, h: HeaderMap): boolean {
    if (policy.allowAll) {
      h['access-control-allow-origin'] = '*';
      return true;
    }
    addVary(h);
    if (policy.single !== undefined) {
      h['access-control-allow-origin'] = policy.single;
      return false;
    }
    const requestOrigin = header(ex, 'origin');
    if (requestOrigin) {
      const allowed = policy.match(requestOrigin);
      if (allowed !== undefined) h['access-control-allow-origin'] = allowed;
      else delete h['access-control-allow-origin'];
    }
    return false;
  }

  /** ACAC; with a wildcard, the request's Origin replaces `*` (credentials cannot go with `*`). */
  function credentials(ex: Exchange, h: HeaderMap, allowAll: boolean): void {
    if (!config.credentials) return;
    if (!allowAll) {
      h['access-control-allow-credentials'] = 'true';
      return;
    }
    const requestOrigin = header(ex, 'origin');
    if (requestOrigin) {
      addVary(h);
      h['access-control-allow-origin'] = requestOrigin;
      h['access-control-allow-credentials'] = 'true';
    }
  }

  return {
    access(ex) {
      if (ex.req.method !== 'OPTIONS' || !header(ex, 'origin') || header(ex, 'access-control-request-method') === undefined) return undefined;
      // A preflight: either the upstream answers it (and no CORS headers are added) or we do.
      ex.shared[SKIP] = true;
      if (config.preflight_continue) return undefined;
      const h: HeaderMap = {};
      credentials(ex, h, origin(ex, h));
      const requested = header(ex, 'access-control-request-headers');
      if (allowHeaders !== undefined) h['access-control-allow-headers'] = allowHeaders;
      else if (requested !== undefined) h['access-control-allow-headers'] = requested;
      h['access-control-allow-methods'] = allowMethods;
      if (config.max_age !== undefined) h['access-control-max-age'] = String(config.max_age);
      if (config.private_network && header(ex, 'access-control-request-private-network') === 'true') h['access-control-allow-private-network'] = 'true';
      return exitReply(200, undefined, 'cors: preflight', h);
    },

    response(ex) {
      if (ex.shared[SKIP]) return;
      if (!config.allow_origin_absent && !header(ex, 'origin')) return;
      const h = ex.responseHeaders;
      credentials(ex, h, origin(ex, h));
      if (exposed !== undefined) h['access-control-expose-headers'] = exposed;
    },
  };
}
