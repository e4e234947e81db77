import { Type, type Static } from '@sinclair/typebox';

/**
 * Kong 3.x `upstreams` and `targets` (field names, ranges and defaults as Kong's entity schemas).
 * One declaration: validation, the TypeScript types and docs/configuration.md.
 */

const Tags = Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { description: 'Free-form labels.' });
const Id = Type.String({ minLength: 1, description: 'Entity id (uuid). Generated deterministically when absent.' });
const Status = Type.Integer({ minimum: 100, maximum: 999 });
const Statuses = (defaults: number[], description: string) => Type.Array(Status, { default: defaults, description });
const Count = (description: string) => Type.Integer({ minimum: 0, maximum: 255, default: 0, description });
const Interval = (description: string) => Type.Number({ minimum: 0, maximum: 65535, default: 0, description });

const HASH_ON = ['none', 'consumer', 'ip', 'header', 'cookie', 'path', 'query_arg', 'uri_capture'] as const;
const HashOn = (description: string) =>
  Type.Union(
    HASH_ON.map((h) => Type.Literal(h)),
    { default: 'none', 'x-message': `must be one of: ${HASH_ON.join(', ')}`, description },
  );

const PASSIVE_HEALTHY = [200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308];

const CheckType = Type.Union(['tcp', 'http', 'https', 'grpc', 'grpcs'].map((t) => Type.Literal(t)), {
  default: 'http',
  'x-message': 'must be one of: tcp, http, https, grpc, grpcs',
  description: 'What a check is: a TCP connect, or an HTTP(S) request whose status is judged.',
});

export const ActiveHealthchecks = Type.Object(
  {
    type: CheckType,
    timeout: Type.Number({ minimum: 0, maximum: 65535, default: 1, description: 'Seconds a probe may take.' }),
    concurrency: Type.Integer({ minimum: 1, maximum: 2147483648, default: 10, description: 'Probes in flight at once.' }),
    http_path: Type.String({ pattern: '^/', 'x-message': 'must start with "/"', default: '/', description: 'Path of the probe request.' }),
    https_sni: Type.Optional(Type.String({ minLength: 1, description: 'SNI of https probes (default: the target host).' })),
    https_verify_certificate: Type.Boolean({ default: true, description: 'Verify the target certificate on https probes.' }),
    headers: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()), { description: 'Extra headers of the probe request.' })),
    healthy: Type.Object(
      {
        interval: Interval('Seconds between probes of a healthy target (0: none).'),
        successes: Count('Successful probes in a row that make an unhealthy target healthy (0: never).'),
        http_statuses: Statuses([200, 302], 'Probe statuses counted as success.'),
      },
      { additionalProperties: false, default: {} },
    ),
    unhealthy: Type.Object(
      {
        interval: Interval('Seconds between probes of an unhealthy target (0: none).'),
        tcp_failures: Count('Connection failures in a row that make a target unhealthy (0: never).'),
        timeouts: Count('Probe timeouts in a row that make a target unhealthy (0: never).'),
        http_failures: Count('Failed probe statuses in a row that make a target unhealthy (0: never).'),
        http_statuses: Statuses([429, 404, 500, 501, 502, 503, 504, 505], 'Probe statuses counted as failure.'),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export const PassiveHealthchecks = Type.Object(
  {
    type: CheckType,
    healthy: Type.Object(
      {
        successes: Count('Successful proxied responses in a row that count a target healthy again (0: never).'),
        http_statuses: Statuses(PASSIVE_HEALTHY, 'Upstream statuses counted as success.'),
      },
      { additionalProperties: false, default: {} },
    ),
    unhealthy: Type.Object(
      {
        tcp_failures: Count('Connection failures in a row that trip the circuit (0: never).'),
        timeouts: Count('Timeouts in a row that trip the circuit (0: never).'),
        http_failures: Count('Failed statuses in a row that trip the circuit (0: never).'),
        http_statuses: Statuses([429, 500, 503], 'Upstream statuses counted as failure.'),
        cooldown: Type.Number({
          minimum: 0,
          maximum: 65535,
          default: 0,
          description:
            'Gatehouse extension. Seconds after which a target tripped by passive checks gets traffic again, half-open: one more failure of any counted kind trips it at once (0: it stays out until an active check or the admin API brings it back, as in Kong).',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export const Healthchecks = Type.Object(
  {
    active: ActiveHealthchecks,
    passive: PassiveHealthchecks,
    threshold: Type.Number({
      minimum: 0,
      maximum: 100,
      default: 0,
      description: 'Percentage of the total weight that must be healthy; below it the whole upstream counts as unhealthy (503).',
    }),
  },
  { additionalProperties: false, default: {} },
);

const targetFields = {
  id: Type.Optional(Id),
  target: Type.String({ minLength: 1, description: '"host:port", "ip:port" or "[ipv6]:port"; the port defaults to 8000. A host name is resolved through DNS; each address becomes a target.' }),
  weight: Type.Integer({ minimum: 0, maximum: 65535, default: 100, description: 'Share of traffic; 0 drains the target.' }),
  tags: Type.Optional(Tags),
  created_at: Type.Optional(Type.Number()),
  updated_at: Type.Optional(Type.Number()),
};

export const NestedTargetEntity = Type.Object(targetFields, { additionalProperties: false });

const UpstreamRef = Type.Union([Type.String({ minLength: 1 }), Type.Object({ id: Type.Optional(Type.String()), name: Type.Optional(Type.String()) }, { additionalProperties: false })], {
  description: 'The upstream, by id or name.',
});

export const TargetEntity = Type.Object({ ...targetFields, upstream: Type.Optional(UpstreamRef) }, { additionalProperties: false });

export const UpstreamEntity = Type.Object(
  {
    id: Type.Optional(Id),
    name: Type.String({ minLength: 1, description: 'A host name (no IP, no port): services whose host is this name are balanced over its targets.' }),
    algorithm: Type.Union(['round-robin', 'consistent-hashing', 'least-connections', 'latency'].map((a) => Type.Literal(a)), {
      default: 'round-robin',
      'x-message': 'must be one of: round-robin, consistent-hashing, least-connections, latency',
      description: 'How a target is picked (see docs/load-balancing.md).',
    }),
    hash_on: HashOn('What consistent-hashing hashes: none, consumer, ip, header, cookie, path, query_arg, uri_capture.'),
    hash_fallback: HashOn('What is hashed when hash_on gives no value.'),
    hash_on_header: Type.Optional(Type.String({ minLength: 1, description: 'Header name when hash_on is "header".' })),
    hash_fallback_header: Type.Optional(Type.String({ minLength: 1, description: 'Header name when hash_fallback is "header".' })),
    hash_on_cookie: Type.Optional(Type.String({ minLength: 1, description: 'Cookie name when hash_on or hash_fallback is "cookie"; set on the response when the client has none.' })),
    hash_on_cookie_path: Type.String({ default: '/', pattern: '^/', 'x-message': 'must start with "/"', description: 'Path of the cookie set by hash_on "cookie".' }),
    hash_on_query_arg: Type.Optional(Type.String({ minLength: 1, description: 'Query argument when hash_on is "query_arg".' })),
    hash_fallback_query_arg: Type.Optional(Type.String({ minLength: 1, description: 'Query argument when hash_fallback is "query_arg".' })),
    hash_on_uri_capture: Type.Optional(Type.String({ minLength: 1, description: 'Named route regex capture when hash_on is "uri_capture".' })),
    hash_fallback_uri_capture: Type.Optional(Type.String({ minLength: 1, description: 'Named route regex capture when hash_fallback is "uri_capture".' })),
    slots: Type.Integer({ minimum: 10, maximum: 65536, default: 10000, description: 'Ring size of consistent-hashing: an address of weight 100 gets slots/10 points.' }),
    healthchecks: Healthchecks,
    host_header: Type.Optional(Type.String({ minLength: 1, description: 'Host header sent to targets (default: the target host name).' })),
    client_certificate: Type.Optional(Type.Unknown({ description: 'Accepted for Kong compatibility; not used yet.' })),
    use_srv_name: Type.Boolean({ default: false, description: 'Accepted for Kong compatibility (SRV records are not resolved).' }),
    tags: Type.Optional(Tags),
    targets: Type.Optional(Type.Array(NestedTargetEntity, { description: 'Targets of this upstream (same fields as top-level targets, without `upstream`).' })),
    created_at: Type.Optional(Type.Number()),
    updated_at: Type.Optional(Type.Number()),
  },
  { additionalProperties: false },
);

export type UpstreamConfig = Static<typeof UpstreamEntity>;
export type TargetConfig = Static<typeof TargetEntity>;
export type HealthchecksConfig = Static<typeof Healthchecks>;
export type ActiveHealthchecksConfig = Static<typeof ActiveHealthchecks>;
export type PassiveHealthchecksConfig = Static<typeof PassiveHealthchecks>;
export type Algorithm = UpstreamConfig['algorithm'];
export type HashOn = UpstreamConfig['hash_on'];
