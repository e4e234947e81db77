import { Type, type Static } from '@sinclair/typebox';
import { anonymousField, hideCredentialsField, realmMessage, realmPattern } from '../auth-common/schema.js';

export const schema = Type.Object(
  {
    anonymous: anonymousField(),
    hide_credentials: hideCredentialsField('the `Authorization` / `Proxy-Authorization` header it read'),
    realm: Type.String({
      default: 'service',
      pattern: realmPattern,
      'x-message': realmMessage,
      description: 'When authentication fails the plugin sends `WWW-Authenticate` header with `realm` attribute value.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'HTTP Basic authentication against the consumers\' `basicauth_credentials`. Passwords are stored hashed: bcrypt (`$2a$`/`$2b$`/`$2y$`) and scrypt (`$scrypt$ln=..,r=..,p=..$salt$hash`) hashes are used as given, a plain password in the config is hashed with scrypt on first use; checks compare hashes in constant time.',
  },
);

export type BasicAuthConfig = Static<typeof schema>;
