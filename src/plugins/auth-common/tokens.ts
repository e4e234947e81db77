import type { Exchange } from '../../pipeline/exchange.js';
import { cookieValue, firstHeader, queryArgs } from './request.js';

export interface TokenSources {
  uri_param_names: readonly string[];
  cookie_names: readonly string[];
  header_names: readonly string[];
}

/** `true` stands for a bare query argument (`?jwt`), which Kong collects as a boolean "token". */
export type FoundToken = string | true;

export type TokenSearch = { kind: 'none' } | { kind: 'one'; token: FoundToken } | { kind: 'many' };

const BEARER = /\s*[Bb]earer\s+(.+)/;

/**
 * Kong jwt's retrieve_tokens: query arguments, then cookies, then headers (`Bearer <token>`, first
 * value of each header). Identical tokens found in several places count once; distinct ones are
 * "multiple tokens".
 */
export function findTokens(ex: Exchange, sources: TokenSources): TokenSearch {
  const found = new Set<FoundToken>();
  if (sources.uri_param_names.length) {
    const args = queryArgs(ex);
    for (const name of sources.uri_param_names) {
      const v = args.get(name);
      if (v === undefined) continue;
      for (const t of Array.isArray(v) ? v : [v]) if (t !== '') found.add(t);
    }
  }
  for (const name of sources.cookie_names) {
    const v = cookieValue(ex, name);
    if (v) found.add(v);
  }
  for (const name of sources.header_names) {
    const v = firstHeader(ex, name);
    if (v === undefined) continue;
    const m = BEARER.exec(v);
    if (m && m[1]) found.add(m[1]);
  }
  if (found.size === 0) return { kind: 'none' };
  if (found.size > 1) return { kind: 'many' };
  return { kind: 'one', token: found.values().next().value! };
}
