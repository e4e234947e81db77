import type { Exchange, HeaderMap, HeaderValue } from '../../pipeline/exchange.js';
import { errorReply } from '../../pipeline/reply.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { decodeArgs, encodeArgs } from './args.js';
import { bodyKind, hasOps, transformArgs, transformBody, type Ops, type ValueOp } from './body.js';
import { parsePair, sanitizeHeaderValue } from './pairs.js';
import type { RequestTransformerConfig } from './schema.js';
import { compileTemplate, ExchangeScope, type CompiledTemplate, type TemplateScope } from './template.js';

type Target = 'headers' | 'querystring' | 'body';

function compileOps(config: RequestTransformerConfig, target: Target): Ops {
  const valueOps = (entries: readonly string[], lowerName: boolean): ValueOp[] =>
    entries.map((entry) => {
      const pair = parsePair(entry)!;
      return { name: lowerName ? pair.name.toLowerCase() : pair.name, value: compileTemplate(pair.value) };
    });
  const lower = target === 'headers';
  return {
    remove: config.remove[target].map((e) => {
      const name = parsePair(e)?.name ?? e;
      return lower ? name.toLowerCase() : name;
    }),
    rename: valueOps(config.rename[target], lower),
    replace: valueOps(config.replace[target], lower),
    add: valueOps(config.add[target], lower),
    append: valueOps(config.append[target], lower),
  };
}

const FORM_TO_QUERY_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'TRACE']);

function first(v: HeaderValue | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

// A rendered path may carry decoded query text: characters Node refuses in a request path, anything
// outside printable ASCII, and `?` / `#` (which would start a query or fragment) are percent-encoded.
function encodePath(path: string): string {
  return path.replace(/[^\x21-\x22\x24-\x3e\x40-\x7e]/gu, (ch) => {
    try {
      return encodeURIComponent(ch);
    } catch {
      return '';
    }
  });
}

export function create(config: RequestTransformerConfig, _deps: PluginDeps): PluginInstance {
  const headerOps = compileOps(config, 'headers');
  const queryOps = compileOps(config, 'querystring');
  const bodyOps = compileOps(config, 'body');
  const uri: CompiledTemplate | undefined = config.replace.uri ? compileTemplate(config.replace.uri) : undefined;
  const method = config.http_method?.toUpperCase();
  const formToQuery = method !== undefined && FORM_TO_QUERY_METHODS.has(method);
  const withHeaders = hasOps(headerOps);
  const withQuery = hasOps(queryOps);
  const withBody = hasOps(bodyOps);
  // Header operations may change the Content-Type that decides how the body is handled.
  const headerOpsTouchContentType = [
    ...headerOps.rename.flatMap((o) => [o.name, o.value.constant?.toLowerCase()]),
    ...[...headerOps.replace, ...headerOps.add, ...headerOps.append].map((o) => o.name),
  ].includes('content-type');

  function transformHeaders(h: HeaderMap, scope: TemplateScope): void {
    // Kong hides `host` from the operations: remove/rename never see it, replace always sets it,
    // add ignores it, append creates it.
    const host = h.host;
    delete h.host;
    for (const name of headerOps.remove) delete h[name];
    for (const op of headerOps.rename) {
      const value = h[op.name];
      if (value === undefined) continue;
      const to = op.value.render(scope).toLowerCase();
      if (to === op.name || to === '') continue;
      h[to] = value;
      delete h[op.name];
    }
    for (const op of headerOps.replace) {
      if (h[op.name] !== undefined || op.name === 'host') h[op.name] = sanitizeHeaderValue(op.value.render(scope));
    }
    for (const op of headerOps.add) {
      if (h[op.name] === undefined && op.name !== 'host') h[op.name] = sanitizeHeaderValue(op.value.render(scope));
    }
    for (const op of headerOps.append) {
      const value = sanitizeHeaderValue(op.value.render(scope));
      const prev = h[op.name];
      h[op.name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    }
    if (h.host === undefined && host !== undefined) h.host = host;
  }

  function hasUnbufferedBody(ex: Exchange): boolean {
    const len = ex.req.headers['content-length'];
    return (len !== undefined && len !== '0') || ex.req.headers['transfer-encoding'] !== undefined;
  }

  return {
    needsRequestBody(ex) {
      const kind = bodyKind(ex.req.headers['content-type']);
      if (formToQuery && kind === 'form') return true;
      return withBody && (kind !== undefined || headerOpsTouchContentType);
    },

    access(ex) {
      const scope = new ExchangeScope(ex);

      if (uri) {
        const path = uri.render(scope);
        if (!path.startsWith('/')) {
          return errorReply(ex, 500, undefined, `request-transformer: replace.uri rendered to '${path}', not a path`);
        }
        ex.upstreamPath = encodePath(path);
      }

      if (method) {
        ex.method = method;
        if (formToQuery && ex.requestBody && ex.requestBody.length > 0 && bodyKind(first(ex.upstreamHeaders['content-type'])) === 'form') {
          const query = decodeArgs(ex.upstreamQuery);
          for (const [name, value] of decodeArgs(ex.requestBody.toString('utf8'))) {
            const prev = query.get(name);
            const added = Array.isArray(value) ? value : [value];
            query.set(name, prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), ...added]);
          }
          ex.upstreamQuery = encodeArgs(query) || null;
        }
      }

      if (withHeaders) transformHeaders(ex.upstreamHeaders, scope);

      if (withBody) {
        const contentType = first(ex.upstreamHeaders['content-type']);
        const kind = bodyKind(contentType);
        // A body that was not buffered cannot be rewritten; only an absent body counts as empty.
        if (kind && (ex.requestBody !== undefined || !hasUnbufferedBody(ex))) {
          const next = transformBody(kind, bodyOps, ex.requestBody ?? Buffer.alloc(0), contentType!, scope);
          if (next) ex.requestBody = next;
        }
      }

      if (withQuery) {
        const args = decodeArgs(ex.upstreamQuery);
        transformArgs(queryOps, args, scope);
        ex.upstreamQuery = encodeArgs(args) || null;
      }
      return undefined;
    },
  };
}
