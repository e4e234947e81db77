import { Type, type Static } from '@sinclair/typebox';
import { anonymousField, hideCredentialsField, realmMessage, realmPattern, runOnPreflightField } from '../auth-common/schema.js';

export const schema = Type.Object(
  {
    key_names: Type.Array(
      Type.String({
        minLength: 1,
        pattern: '^[A-Za-z0-9_-]+$',
        'x-message': "bad header name, allowed characters are A-Z, a-z, 0-9, '_', and '-'",
      }),
      {
        default: ['apikey'],
        minItems: 1,
        description:
          'Describes an array of parameter names where the plugin will look for a key. The key names may only contain [a-z], [A-Z], [0-9], [_] underscore, and [-] hyphen. Each name is looked for in a header (case-insensitive), then in the query string, then (with `key_in_body`) in the body, in order; the first string found wins.',
      },
    ),
    hide_credentials: hideCredentialsField('the key header, query argument or body field'),
    anonymous: anonymousField(),
    key_in_header: Type.Boolean({ default: true, description: 'If enabled (default), the plugin reads the request header and tries to find the key in it.' }),
    key_in_query: Type.Boolean({ default: true, description: 'If enabled (default), the plugin reads the query parameter in the request and tries to find the key in it.' }),
    key_in_body: Type.Boolean({
      default: false,
      description:
        'If enabled, the plugin reads the request body. Supported MIME types: `application/www-form-urlencoded`, `application/json`, and `multipart/form-data`.',
    }),
    run_on_preflight: runOnPreflightField(),
    realm: Type.Optional(
      Type.String({
        pattern: realmPattern,
        'x-message': realmMessage,
        description:
          'When authentication fails the plugin sends `WWW-Authenticate` header with `realm` attribute value (`Key realm="<realm>"`; just `Key` when unset).',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Key authentication (API keys): the consumer is identified by a key from its `keyauth_credentials`, sent in a header, a query argument or the body. Keys are compared through keyed hashes, never by plain string comparison.',
  },
);

export type KeyAuthConfig = Static<typeof schema>;
