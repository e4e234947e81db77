import type { KeyObject } from 'node:crypto';
import { load } from '../../lib/lazy.js';
import { JwtAlgorithms } from '../../config/credentials.js';
import type { Credential } from '../../config/consumers.js';
import type { Exchange, LocalReply, Outcome } from '../../pipeline/exchange.js';
import { setConsumer } from '../../pipeline/consumer.js';
import { exitReply } from '../../pipeline/reply.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { Anonymous } from '../auth-common/anonymous.js';
import { bearerChallenge } from '../auth-common/challenge.js';
import { decodeJwt } from '../auth-common/compact-jwt.js';
import { findTokens } from '../auth-common/tokens.js';
import { buildKeys } from './keys.js';
import type { JwtConfig } from './schema.js';

const ALGORITHMS: ReadonlySet<string> = new Set(JwtAlgorithms);

/** Kong jwt_parser's verify_registered_claims: only listed claims that are present are checked. */
export function registeredClaimErrors(claims: Record<string, unknown>, toVerify: readonly string[], now: number): Record<string, string> | undefined {
  let errors: Record<string, string> | undefined;
  for (const name of toVerify) {
    const value = claims[name];
    if (value === undefined) continue;
    let problem: string | undefined;
    if (typeof value !== 'number') problem = 'must be a number';
    else if (name === 'exp' && value <= now) problem = 'token expired';
    else if (name === 'nbf' && value > now) problem = 'token not valid yet';
    if (problem) (errors ??= {})[name] = problem;
  }
  return errors;
}

export function create(config: JwtConfig, deps: PluginDeps): PluginInstance {
  const anonymous = new Anonymous('jwt', config.anonymous, deps);
  const keys = buildKeys(deps.consumers.credentials('jwt_secrets'), config.secret_is_base64);
  const byKey = deps.consumers.indexBy('jwt_secrets', 'key');
  const claimName = config.key_claim_name;
  const toVerify = config.claims_to_verify ?? [];
  const noToken = { 'www-authenticate': bearerChallenge(config.realm) };
  const invalid = { 'www-authenticate': bearerChallenge(config.realm, 'invalid_token') };

  const fail = (status: number, body: unknown, reason: string, headers = invalid): LocalReply => exitReply(status, body, `jwt: ${reason}`, headers);

  async function verify(ex: Exchange, token: string, alg: string, key: KeyObject | Uint8Array, credential: Credential, claims: Record<string, unknown>): Promise<Outcome> {
    try {
      await load<typeof import('jose')>('jose').compactVerify(token, key, { algorithms: [alg] });
    } catch {
      return anonymous.fail(ex, fail(401, { message: 'Invalid signature' }, 'invalid signature'));
    }
    const now = Math.floor(Date.now() / 1000);
    const claimErrors = registeredClaimErrors(claims, toVerify, now);
    if (claimErrors) return anonymous.fail(ex, fail(401, claimErrors, 'claims rejected'));
    if (config.maximum_expiration > 0) {
      const exp = claims.exp;
      if (typeof exp !== 'number' || exp - now > config.maximum_expiration) {
        return anonymous.fail(ex, fail(401, { exp: 'exceeds maximum allowed expiration' }, 'expiration too far'));
      }
    }
    setConsumer(ex, credential.consumer, credential, String(credential.fields.key));
    ex.shared.authenticated_jwt_token = token;
    return undefined;
  }

  function authenticate(ex: Exchange): LocalReply | Promise<Outcome> {
    const found = findTokens(ex, config);
    if (found.kind === 'none') return fail(401, { message: 'Unauthorized' }, 'no token', noToken);
    if (found.kind === 'many') return fail(401, { message: 'Multiple tokens provided' }, 'multiple tokens');
    if (typeof found.token !== 'string') return fail(401, { message: 'Unrecognizable token' }, 'unrecognizable token');
    const token = found.token;
    const decoded = decodeJwt(token, ALGORITHMS);
    if (typeof decoded === 'string') return fail(401, { message: `Bad token; ${decoded}` }, 'bad token');
    const { header, claims, alg } = decoded;
    // Lua's `claims[k] or header[k]`: only a missing claim (or false) falls back to the header.
    const fromClaims = claims[claimName];
    const keyValue = fromClaims === undefined || fromClaims === false ? header[claimName] : fromClaims;
    if (keyValue === undefined || keyValue === false) return fail(401, { message: `No mandatory '${claimName}' in claims` }, 'no key claim');
    if (keyValue === '') return fail(401, { message: `Invalid '${claimName}' in claims` }, 'empty key claim');
    const credential = typeof keyValue === 'string' ? byKey.get(keyValue) : undefined;
    if (!credential) return fail(401, { message: `No credentials found for given '${claimName}'` }, 'unknown key');
    const secret = keys.get(credential);
    // The credential pins the algorithm: a token may not choose another one (e.g. HS256 with an RSA key).
    if (!secret || alg !== secret.alg) return fail(401, { message: 'Invalid algorithm' }, 'algorithm mismatch');
    if (!secret.key) return fail(401, { message: 'Invalid key/secret' }, 'unusable secret');
    return verify(ex, token, alg, secret.key, credential, claims);
  }

  return {
    access(ex) {
      if (!config.run_on_preflight && ex.req.method === 'OPTIONS') return undefined;
      if (anonymous.skip(ex)) return undefined;
      const out = authenticate(ex);
      if (out instanceof Promise) return out;
      return anonymous.fail(ex, out);
    },
  };
}
