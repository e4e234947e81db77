import { load } from '../../lib/lazy.js';
import type { Consumer, Credential } from '../../config/consumers.js';
import type { CredentialType } from '../../config/credentials.js';
import type { Exchange, LocalReply, Outcome } from '../../pipeline/exchange.js';
import { setConsumer } from '../../pipeline/consumer.js';
import { errorReply } from '../../pipeline/reply.js';
import { declarativeId } from '../../lib/uuid.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { Anonymous, EXTERNAL_CREDENTIAL, type ExternalCredential } from '../auth-common/anonymous.js';
import { bearerChallenge } from '../auth-common/challenge.js';
import { decodeJwt } from '../auth-common/compact-jwt.js';
import { keyProblem } from '../auth-common/key-types.js';
import { headerValue, removeUpstreamHeader } from '../auth-common/request.js';
import { findTokens } from '../auth-common/tokens.js';
import { checkClaims, type ClaimRules } from './claims.js';
import { KeySet, type KeyEntry } from './key-set.js';
import type { JwksConfig } from './schema.js';

/** How many keys a token without `kid` is tried against. */
const MAX_TRIES = 5;

/** A claim as a header value: strings as they are, arrays joined, objects as JSON. */
export function claimHeaderValue(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else if (Array.isArray(value)) text = value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');
  else text = JSON.stringify(value);
  return headerValue(text);
}

export function create(config: JwksConfig, deps: PluginDeps): PluginInstance {
  const anonymous = new Anonymous('jwks', config.anonymous, deps);
  const algorithms: ReadonlySet<string> = new Set(config.algorithms);
  const mapped = config.claims_to_headers.map((m) => ({ claim: m.claim, header: m.header.toLowerCase() }));
  const keySet = new KeySet({
    jwksUri: config.jwks_uri,
    discoveryUri: config.discovery_uri,
    timeoutMs: config.timeout,
    cacheTtlMs: config.cache_ttl * 1000,
    cooldownMs: config.refresh_cooldown * 1000,
    logger: deps.logger,
  });
  const noToken = { 'www-authenticate': bearerChallenge(config.realm) };
  const invalidToken = { 'www-authenticate': bearerChallenge(config.realm, 'invalid_token') };
  const rules = (): ClaimRules => ({
    issuer: config.issuer ?? keySet.issuer,
    audiences: config.audiences,
    requiredScopes: config.required_scopes,
    requiredClaims: config.required_claims,
    leeway: config.leeway,
    requireExp: config.require_exp,
  });

  const reject = (ex: Exchange, message: string, reason: string, headers: Record<string, string> = invalidToken): LocalReply =>
    errorReply(ex, 401, message, `jwks: ${reason}`, headers);

  function findConsumer(value: unknown): Consumer | undefined {
    if (typeof value !== 'string' || value === '') return undefined;
    for (const by of config.consumer_by) {
      const c: Consumer | undefined = by === 'id' ? deps.consumers.get(value) : by === 'custom_id' ? deps.consumers.byCustom(value) : deps.consumers.find(value);
      if (c && (by !== 'username' || c.username === value)) return c;
    }
    return undefined;
  }

  async function verifyWith(token: string, alg: string, keys: readonly KeyEntry[]): Promise<boolean> {
    let tries = 0;
    for (const entry of keys) {
      // The key, not the token, decides the algorithm: a JWK with `alg` verifies only that one.
      if ((entry.alg !== undefined && entry.alg !== alg) || keyProblem(alg, entry.key)) continue;
      if (++tries > MAX_TRIES) break;
      try {
        await load<typeof import('jose')>('jose').compactVerify(token, entry.key, { algorithms: [alg] });
        return true;
      } catch {
        // try the next candidate
      }
    }
    return false;
  }

  function accept(ex: Exchange, token: string, claims: Record<string, unknown>): Outcome {
    const subject = typeof claims.sub === 'string' ? claims.sub : '';
    const h = ex.upstreamHeaders;
    let withConsumer = false;
    if (config.consumer_claim !== undefined) {
      const consumer = findConsumer(claims[config.consumer_claim]);
      if (consumer) {
        const identifier = String(claims[config.consumer_claim]);
        // A token has no credential entity; this stands for one so the logical OR and acl see it.
        const credential: Credential = Object.freeze({
          id: declarativeId('jwks_credentials', `${String(claims.iss)}\u0000${identifier}`),
          type: 'jwt_secrets' as CredentialType,
          consumer,
          fields: Object.freeze({ key: identifier, iss: claims.iss, source: 'jwks' }),
        });
        setConsumer(ex, consumer, credential, headerValue(identifier));
        withConsumer = true;
      } else if (!config.consumer_optional) {
        return anonymous.fail(ex, reject(ex, 'No consumer found for the token', 'no consumer'));
      }
    }
    if (!withConsumer) {
      // Authenticated without a consumer: clear what an earlier anonymous match set.
      ex.consumer = undefined;
      ex.credential = undefined;
      for (const name of ['x-consumer-id', 'x-consumer-username', 'x-consumer-custom-id', 'x-anonymous-consumer']) delete h[name];
      if (subject) h['x-credential-identifier'] = headerValue(subject);
      else delete h['x-credential-identifier'];
    }
    const external: ExternalCredential = { plugin: 'jwks', id: subject };
    ex.shared[EXTERNAL_CREDENTIAL] = external;
    ex.shared.authenticated_jwt_token = token;
    if (config.groups_claim !== undefined) {
      const g = claims[config.groups_claim];
      const groups = typeof g === 'string' ? [g] : Array.isArray(g) ? g.filter((v): v is string => typeof v === 'string') : undefined;
      if (groups) ex.authenticatedGroups = groups;
    }
    for (const { claim, header } of mapped) {
      const value = claimHeaderValue(claims[claim]);
      if (value !== undefined) h[header] = value;
    }
    return undefined;
  }

  async function verify(ex: Exchange, token: string, alg: string, kid: string | undefined, claims: Record<string, unknown>): Promise<Outcome> {
    const found = await keySet.resolve(kid);
    if (found.kind === 'unavailable') {
      return anonymous.fail(ex, errorReply(ex, 503, 'Unable to verify the token: the identity provider keys are unavailable', 'jwks: key set unavailable'));
    }
    if (!(await verifyWith(token, alg, found.keys))) return anonymous.fail(ex, reject(ex, 'Invalid signature', kid !== undefined && !found.keys.length ? 'unknown kid' : 'invalid signature'));
    const failure = checkClaims(claims, rules(), Math.floor(Date.now() / 1000));
    if (failure) {
      const headers = { 'www-authenticate': bearerChallenge(config.realm, failure.error, failure.error === 'insufficient_scope' ? `scope="${config.required_scopes.join(' ')}"` : undefined) };
      return anonymous.fail(ex, errorReply(ex, failure.status, failure.message, `jwks: ${failure.message}`, headers));
    }
    return accept(ex, token, claims);
  }

  function authenticate(ex: Exchange): LocalReply | Promise<Outcome> {
    const found = findTokens(ex, config);
    if (found.kind === 'none') return reject(ex, 'Unauthorized', 'no token', noToken);
    if (found.kind === 'many') return reject(ex, 'Multiple tokens provided', 'multiple tokens');
    if (typeof found.token !== 'string') return reject(ex, 'Unrecognizable token', 'unrecognizable token');
    const decoded = decodeJwt(found.token, algorithms);
    if (typeof decoded === 'string') return reject(ex, `Bad token; ${decoded}`, 'bad token');
    // jwk, jku, x5u and x5c are never read: keys come only from the configured key set.
    const kid = decoded.header.kid;
    if (kid !== undefined && typeof kid !== 'string') return reject(ex, 'Bad token; invalid kid', 'bad token');
    return verify(ex, found.token, decoded.alg, kid, decoded.claims);
  }

  return {
    access(ex) {
      // Client copies of mapped headers never reach the upstream, whatever happens next.
      for (const { header } of mapped) removeUpstreamHeader(ex.upstreamHeaders, header);
      if (!config.run_on_preflight && ex.req.method === 'OPTIONS') return undefined;
      if (anonymous.skip(ex)) return undefined;
      const out = authenticate(ex);
      return out instanceof Promise ? out : anonymous.fail(ex, out);
    },

    dispose() {
      return keySet.dispose();
    },
  };
}
