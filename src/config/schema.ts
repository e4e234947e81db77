import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { AclEntry, BasicAuthCredential, HmacAuthCredential, JwtSecret, KeyAuthCredential } from './credentials.js';
import { TargetEntity, UpstreamEntity } from '../upstream/schema.js';
import { DEFAULT_SSL_CIPHERS, DEFAULT_SSL_PROTOCOLS } from '../tls/policy.js';

/**
 * The declarative config, Kong 3.x shape (`_format_version: "3.0"`), with Kong's field names and
 * defaults. One declaration: Ajv validates against it (filling defaults), TypeScript derives the
 * types, docs/configuration.md is written from its descriptions.
 */

const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { description: 'Free-form labels.' });
const Id = Type.String({ minLength: 1, description: 'Entity id (uuid). Generated deterministically from the name when absent.' });
const Name = Type.String({
  minLength: 1,
  pattern: '^[A-Za-z0-9._~-]+$',
  'x-message': 'must contain only letters, digits, ".", "_", "~" and "-"',
  description: 'Unique name.',
});
const Timeout = (description: string) =>
  Type.Integer({ minimum: 1, maximum: 2147483646, default: 60000, description });
const Ref = Type.Union([Type.String({ minLength: 1 }), Type.Object({ id: Type.Optional(Type.String()), name: Type.Optional(Type.String()), username: Type.Optional(Type.String()) }, { additionalProperties: false })], {
  description: 'Reference by id or name: "name" or {"id": ...} / {"name": ...}.',
});

export const PluginEntity = Type.Object(
  {
    id: Type.Optional(Id),
    name: Type.String({ minLength: 1, description: 'Plugin name, e.g. "correlation-id".' }),
    instance_name: Type.Optional(Type.String()),
    enabled: Type.Boolean({ default: true, description: 'A disabled plugin is validated but does not run.' }),
    config: Type.Record(Type.String(), Type.Unknown(), { default: {}, description: "The plugin's own settings (see docs/plugins)." }),
    protocols: Type.Optional(Type.Array(Type.Union([Type.Literal('http'), Type.Literal('https'), Type.Literal('grpc'), Type.Literal('grpcs'), Type.Literal('ws'), Type.Literal('wss'), Type.Literal('tcp'), Type.Literal('tls'), Type.Literal('udp')]))),
    service: Type.Optional(Ref),
    route: Type.Optional(Ref),
    consumer: Type.Optional(Ref),
    ordering: Type.Optional(Type.Unknown()),
    tags: Type.Optional(Tags),
  },
  { additionalProperties: false },
);

const Protocol = Type.Union(
  ['http', 'https', 'grpc', 'grpcs', 'ws', 'wss', 'tcp', 'tls', 'tls_passthrough', 'udp'].map((p) => Type.Literal(p)),
  { 'x-message': 'must be one of: http, https, grpc, grpcs, ws, wss, tcp, tls, tls_passthrough, udp' },
);

const routeFields = {
  id: Type.Optional(Id),
  name: Type.Optional(Name),
  hosts: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Hosts to match; one leading or trailing "*" wildcard allowed.' })),
  paths: Type.Optional(Type.Array(Type.String(), { description: 'Path prefixes; a leading "~" makes a regex (named captures allowed).' })),
  methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Z]+$', 'x-message': 'must be an upper-case HTTP method' }))),
  headers: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()), { description: 'Header name -> accepted values (any one matches; "~*" prefix: case-insensitive regex).' })),
  snis: Type.Optional(Type.Array(Type.String(), { description: 'TLS server names to match (https only).' })),
  sources: Type.Optional(Type.Array(Type.Unknown())),
  destinations: Type.Optional(Type.Array(Type.Unknown())),
  protocols: Type.Array(Protocol, { default: ['http', 'https'], minItems: 1, description: 'Protocols the route answers; [https] alone makes plain HTTP get https_redirect_status_code.' }),
  strip_path: Type.Boolean({ default: true, description: 'Remove the matched path prefix before forwarding.' }),
  preserve_host: Type.Boolean({ default: false, description: "Send the client's Host header upstream instead of the service host." }),
  regex_priority: Type.Integer({ default: 0, description: 'Higher is evaluated first among otherwise equal routes.' }),
  path_handling: Type.Union([Type.Literal('v0'), Type.Literal('v1')], { default: 'v0', 'x-message': 'must be one of: v0, v1', description: "How service path and request path are joined (Kong's algorithms)." }),
  https_redirect_status_code: Type.Union([426, 301, 302, 307, 308].map((c) => Type.Literal(c)), {
    default: 426,
    'x-message': 'must be one of: 426, 301, 302, 307, 308',
    description: 'Answer to plain HTTP on an https-only route: 426, or a redirect.',
  }),
  request_buffering: Type.Boolean({ default: true, description: 'Accepted for Kong compatibility; bodies always stream.' }),
  response_buffering: Type.Boolean({ default: true, description: 'Accepted for Kong compatibility; bodies always stream.' }),
  tags: Type.Optional(Tags),
  plugins: Type.Optional(Type.Array(PluginEntity, { description: 'Plugins scoped to this route.' })),
  created_at: Type.Optional(Type.Number()),
  updated_at: Type.Optional(Type.Number()),
};

export const NestedRouteEntity = Type.Object(routeFields, { additionalProperties: false });
export const RouteEntity = Type.Object({ ...routeFields, service: Type.Optional(Ref) }, { additionalProperties: false });

export const ServiceEntity = Type.Object(
  {
    id: Type.Optional(Id),
    name: Type.Optional(Name),
    url: Type.Optional(Type.String({ description: 'Shorthand for protocol, host, port and path.' })),
    protocol: Type.Optional({ ...Protocol, description: 'Upstream protocol: http or https (default http).' }),
    host: Type.Optional(Type.String({ minLength: 1, description: 'Upstream host name or IP.' })),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'Upstream port (default 80 for http, 443 for https).' })),
    path: Type.Optional(Type.String({ pattern: '^/', 'x-message': 'must start with "/"', description: 'Path prefix of upstream requests (none: "/").' })),
    retries: Type.Integer({ minimum: 0, maximum: 32767, default: 5, description: 'Retries on connect failure (any method) and on other failures (idempotent methods, before any response byte was sent).' }),
    connect_timeout: Timeout('Milliseconds to establish a connection to the upstream.'),
    write_timeout: Timeout('Milliseconds between two successive writes of the request to the upstream (accepted; not enforced yet).'),
    read_timeout: Timeout('Milliseconds between two successive reads of the upstream response.'),
    enabled: Type.Boolean({ default: true, description: 'A disabled service takes its routes out of the router.' }),
    tls_verify: Type.Optional(Type.Boolean({ description: "Verify the upstream's certificate (https only). Default true: unlike Kong, verification is on unless turned off here." })),
    tls_verify_depth: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 64, description: 'Most intermediate certificates between the upstream certificate and a trusted CA (https only; none: no limit).' }),
    ),
    ca_certificates: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { description: 'Ids of ca_certificates that alone are trusted for this upstream (https only; none: the system trust store).' }),
    ),
    client_certificate: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Object({ id: Type.String({ minLength: 1 }) }, { additionalProperties: false })], {
        description: 'A certificate entity, by id, presented to the upstream for mutual TLS (https only).',
      }),
    ),
    tags: Type.Optional(Tags),
    routes: Type.Optional(Type.Array(NestedRouteEntity, { description: 'Routes of this service (same fields as top-level routes, without `service`).' })),
    plugins: Type.Optional(Type.Array(PluginEntity, { description: 'Plugins scoped to this service.' })),
    created_at: Type.Optional(Type.Number()),
    updated_at: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);

export const ConsumerEntity = Type.Object(
  {
    id: Type.Optional(Id),
    username: Type.Optional(Type.String({ minLength: 1 })),
    custom_id: Type.Optional(Type.String({ minLength: 1 })),
    tags: Type.Optional(Tags),
    plugins: Type.Optional(Type.Array(PluginEntity)),
    keyauth_credentials: Type.Optional(Type.Array(KeyAuthCredential)),
    basicauth_credentials: Type.Optional(Type.Array(BasicAuthCredential)),
    jwt_secrets: Type.Optional(Type.Array(JwtSecret)),
    hmacauth_credentials: Type.Optional(Type.Array(HmacAuthCredential)),
    acls: Type.Optional(Type.Array(AclEntry)),
    created_at: Type.Optional(Type.Number()),
    updated_at: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);


/** Node-level settings (Kong keeps these in kong.conf); optional, hot-reloadable. */
export const GatehouseSettings = Type.Object(
  {
    trusted_ips: Type.Array(Type.String(), {
      default: [],
      description: 'Peers (IPs or CIDRs; "0.0.0.0/0" and "::/0" for all) whose X-Forwarded-* and real_ip_header are believed.',
    }),
    real_ip_header: Type.String({ default: 'x-forwarded-for', description: 'Header carrying the client address when the peer is trusted.' }),
    real_ip_recursive: Type.Boolean({ default: false, description: 'Take the last untrusted address in real_ip_header instead of the last one.' }),
    headers: Type.Array(
      Type.Union(['server_tokens', 'latency_tokens', 'X-Gatehouse-Request-Id', 'Via', 'Server', 'X-Gatehouse-Upstream-Latency', 'X-Gatehouse-Proxy-Latency', 'X-Gatehouse-Response-Latency', 'off'].map((h) => Type.Literal(h))),
      { default: ['server_tokens', 'latency_tokens', 'X-Gatehouse-Request-Id'], description: 'Response headers the gateway adds (as Kong\'s `headers`): "off" for none.' },
    ),
    headers_upstream: Type.Array(Type.Union([Type.Literal('X-Gatehouse-Request-Id'), Type.Literal('off')]), {
      default: ['X-Gatehouse-Request-Id'],
      description: 'Headers the gateway adds to upstream requests.',
    }),
    access_log: Type.Boolean({ default: true, description: 'One JSON line per request on stdout.' }),
    max_request_body_buffer: Type.Integer({ minimum: 1024, default: 8388608, description: 'Largest request body a plugin may buffer (bytes); larger -> 413.' }),
    max_response_body_buffer: Type.Integer({ minimum: 1024, default: 8388608, description: 'Largest response body a plugin may buffer (bytes); larger is passed through untransformed.' }),
    upstream_keepalive_pool_size: Type.Integer({ minimum: 1, default: 512, description: 'Most pooled connections per upstream host and worker.' }),
    upstream_keepalive_idle_timeout: Type.Integer({ minimum: 0, default: 60000, description: 'Milliseconds an idle upstream connection stays pooled.' }),
    dns_resolver: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: 'Name servers ("ip" or "ip:port") for target host names; empty: the system resolver and hosts file.',
    }),
    ssl_protocols: Type.String({
      default: DEFAULT_SSL_PROTOCOLS,
      description: 'TLS versions of the HTTPS listener, space-separated (as kong.conf): TLSv1.2, TLSv1.3. TLSv1 and TLSv1.1 are refused.',
    }),
    ssl_ciphers: Type.String({
      default: DEFAULT_SSL_CIPHERS,
      description: 'OpenSSL cipher list for TLS 1.2 on the HTTPS listener (as kong.conf); default: Mozilla intermediate, ECDHE with AEAD only. TLS 1.3 suites stay OpenSSL\'s.',
    }),
  },
  { additionalProperties: false, default: {} },
);

const Pem = (description: string) => Type.String({ minLength: 1, description });

export const CertificateEntity = Type.Object(
  {
    id: Type.Optional(Id),
    cert: Pem('PEM certificate (chain: leaf first).'),
    key: Pem('PEM private key of `cert`.'),
    cert_alt: Type.Optional(Pem('A second PEM certificate of another key type (RSA + ECDSA); needs `key_alt`.')),
    key_alt: Type.Optional(Pem('PEM private key of `cert_alt`.')),
    snis: Type.Optional(
      Type.Array(Type.Union([Type.String({ minLength: 1 }), Type.Object({ id: Type.Optional(Id), name: Type.String({ minLength: 1 }), tags: Type.Optional(Tags), created_at: Type.Optional(Type.Number()), updated_at: Type.Optional(Type.Number()) }, { additionalProperties: false })]), {
        description: 'Server names this certificate answers ("*.example.com" and "example.*" wildcards allowed).',
      }),
    ),
    tags: Type.Optional(Tags),
    created_at: Type.Optional(Type.Number()),
    updated_at: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);

export const SniEntity = Type.Object(
  {
    id: Type.Optional(Id),
    name: Type.String({ minLength: 1, description: 'Server name (wildcards as in certificates.snis).' }),
    certificate: Type.Union([Type.String({ minLength: 1 }), Type.Object({ id: Type.String({ minLength: 1 }) }, { additionalProperties: false })], { description: 'The certificate, by id.' }),
    tags: Type.Optional(Tags),
    created_at: Type.Optional(Type.Number()),
    updated_at: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);

export const CaCertificateEntity = Type.Object(
  {
    id: Type.Optional(Id),
    cert: Pem('One PEM CA certificate (basicConstraints CA:TRUE, not expired).'),
    cert_digest: Type.Optional(
      Type.String({ pattern: '^[0-9A-Fa-f]{64}$', 'x-message': 'must be a sha256 digest in hex', description: 'sha256 of the certificate (DER), hex; computed when absent.' }),
    ),
    tags: Type.Optional(Tags),
    created_at: Type.Optional(Type.Number()),
    updated_at: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);

export const DeclarativeConfigSchema = Type.Object(
  {
    _format_version: Type.Literal('3.0', { 'x-message': 'must be "3.0"' }),
    _transform: Type.Optional(Type.Boolean()),
    _comment: Type.Optional(Type.String()),
    _workspace: Type.Optional(Type.String()),
    _gatehouse: GatehouseSettings,
    services: Type.Array(ServiceEntity, { default: [] }),
    routes: Type.Array(RouteEntity, { default: [] }),
    consumers: Type.Array(ConsumerEntity, { default: [] }),
    plugins: Type.Array(PluginEntity, { default: [] }),
    upstreams: Type.Array(UpstreamEntity, { default: [], description: 'Load-balancing upstreams: a service whose host is an upstream name is balanced over its targets (see docs/load-balancing.md).' }),
    targets: Type.Array(TargetEntity, { default: [], description: 'Targets of upstreams, as separate entities.' }),
    certificates: Type.Array(CertificateEntity, { default: [], description: 'TLS certificates of the HTTPS listener, chosen by SNI (see docs/tls.md).' }),
    ca_certificates: Type.Array(CaCertificateEntity, { default: [], description: 'CA certificates trusted by services (upstream TLS) and mtls-auth (see docs/tls.md).' }),
    snis: Type.Array(SniEntity, { default: [], description: 'Server names of certificates, as separate entities.' }),
    keyauth_credentials: Type.Array(KeyAuthCredential, { default: [] }),
    basicauth_credentials: Type.Array(BasicAuthCredential, { default: [] }),
    jwt_secrets: Type.Array(JwtSecret, { default: [] }),
    hmacauth_credentials: Type.Array(HmacAuthCredential, { default: [] }),
    acls: Type.Array(AclEntry, { default: [] }),
    vaults: Type.Optional(Type.Array(Type.Unknown())),
  },
  { additionalProperties: false },
);

export type DeclarativeConfig = Static<typeof DeclarativeConfigSchema>;
export type ServiceConfig = Static<typeof ServiceEntity>;
export type RouteConfig = Static<typeof RouteEntity>;
export type PluginConfig = Static<typeof PluginEntity>;
export type SettingsConfig = Static<typeof GatehouseSettings>;
export type CertificateConfig = Static<typeof CertificateEntity>;
export type SniConfig = Static<typeof SniEntity>;
export type CaCertificateConfig = Static<typeof CaCertificateEntity>;
export type AnySchema = TSchema;
