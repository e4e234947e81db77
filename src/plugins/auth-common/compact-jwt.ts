import { decodeBase64, utf8 } from './request.js';

export interface DecodedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  alg: string;
}

/** Kong's jwt_parser errors ("Bad token; <reason>"). */
export type DecodeError = 'invalid JSON' | 'invalid alg' | 'invalid claims' | 'invalid signature';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function json(segment: string | undefined): unknown {
  if (segment === undefined) return undefined;
  const bytes = decodeBase64(segment, 'any');
  const text = bytes && utf8(bytes);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Splits and decodes a compact JWS the way Kong's jwt_parser does, without verifying anything:
 * at most three dot-separated parts (extra dots stay in the signature part, which then fails to
 * decode), JSON header and claims, an `alg` from `algorithms`. Never throws.
 */
export function decodeJwt(token: string, algorithms: ReadonlySet<string>): DecodedJwt | DecodeError {
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (second < 0) return 'invalid JSON';
  const header = json(token.slice(0, first));
  const claims = json(token.slice(first + 1, second));
  if (!isObject(header) || claims === undefined) return 'invalid JSON';
  const alg = header.alg;
  if (typeof alg !== 'string' || !algorithms.has(alg)) return 'invalid alg';
  if (!isObject(claims)) return 'invalid claims';
  if (decodeBase64(token.slice(second + 1), 'any') === undefined) return 'invalid signature';
  return { header, claims, alg };
}
