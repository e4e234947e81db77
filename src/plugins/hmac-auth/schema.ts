import { Type, type Static } from '@sinclair/typebox';
import { anonymousField, hideCredentialsField, realmMessage, realmPattern } from '../auth-common/schema.js';

export const HMAC_ALGORITHMS = ['hmac-sha1', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512'] as const;

export const schema = Type.Object(
  {
    hide_credentials: hideCredentialsField('the `Authorization` or `Proxy-Authorization` header it read'),
    clock_skew: Type.Number({
      default: 300,
      exclusiveMinimum: 0,
      'x-message': 'must be greater than 0',
      description: 'Clock skew in seconds to prevent replay attacks.',
    }),
    anonymous: anonymousField(),
    validate_request_body: Type.Boolean({
      default: false,
      description: 'A boolean value telling the plugin to enable body validation (the `Digest: SHA-256=<base64>` header must match the body).',
    }),
    enforce_headers: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'A list of headers that the client should at least use for HTTP signature creation.',
    }),
    algorithms: Type.Array(Type.Union(HMAC_ALGORITHMS.map((a) => Type.Literal(a))), {
      default: [...HMAC_ALGORITHMS],
      description: 'A list of HMAC digest algorithms that the user wants to support. Allowed values are `hmac-sha1`, `hmac-sha256`, `hmac-sha384`, and `hmac-sha512`.',
    }),
    realm: Type.Optional(
      Type.String({
        pattern: realmPattern,
        'x-message': realmMessage,
        description: 'When authentication fails the plugin sends `WWW-Authenticate` header with `realm` attribute value (`hmac realm="<realm>"`; just `hmac` when unset).',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'HMAC signature authentication, compatible with Kong: `Authorization: hmac username="<u>", algorithm="<alg>", headers="<h1 h2 ...>", signature="<base64>"` signs the listed headers (`request-line` for the request line) with the secret of the consumer\'s `hmacauth_credentials`; a `Date` or `X-Date` within `clock_skew` is required; signatures are compared in constant time.',
  },
);

export type HmacAuthConfig = Static<typeof schema>;
