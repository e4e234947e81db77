import { redisConnectionFields } from '../../cluster/redis-config.js';
import { Type, type Static } from '@sinclair/typebox';

const HEADER_NAME = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
const MiB = 1024 * 1024;

const redisRecord = Type.Object(
  {
    ...redisConnectionFields('Storing'),
    timeout: Type.Integer({
      default: 500,
      minimum: 1,
      maximum: 2147483646,
      'x-message': 'must be an integer between 1 and 2147483646',
      description: 'Milliseconds a Redis call may take (the first connect included). A lookup that fails or times out is a miss: the request goes upstream and the response is not stored.',
    }),
    prefix: Type.String({
      default: 'gatehouse:proxy-cache:',
      minLength: 1,
      description: 'Prefix of every Redis key this plugin writes; `DELETE /proxy-cache` deletes the keys under it. Plugins (and nodes) with the same Redis and prefix share entries.',
    }),
    max_body_size: Type.Integer({
      default: MiB,
      minimum: 0,
      'x-message': 'must be an integer >= 0',
      description: 'Largest response body (bytes) stored in Redis; larger responses are passed through and not cached (`X-Cache-Status: Bypass`).',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Gatehouse: the Redis connection and limits of the `redis` strategy (shared by every node using the same Redis and prefix).' },
);

export const schema = Type.Object(
  {
    response_code: Type.Array(Type.Integer({ minimum: 100, maximum: 900, 'x-message': 'value should be between 100 and 900' }), {
      default: [200, 301, 404],
      minItems: 1,
      description: 'Upstream response status code considered cacheable. 206 (partial content) and 304 are never stored.',
    }),
    request_method: Type.Array(
      Type.Union([Type.Literal('HEAD'), Type.Literal('GET'), Type.Literal('POST'), Type.Literal('PATCH'), Type.Literal('PUT')], {
        'x-message': 'expected one of: HEAD, GET, POST, PATCH, PUT',
      }),
      {
        default: ['GET', 'HEAD'],
        description:
          'Downstream request methods considered cacheable. HEAD is answered from the entry of the same GET (and never stored itself). With POST, PATCH or PUT the request body is buffered and its SHA-256 is part of the cache key.',
      },
    ),
    content_type: Type.Array(Type.String(), {
      default: ['text/plain', 'application/json'],
      description:
        'Upstream response content types considered cacheable. The plugin performs an **exact match** against each specified value (parameters included: `application/json; charset=utf-8` does not match `application/json`); `*` matches any type or subtype.',
    }),
    cache_ttl: Type.Integer({ default: 300, exclusiveMinimum: 0, 'x-message': 'value must be greater than 0', description: 'TTL, in seconds, of cache entities.' }),
    strategy: Type.Union([Type.Literal('memory'), Type.Literal('redis')], {
      'x-message': 'expected one of: memory, redis',
      description:
        'The backing data store in which to hold cache entities: `memory` (an LRU bounded by bytes in each worker process) or `redis` (Gatehouse; shared by every node).',
    }),
    cache_control: Type.Boolean({
      default: false,
      description:
        'When enabled, respect the Cache-Control behaviors defined in RFC 9111: the freshness lifetime comes from `s-maxage`, `max-age` or `Expires` (minus `Age`), and the request directives `no-store`, `no-cache`, `max-age`, `min-fresh`, `max-stale` and `only-if-cached` apply. `private`, `no-store` and `no-cache` responses are never stored, even when disabled.',
    }),
    ignore_uri_case: Type.Boolean({ default: false, description: 'Determines whether to treat URIs as case sensitive. By default, case sensitivity is enabled. If set to true, requests are cached while ignoring case sensitivity in the URI.' }),
    storage_ttl: Type.Optional(
      Type.Integer({
        minimum: 0,
        'x-message': 'must be an integer >= 0',
        description:
          'Number of seconds to keep resources in the storage backend. This value is independent of `cache_ttl` or resource TTLs defined by Cache-Control behaviors (0: until evicted). Unset: the freshness lifetime plus the stale windows, and one more lifetime for a response with an `ETag` or `Last-Modified` (so that it can be revalidated).',
      }),
    ),
    memory: Type.Object(
      {
        dictionary_name: Type.String({
          default: 'kong_db_cache',
          minLength: 1,
          description: 'The name of the in-memory store of the `memory` strategy. Plugins naming the same dictionary share one LRU (and its byte budget).',
        }),
        size: Type.Integer({
          default: 64 * MiB,
          minimum: 65536,
          'x-message': 'must be an integer >= 65536',
          description: 'Gatehouse: byte budget of the dictionary in each worker process (the largest value among the plugins sharing it); the least recently used entries are evicted beyond it.',
        }),
        max_body_size: Type.Integer({
          default: 4 * MiB,
          minimum: 0,
          'x-message': 'must be an integer >= 0',
          description: 'Gatehouse: largest response body (bytes) stored in memory; larger responses are passed through and not cached (`X-Cache-Status: Bypass`).',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Settings of the `memory` strategy.' },
    ),
    redis: redisRecord,
    vary_query_params: Type.Optional(
      Type.Array(Type.String(), {
        description:
          'Relevant query parameters considered for the cache key. If undefined, all params are taken into consideration. When set, the other parameters are removed from requests whose response may be stored, so that they cannot change a cached response.',
      }),
    ),
    vary_headers: Type.Optional(
      Type.Array(Type.String({ pattern: HEADER_NAME, 'x-message': 'must be a valid header name' }), {
        description: 'Relevant headers considered for the cache key. If undefined, none of the headers are taken into consideration.',
      }),
    ),
    response_headers: Type.Object(
      {
        age: Type.Boolean({ default: true, description: 'Send `Age` on a hit.' }),
        'X-Cache-Status': Type.Boolean({ default: true, description: 'Send `X-Cache-Status` (Miss, Hit, Refresh, Bypass).' }),
        'X-Cache-Key': Type.Boolean({ default: true, description: 'Send `X-Cache-Key`.' }),
      },
      { additionalProperties: false, default: {}, description: 'Caching related diagnostic headers that should be included in cached responses. A request with a `Kong-Debug` header gets them all.' },
    ),
    cache_authenticated: Type.Boolean({
      default: false,
      description:
        'Gatehouse: cache responses to requests with an `Authorization` header or an authenticated consumer. Off: such requests bypass the cache. On: the consumer (or, without one, a digest of the `Authorization` header) is part of the cache key.',
    }),
    request_coalescing: Type.Boolean({
      default: true,
      description: 'Gatehouse: concurrent misses for one key make one upstream request; the others wait for its response and are served from it (per worker process).',
    }),
    coalescing_timeout: Type.Number({
      default: 10,
      exclusiveMinimum: 0,
      'x-message': 'must be a number greater than 0',
      description: 'Gatehouse: seconds a coalesced request waits for the leading one before going upstream itself.',
    }),
    stale_while_revalidate: Type.Integer({
      default: 0,
      minimum: 0,
      'x-message': 'must be an integer >= 0',
      description:
        'Gatehouse: seconds after an entry went stale during which it is still served (`Hit`) while one background request refreshes it. With `cache_control`, the response\'s own `stale-while-revalidate` wins.',
    }),
    stale_if_error: Type.Integer({
      default: 0,
      minimum: 0,
      'x-message': 'must be an integer >= 0',
      description:
        'Gatehouse: seconds after an entry went stale during which it is served instead of an upstream error (a connection failure, a timeout, or a 500, 502, 503 or 504). With `cache_control`, the response\'s own `stale-if-error` wins.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Caches upstream responses in memory or in Redis, as Kong\'s proxy-cache does, with the safety of an HTTP cache: requests with credentials, responses with Set-Cookie or `private`/`no-store` are never cached by default, the key is built from the normalised path and sorted query parameters, and the upstream\'s Vary is honoured. Beyond Kong: request coalescing, stale-while-revalidate, stale-if-error, conditional revalidation (ETag / Last-Modified) and HEAD from a cached GET.',
  },
);

export type ProxyCacheConfig = Static<typeof schema>;

export function check(config: ProxyCacheConfig): string | undefined {
  for (const code of config.response_code) {
    if (code === 206) return 'config.response_code: 206 (partial content) cannot be cached';
    if (code === 304) return 'config.response_code: 304 cannot be cached (a 304 from the upstream refreshes an entry instead)';
  }
  if (config.memory.max_body_size > config.memory.size) return 'config.memory.max_body_size: must not be larger than memory.size';
  if (config.strategy === 'redis') {
    const r = config.redis;
    if (r.sentinel_master && !r.sentinel_nodes?.length) return 'config.redis.sentinel_nodes: required with redis.sentinel_master';
    if (r.sentinel_nodes?.length && !r.sentinel_master) return 'config.redis.sentinel_master: required with redis.sentinel_nodes';
    if (!r.host && !r.url && !r.cluster_nodes?.length && !r.sentinel_master) return 'config.redis.host: required field missing';
  }
  return undefined;
}
