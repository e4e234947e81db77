import { redisConnectionFields } from '../../cluster/redis-config.js';
import { Type, type Static } from '@sinclair/typebox';
import { PERIODS } from '../../cluster/limit-types.js';

const limit = (period: string) =>
  Type.Optional(
    Type.Number({
      exclusiveMinimum: 0,
      'x-message': 'must be a number greater than 0',
      description: `The number of HTTP requests that can be made per ${period}.`,
    }),
  );

const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

const redisRecord = Type.Object(
  {
    ...redisConnectionFields('Counting'),
    timeout: Type.Integer({
      default: 100,
      minimum: 1,
      maximum: 2147483646,
      'x-message': 'must be an integer between 1 and 2147483646',
      description:
        'Milliseconds a Redis call may take (connect included) before the request is treated as a Redis failure (see `fault_tolerant`). Gatehouse defaults to 100 (Kong: 2000): a limiter must not add seconds of latency when Redis is slow.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Redis connection for the `redis` policy (Kong 3.6+ record).' },
);

const deprecated = (field: string) => `Deprecated (Kong < 3.6 flat field): sets \`redis.${field}\`.`;

export const schema = Type.Object(
  {
    second: limit('second'),
    minute: limit('minute'),
    hour: limit('hour'),
    day: limit('day'),
    month: limit('month'),
    year: limit('year'),
    limit_by: Type.Union(
      [Type.Literal('consumer'), Type.Literal('credential'), Type.Literal('ip'), Type.Literal('service'), Type.Literal('header'), Type.Literal('path')],
      {
        default: 'consumer',
        'x-message': 'must be one of: consumer, credential, ip, service, header, path',
        description:
          'The entity used to aggregate the limits: `consumer`, `credential`, `ip`, `service`, `header`, `path`. When the chosen identifier cannot be determined (no consumer, no header, another path), the client IP is used.',
      },
    ),
    header_name: Type.Optional(Type.String({ pattern: HEADER_NAME, 'x-message': 'must be a valid header name', description: 'A string representing an HTTP header name; required with `limit_by: header`.' })),
    path: Type.Optional(Type.String({ pattern: '^/', 'x-message': 'must start with "/"', description: 'A string representing a URL path; required with `limit_by: path`. Only requests for exactly this path are counted under it.' })),
    policy: Type.Union([Type.Literal('local'), Type.Literal('redis')], {
      default: 'local',
      'x-message': 'must be one of: local, redis (Kong\'s "cluster" policy needs a database; use redis)',
      description:
        'Where counters are kept: `local` (this node: exact across its workers, not shared with other nodes) or `redis` (shared by every node using the same Redis; exact, one atomic script per request).',
    }),
    algorithm: Type.Union([Type.Literal('fixed-window'), Type.Literal('sliding-window'), Type.Literal('token-bucket')], {
      default: 'fixed-window',
      'x-message': 'must be one of: fixed-window, sliding-window, token-bucket',
      description:
        'Gatehouse: how a limit is counted. `fixed-window` (Kong): calendar-aligned UTC windows. `sliding-window`: the current window plus the previous one weighted by how much of it still overlaps the last period. `token-bucket`: a bucket per period refilled continuously at limit/period, holding at most `burst` tokens (shortest period) or its limit.',
    }),
    burst: Type.Optional(
      Type.Integer({
        minimum: 1,
        'x-message': 'must be an integer >= 1',
        description: 'Gatehouse, `token-bucket` only: capacity of the bucket of the shortest configured period (default: that period\'s limit), i.e. the most requests let through at once.',
      }),
    ),
    fault_tolerant: Type.Boolean({
      default: true,
      description:
        'When the counter store (Redis, or the node primary) fails or times out: `true` lets requests through (a warning at most every 10 s, and a counter); `false` answers 503.',
    }),
    hide_client_headers: Type.Boolean({ default: false, description: 'Optionally hide informative response headers (X-RateLimit-*, RateLimit-*, Retry-After).' }),
    error_code: Type.Integer({ default: 429, minimum: 100, maximum: 599, 'x-message': 'must be an integer between 100 and 599', description: 'Set a custom error code to return when the rate limit is exceeded.' }),
    error_message: Type.String({ default: 'API rate limit exceeded', description: 'Set a custom error message to return when the rate limit is exceeded.' }),
    sync_rate: Type.Number({
      default: -1,
      description: 'Kong: how often counters are synced to Redis. Accepted for compatibility (-1, or >= 0.02 with the redis policy); Gatehouse always counts synchronously and exactly.',
    }),
    redis: redisRecord,
    redis_host: Type.Optional(Type.String({ minLength: 1, description: deprecated('host') })),
    redis_port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, 'x-message': 'must be an integer between 0 and 65535', description: deprecated('port') })),
    redis_password: Type.Optional(Type.String({ description: deprecated('password') })),
    redis_username: Type.Optional(Type.String({ description: deprecated('username') })),
    redis_ssl: Type.Optional(Type.Boolean({ description: deprecated('ssl') })),
    redis_ssl_verify: Type.Optional(Type.Boolean({ description: deprecated('ssl_verify') })),
    redis_server_name: Type.Optional(Type.String({ description: deprecated('server_name') })),
    redis_timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483646, 'x-message': 'must be an integer between 1 and 2147483646', description: deprecated('timeout') })),
    redis_database: Type.Optional(Type.Integer({ minimum: 0, 'x-message': 'must be an integer >= 0', description: deprecated('database') })),
    redis_url: Type.Optional(Type.String({ pattern: '^rediss?://', 'x-message': 'must be a redis:// or rediss:// URL', description: 'Gatehouse shorthand: sets `redis.url`.' })),
  },
  {
    additionalProperties: false,
    description:
      'Limits how many requests a client can make per second, minute, hour, day, month or year, counted per consumer, credential, IP, service, header or path, in this node (`local`) or across nodes (`redis`). With day or month limits it is a quota; the remaining quota is in the response headers.',
  },
);

export type RateLimitingConfig = Static<typeof schema>;
export type RedisConfig = Static<typeof redisRecord>;

const FLAT = ['host', 'port', 'password', 'username', 'ssl', 'ssl_verify', 'server_name', 'timeout', 'database', 'url'] as const;

/** The redis record with the deprecated flat fields applied (a flat field, when given, wins, as Kong's shorthands do). */
export function effectiveRedis(config: RateLimitingConfig): RedisConfig {
  const out: Record<string, unknown> = { ...config.redis };
  for (const f of FLAT) {
    const v = (config as Record<string, unknown>)[`redis_${f}`];
    if (v !== undefined) out[f] = v;
  }
  return out as RedisConfig;
}

const fmt = (n: number) => n.toFixed(1);

export function check(config: RateLimitingConfig): string | undefined {
  const set = PERIODS.filter((p) => config[p] !== undefined);
  if (!set.length) return `config: at least one of these fields must be non-empty: ${PERIODS.map((p) => `'config.${p}'`).join(', ')}`;
  for (let i = 0; i < PERIODS.length; i++) {
    const lower = PERIODS[i]!;
    const v1 = config[lower];
    if (v1 === undefined) continue;
    for (let j = i + 1; j < PERIODS.length; j++) {
      const upper = PERIODS[j]!;
      const v2 = config[upper];
      if (v2 !== undefined && v2 < v1) return `config: The limit for ${upper}(${fmt(v2)}) cannot be lower than the limit for ${lower}(${fmt(v1)})`;
    }
  }
  if (config.limit_by === 'header' && !config.header_name) return 'config.header_name: required field missing';
  if (config.limit_by === 'path' && !config.path) return 'config.path: required field missing';
  if (config.burst !== undefined && config.algorithm !== 'token-bucket') return 'config.burst: only applies to algorithm "token-bucket"';
  if (config.policy === 'local' && config.sync_rate !== -1) return 'config.sync_rate: value must be -1';
  if (config.policy === 'redis') {
    if (config.sync_rate !== -1 && config.sync_rate < 0.02) return 'config.sync_rate: value must be -1 or at least 0.02';
    const r = effectiveRedis(config);
    if (r.sentinel_master && !r.sentinel_nodes?.length) return 'config.redis.sentinel_nodes: required with redis.sentinel_master';
    if (r.sentinel_nodes?.length && !r.sentinel_master) return 'config.redis.sentinel_master: required with redis.sentinel_nodes';
    if (!r.host && !r.url && !r.cluster_nodes?.length && !r.sentinel_master) return 'config.redis.host: required field missing';
  }
  return undefined;
}
