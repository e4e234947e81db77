import { Type, type Static } from '@sinclair/typebox';
import { IDENTITY_HEADERS } from '../../pipeline/consumer.js';
import { anonymousField, realmMessage, realmPattern, runOnPreflightField } from '../auth-common/schema.js';

/** Only asymmetric algorithms: a key set is public, so an HMAC "key" from it would be no secret. */
export const JWKS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const url = (description: string) =>
  Type.Optional(Type.String({ pattern: '^https?://[^\\s/?#]+[^\\s]*$', 'x-message': 'must be an http:// or https:// URL', description }));
const names = (fallback: string[], description: string) => Type.Array(Type.String({ minLength: 1 }), { default: fallback, description });

export const schema = Type.Object(
  {
    jwks_uri: url("The identity provider's JSON Web Key Set URL. Exactly one of `jwks_uri` and `discovery_uri` is required."),
    discovery_uri: url(
      "An OpenID Connect discovery document URL (`https://idp.example/.well-known/openid-configuration`): its `jwks_uri` is used, and its `issuer` is required of tokens unless `issuer` is set.",
    ),
    issuer: Type.Optional(Type.String({ minLength: 1, description: 'The required `iss` claim (exact match). Unset: the discovery document\'s issuer, or no check with `jwks_uri`.' })),
    audiences: names([], 'Accepted audiences: when not empty, the token\'s `aud` (a string or an array) must contain one of them.'),
    required_scopes: names([], 'Scopes the token must all have, in its `scope` claim (space-separated) or `scp` claim (array or string). Missing ones give `403` with `error="insufficient_scope"`.'),
    required_claims: names([], 'Claims that must be present (not null) in the token.'),
    algorithms: Type.Array(Type.Union(JWKS_ALGORITHMS.map((a) => Type.Literal(a))), {
      default: [...JWKS_ALGORITHMS],
      minItems: 1,
      description: 'Accepted token algorithms (asymmetric only; `none` and HS* are never accepted). A key whose JWK names an `alg` verifies only that algorithm.',
    }),
    leeway: Type.Integer({
      default: 0,
      minimum: 0,
      maximum: 3600,
      'x-message': 'must be an integer between 0 and 3600',
      description: 'Clock leeway in seconds applied to `exp` and `nbf`.',
    }),
    require_exp: Type.Boolean({ default: true, description: 'Refuse tokens without an `exp` claim.' }),
    uri_param_names: names([], 'Query arguments to read the token from.'),
    cookie_names: names([], 'Cookies to read the token from.'),
    header_names: names(['authorization'], 'Headers to read the token from (`Bearer <token>`).'),
    claims_to_headers: Type.Array(
      Type.Object(
        {
          claim: Type.String({ minLength: 1, description: 'A top-level claim name.' }),
          header: Type.String({ pattern: '^[A-Za-z0-9_-]+$', 'x-message': "bad header name, allowed characters are A-Z, a-z, 0-9, '_', and '-'", description: 'The upstream header.' }),
        },
        { additionalProperties: false },
      ),
      {
        default: [],
        description:
          'Claims sent upstream as headers (strings as they are, numbers and booleans as text, arrays joined with ", ", objects as JSON). Client-sent copies of these headers are always removed. The identity headers (`X-Consumer-*`, `X-Credential-Identifier`, ...) and framing headers (`Host`, `Content-Length`, ...) cannot be targets.',
      },
    ),
    consumer_claim: Type.Optional(Type.String({ minLength: 1, description: 'A claim (e.g. `sub`) naming the consumer; unset: tokens authenticate without a consumer.' })),
    consumer_by: Type.Array(Type.Union([Type.Literal('id'), Type.Literal('username'), Type.Literal('custom_id')]), {
      default: ['username', 'custom_id'],
      minItems: 1,
      description: 'How `consumer_claim` is matched to a consumer, tried in order.',
    }),
    consumer_optional: Type.Boolean({ default: false, description: 'With `consumer_claim`: accept a valid token whose consumer does not exist (no consumer is set) instead of refusing it.' }),
    groups_claim: Type.Optional(Type.String({ minLength: 1, description: 'A claim (array of strings, or one string) whose values become the authenticated groups (the `acl` plugin\'s `X-Authenticated-Groups`).' })),
    anonymous: anonymousField(),
    run_on_preflight: runOnPreflightField(),
    realm: Type.Optional(Type.String({ pattern: realmPattern, 'x-message': realmMessage, description: 'The `realm` of the `WWW-Authenticate: Bearer` challenge.' })),
    timeout: Type.Integer({
      default: 3000,
      minimum: 100,
      maximum: 60000,
      'x-message': 'must be an integer between 100 and 60000',
      description: 'Milliseconds allowed for one refresh of the key set (discovery document and JWKS together). A request waits at most this long.',
    }),
    cache_ttl: Type.Number({
      default: 300,
      minimum: 0,
      description: 'Seconds after which the key set is refreshed in the background (known keys keep working meanwhile, and if the refresh fails).',
    }),
    refresh_cooldown: Type.Number({
      default: 30,
      minimum: 1,
      'x-message': 'must be at least 1',
      description:
        'Minimum seconds between two fetches of the key set. A token with an unknown `kid` triggers a fetch only when the last one is older than this, so a flood of unknown `kid`s costs at most one fetch per cooldown.',
    }),
  },
  {
    additionalProperties: false,
    description:
      "Validates bearer tokens issued by an identity provider against its JSON Web Key Set (from `jwks_uri` or an OpenID Connect discovery document): signature by `kid`, issuer, audiences, scopes, required claims, `exp`/`nbf` with leeway. Keys are cached per configuration and refreshed by `kid` with a cooldown. Beyond Kong OSS (Kong's `jwt` plugin needs a `jwt_secrets` credential per issuer).",
  },
);

export type JwksConfig = Static<typeof schema>;

/** Headers a token claim may not set: the gateway's identity headers and those that frame or route the request. */
const RESERVED_HEADERS = new Set<string>([
  ...IDENTITY_HEADERS,
  'host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect',
]);

export function check(config: JwksConfig): string | undefined {
  if ((config.jwks_uri === undefined) === (config.discovery_uri === undefined)) return 'config: exactly one of config.jwks_uri and config.discovery_uri is required';
  for (const [i, m] of config.claims_to_headers.entries()) {
    if (RESERVED_HEADERS.has(m.header.toLowerCase().replaceAll('_', '-'))) return `config.claims_to_headers[${i}].header: "${m.header}" is set by the gateway and cannot carry a claim`;
  }
  return undefined;
}
