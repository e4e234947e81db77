import { Type, type Static } from '@sinclair/typebox';
import { anonymousField } from '../auth-common/schema.js';

export const schema = Type.Object(
  {
    ca_certificates: Type.Array(Type.String({ minLength: 1 }), {
      minItems: 1,
      description:
        'Ids of `ca_certificates` entities: a client certificate must chain to one of them (through intermediates the client sends or that are listed here). At least one is required; each must exist.',
    }),
    skip_consumer_lookup: Type.Boolean({
      default: false,
      description:
        'Do not map the certificate to a consumer: any client with a trusted certificate is let through, with `authenticated_group_by` as its authenticated group (restrict further with the acl plugin).',
    }),
    consumer_by: Type.Array(Type.Union([Type.Literal('username'), Type.Literal('custom_id')]), {
      default: ['username', 'custom_id'],
      description:
        "Consumer fields matched against the certificate's subject names: the DNS and email subject alternative names in certificate order, then the subject CN. For each name, the fields are tried in this order; the first consumer found wins. `[]` turns the lookup off (only `default_consumer` then applies).",
    }),
    authenticated_group_by: Type.Union([Type.Literal('CN'), Type.Literal('DN')], {
      default: 'CN',
      description:
        "With `skip_consumer_lookup`, the authenticated group: the certificate's subject CN, or its whole subject DN (RFC 4514, e.g. `CN=alice,O=Example`).",
    }),
    anonymous: anonymousField(),
    default_consumer: Type.Optional(
      Type.String({
        minLength: 1,
        description:
          'The consumer (id or username) to use when a trusted certificate is presented but no consumer matches it. A consumer that does not exist gives `500` at request time.',
      }),
    ),
    allow_partial_chain: Type.Boolean({
      default: false,
      description:
        'Accept a chain that ends at a listed CA certificate that is not self-signed (an intermediate). Off: the chain must end at a self-signed root listed in `ca_certificates`.',
    }),
    revocation_check_mode: Type.Union([Type.Literal('IGNORE_CA_ERROR'), Type.Literal('SKIP')], {
      default: 'IGNORE_CA_ERROR',
      'x-message': 'must be one of: IGNORE_CA_ERROR, SKIP (STRICT needs OCSP/CRL checks, which Gatehouse does not do)',
      description:
        'Accepted for Kong compatibility: Gatehouse does not check revocation (no OCSP, no CRL), whatever the value. `STRICT` is refused rather than silently not honoured.',
    }),
    cache_ttl: Type.Number({
      default: 60,
      minimum: 0,
      description:
        "Seconds a connection's verified certificate is trusted before it is verified again (its expiry is checked on every request regardless). 0: verify on every request.",
    }),
    send_ca_dn: Type.Boolean({
      default: false,
      description:
        "List the subject names of this plugin's CA certificates in the TLS certificate request, so clients can pick a matching certificate. The HTTPS listener sends the names of every enabled mtls-auth plugin that sets it.",
    }),
  },
  {
    additionalProperties: false,
    description:
      'Mutual TLS authentication: the client presents a certificate during the TLS handshake; the plugin verifies its chain against its own `ca_certificates`, maps it to a consumer, and sends the verified identity upstream as `X-Client-Cert-Subject` and `X-Client-Cert-Fingerprint` (sha256, hex). Client-supplied copies of those headers are always removed. While an enabled mtls-auth plugin is configured, the HTTPS listener asks every client for a certificate but never requires one, so routes without the plugin keep working. See docs/tls.md.',
  },
);

export type MtlsAuthConfig = Static<typeof schema>;
