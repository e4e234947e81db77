/** Claim checks of the jwks plugin, with leeway. */

export interface ClaimRules {
  issuer: string | undefined;
  audiences: readonly string[];
  requiredScopes: readonly string[];
  requiredClaims: readonly string[];
  /** Seconds. */
  leeway: number;
  requireExp: boolean;
}

export interface ClaimFailure {
  status: 401 | 403;
  message: string;
  /** RFC 6750 error code for WWW-Authenticate. */
  error: 'invalid_token' | 'insufficient_scope';
}

const invalid = (message: string): ClaimFailure => ({ status: 401, message, error: 'invalid_token' });

/** The token's scopes: `scope` (space-separated string) or `scp` (array, or a string). */
export function tokenScopes(claims: Record<string, unknown>): Set<string> {
  const out = new Set<string>();
  for (const v of [claims.scope, claims.scp]) {
    if (typeof v === 'string') for (const s of v.split(' ')) if (s) out.add(s);
    if (Array.isArray(v)) for (const s of v) if (typeof s === 'string') out.add(s);
  }
  return out;
}

/** The first rule the claims break, or undefined. `now` in seconds. */
export function checkClaims(claims: Record<string, unknown>, rules: ClaimRules, now: number): ClaimFailure | undefined {
  const { exp, nbf, iat } = claims;
  if (exp === undefined || exp === null) {
    if (rules.requireExp) return invalid("Missing 'exp' claim");
  } else if (typeof exp !== 'number' || !Number.isFinite(exp)) {
    return invalid("Invalid 'exp' claim");
  } else if (now >= exp + rules.leeway) {
    return invalid('Token expired');
  }
  if (nbf !== undefined && nbf !== null) {
    if (typeof nbf !== 'number' || !Number.isFinite(nbf)) return invalid("Invalid 'nbf' claim");
    if (nbf > now + rules.leeway) return invalid('Token not valid yet');
  }
  if (iat !== undefined && iat !== null && (typeof iat !== 'number' || !Number.isFinite(iat))) return invalid("Invalid 'iat' claim");
  if (rules.issuer !== undefined && claims.iss !== rules.issuer) return invalid('Invalid issuer');
  if (rules.audiences.length) {
    const aud = claims.aud;
    const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!list.some((a) => typeof a === 'string' && rules.audiences.includes(a))) return invalid('Invalid audience');
  }
  for (const name of rules.requiredClaims) {
    if (claims[name] === undefined || claims[name] === null) return invalid(`Missing required claim '${name}'`);
  }
  if (rules.requiredScopes.length) {
    const scopes = tokenScopes(claims);
    if (!rules.requiredScopes.every((s) => scopes.has(s))) return { status: 403, message: 'Insufficient scope', error: 'insufficient_scope' };
  }
  return undefined;
}
