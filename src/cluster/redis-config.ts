import { Type } from '@sinclair/typebox';
import type { RedisConnectionConfig } from './redis.js';

/**
 * The connection fields of a plugin's `redis` record (Kong 3.6+ names, plus Gatehouse's url,
 * Cluster and Sentinel fields), shared by every plugin that talks to Redis. `purpose` completes
 * the Sentinel role advice ("Counting", "Storing"). Plugins add their own timeout and extras.
 */
export function redisConnectionFields(purpose: string) {
  return {
    host: Type.Optional(Type.String({ minLength: 1, description: 'A string representing a host name, such as example.com.' })),
    port: Type.Integer({ default: 6379, minimum: 0, maximum: 65535, 'x-message': 'must be an integer between 0 and 65535', description: 'An integer representing a port number between 0 and 65535, inclusive.' }),
    username: Type.Optional(Type.String({ description: 'Username for Redis ACL authentication (Redis 6+).' })),
    password: Type.Optional(Type.String({ description: 'Password for Redis authentication.' })),
    database: Type.Integer({ default: 0, minimum: 0, 'x-message': 'must be an integer >= 0', description: 'The Redis database number.' }),
    ssl: Type.Boolean({ default: false, description: 'Connect to Redis over TLS.' }),
    ssl_verify: Type.Boolean({ default: false, description: "Verify the Redis server's TLS certificate." }),
    server_name: Type.Optional(Type.String({ description: 'SNI server name for the TLS connection.' })),
    url: Type.Optional(
      Type.String({
        pattern: '^rediss?://',
        'x-message': 'must be a redis:// or rediss:// URL',
        description: 'Gatehouse: `redis://[user:password@]host:port/db` (or `rediss://` for TLS); when set it replaces host, port, username, password, database and ssl.',
      }),
    ),
    cluster_nodes: Type.Optional(
      Type.Array(
        Type.Object({ ip: Type.String({ minLength: 1 }), port: Type.Integer({ default: 6379, minimum: 1, maximum: 65535 }) }, { additionalProperties: false }),
        { minItems: 1, description: 'Redis Cluster seed nodes (`{ip, port}`), as in Kong Enterprise; when set, host, port and database are not used.' },
      ),
    ),
    cluster_max_redirections: Type.Optional(Type.Integer({ minimum: 0, description: 'Redis Cluster: most MOVED/ASK redirections followed per command (default 16).' })),
    sentinel_master: Type.Optional(Type.String({ minLength: 1, description: 'Redis Sentinel: the name of the master group; requires `sentinel_nodes`.' })),
    sentinel_role: Type.Optional(
      Type.Union([Type.Literal('master'), Type.Literal('slave'), Type.Literal('any')], {
        'x-message': 'must be one of: master, slave, any',
        description: `Redis Sentinel: connect to the master (default) or a replica. ${purpose} needs writes: use \`master\`.`,
      }),
    ),
    sentinel_nodes: Type.Optional(
      Type.Array(
        Type.Object({ host: Type.String({ minLength: 1 }), port: Type.Integer({ default: 26379, minimum: 1, maximum: 65535 }) }, { additionalProperties: false }),
        { minItems: 1, description: 'Redis Sentinel: the sentinels to ask for the master (`{host, port}`).' },
      ),
    ),
    sentinel_username: Type.Optional(Type.String({ description: 'Redis Sentinel: username for the sentinels.' })),
    sentinel_password: Type.Optional(Type.String({ description: 'Redis Sentinel: password for the sentinels.' })),
  };
}

/** The connection part of a validated `redis` record, as RedisRegistry.acquire takes it. */
export function connectionOf(r: RedisConnectionConfig): RedisConnectionConfig {
  return {
    host: r.host,
    port: r.port,
    url: r.url,
    username: r.username,
    password: r.password,
    database: r.database,
    ssl: r.ssl,
    ssl_verify: r.ssl_verify,
    server_name: r.server_name,
    cluster_nodes: r.cluster_nodes,
    cluster_max_redirections: r.cluster_max_redirections,
    sentinel_master: r.sentinel_master,
    sentinel_role: r.sentinel_role,
    sentinel_nodes: r.sentinel_nodes,
    sentinel_username: r.sentinel_username,
    sentinel_password: r.sentinel_password,
  };
}
