import { Type, type TSchema } from '@sinclair/typebox';

/**
 * Consumer credentials (Kong's entities), nested under a consumer or top-level with
 * `consumer: <username or id>`. The auth plugins look them up through the ConsumerIndex.
 */

const Ref = Type.Union([Type.String({ minLength: 1 }), Type.Object({ id: Type.Optional(Type.String()), username: Type.Optional(Type.String()) }, { additionalProperties: false })], {
  description: 'The owning consumer (top-level credentials only): username or id.',
});
const common = {
  id: Type.Optional(Type.String({ minLength: 1 })),
  tags: Type.Optional(Type.Array(Type.String())),
  consumer: Type.Optional(Ref),
  created_at: Type.Optional(Type.Number()),
};

export const KeyAuthCredential = Type.Object(
  {
    ...common,
    key: Type.Optional(Type.String({ minLength: 1, description: 'The API key (generated when absent).' })),
    ttl: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000000, description: 'Seconds the key stays valid after config load.' })),
  },
  { additionalProperties: false },
);

export const BasicAuthCredential = Type.Object(
  {
    ...common,
    username: Type.String({ minLength: 1 }),
    password: Type.String({
      minLength: 1,
      // Plain text, or a well-formed bcrypt / scrypt hash: a mistyped hash is refused, not taken as a password.
      pattern:
        '^(?!\\$(2[aby]|scrypt)\\$)[\\s\\S]+$|^\\$2[aby]\\$\\d{2}\\$[./A-Za-z0-9]{53}$|^\\$scrypt\\$ln=\\d{1,2},r=\\d{1,3},p=\\d{1,3}\\$[A-Za-z0-9+/.]+={0,2}\\$[A-Za-z0-9+/.]+={0,2}$',
      'x-message': 'must be a plain password, a bcrypt hash ($2a$/$2b$/$2y$) or a scrypt hash ($scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>, base64)',
      description: 'A plain password (hashed with scrypt when first used), or a bcrypt or scrypt hash.',
    }),
  },
  { additionalProperties: false },
);

export const JwtAlgorithms = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'] as const;

export const JwtSecret = Type.Object(
  {
    ...common,
    key: Type.Optional(Type.String({ minLength: 1, description: 'Value of the key claim (iss by default) identifying this secret; generated when absent.' })),
    secret: Type.Optional(
      Type.String({
        minLength: 1,
        // A public key used as an HMAC secret is the algorithm-confusion attack's precondition.
        pattern: '^(?![\\s\\S]*-----BEGIN )',
        'x-message': 'must not be a PEM key: HS* secrets are shared secrets (use rsa_public_key with an asymmetric algorithm)',
        description: 'HMAC secret for HS* algorithms; generated when absent.',
      }),
    ),
    rsa_public_key: Type.Optional(
      Type.String({
        pattern: '^\\s*-----BEGIN (PUBLIC KEY|RSA PUBLIC KEY)-----[\\s\\S]+-----END \\1-----\\s*$',
        'x-message': 'must be a PEM public key (-----BEGIN PUBLIC KEY-----)',
        description: 'PEM public key for RS*, ES*, PS* and EdDSA.',
      }),
    ),
    algorithm: Type.Union(
      JwtAlgorithms.map((a) => Type.Literal(a)),
      { default: 'HS256' },
    ),
  },
  { additionalProperties: false },
);

export const HmacAuthCredential = Type.Object(
  {
    ...common,
    username: Type.String({ minLength: 1 }),
    secret: Type.Optional(Type.String({ minLength: 1, description: 'Shared secret (generated when absent).' })),
  },
  { additionalProperties: false },
);

export const AclEntry = Type.Object({ ...common, group: Type.String({ minLength: 1 }) }, { additionalProperties: false });

export type CredentialType = 'keyauth_credentials' | 'basicauth_credentials' | 'jwt_secrets' | 'hmacauth_credentials' | 'acls';

/** Each credential table: its schema and the field that identifies an entry (for ids and uniqueness). */
export const CREDENTIAL_TABLES: Record<CredentialType, { schema: TSchema; keyField: string }> = {
  keyauth_credentials: { schema: KeyAuthCredential, keyField: 'key' },
  basicauth_credentials: { schema: BasicAuthCredential, keyField: 'username' },
  jwt_secrets: { schema: JwtSecret, keyField: 'key' },
  hmacauth_credentials: { schema: HmacAuthCredential, keyField: 'username' },
  acls: { schema: AclEntry, keyField: 'group' },
};
