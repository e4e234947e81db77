import { Type, type Static } from '@sinclair/typebox';
import { anonymousField, realmMessage, realmPattern, runOnPreflightField } from '../auth-common/schema.js';

export const schema = Type.Object(
  {
    uri_param_names: Type.Array(Type.String({ minLength: 1 }), {
      default: ['jwt'],
      description: 'A list of querystring parameters that Kong will inspect to retrieve JWTs.',
    }),
    cookie_names: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'A list of cookie names that Kong will inspect to retrieve JWTs.' }),
    key_claim_name: Type.String({
      default: 'iss',
      minLength: 1,
      description:
        'The name of the claim in which the key identifying the secret must be passed. The plugin will attempt to read this claim from the JWT payload and the header, in that order.',
    }),
    secret_is_base64: Type.Boolean({
      default: false,
      description: 'If true, the plugin assumes the credential’s secret to be base64 encoded (HS* algorithms only).',
    }),
    claims_to_verify: Type.Optional(
      Type.Array(Type.Union([Type.Literal('exp'), Type.Literal('nbf')]), {
        description:
          'A list of registered claims (according to RFC 7519) that Kong can verify as well. Accepted values: one of exp or nbf. A listed claim that is absent from the token is not checked (as in Kong); use `maximum_expiration` to require `exp`.',
      }),
    ),
    anonymous: anonymousField(),
    run_on_preflight: runOnPreflightField(),
    maximum_expiration: Type.Number({
      default: 0,
      minimum: 0,
      maximum: 31536000,
      'x-message': 'must be between 0 and 31536000',
      description:
        'A value between 0 and 31536000 (365 days) limiting the lifetime of the JWT to maximum_expiration seconds in the future. A token without `exp`, or expiring later, is refused. 0 disables the check; above 0 requires `exp` in `claims_to_verify`.',
    }),
    header_names: Type.Array(Type.String({ minLength: 1 }), {
      default: ['authorization'],
      description: 'A list of HTTP header names that Kong will inspect to retrieve JWTs (`Bearer <token>`).',
    }),
    realm: Type.Optional(
      Type.String({
        pattern: realmPattern,
        'x-message': realmMessage,
        description: 'When authentication fails the plugin sends `WWW-Authenticate` header with `realm` attribute value.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      "Kong's JWT plugin: verifies HS256/384/512, RS256/384/512, ES256/384/512, PS256/384/512 and EdDSA tokens against the consumers' `jwt_secrets`. The secret is found by the key claim (`iss`); the token's `alg` must equal the secret's algorithm; `alg: none` and embedded keys (`jwk`, `jku`, `x5u`, `x5c`) are never honoured. For tokens from an identity provider's JWKS, see the `jwks` plugin.",
  },
);

export type JwtConfig = Static<typeof schema>;

export function check(config: JwtConfig): string | undefined {
  if (config.maximum_expiration > 0 && !config.claims_to_verify?.includes('exp')) {
    return 'config.claims_to_verify: must contain "exp" when config.maximum_expiration is above 0';
  }
  return undefined;
}
