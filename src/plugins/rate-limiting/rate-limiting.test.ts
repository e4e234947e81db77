import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { validateAgainst } from '../../config/validate.js';
import { Gateway } from '../../runtime/gateway.js';
import { createLogger } from '../../observability/logger.js';
import { PLUGINS } from '../registry.js';
import { definePlugin, type PluginDefinition } from '../types.js';
import { setConsumer } from '../../pipeline/consumer.js';
import { send, startUpstream, type Upstream } from '../../../test/helpers/harness.js';
import { TestRedisServer } from '../../../test/helpers/redis-server.js';
import { rateLimiting } from './index.js';
import { effectiveRedis, type RateLimitingConfig } from './schema.js';
import type { RateLimitingInstance } from './plugin.js';

function validate(input: Record<string, unknown>): string[] {
  const config = structuredClone(input);
  const errors = validateAgainst(rateLimiting.schema, config, 'config');
  if (errors.length) return errors;
  const problem = rateLimiting.check!(config as RateLimitingConfig);
  return problem ? [problem] : [];
}

/** A stand-in auth plugin: the consumer named by X-Test-User, with its first key-auth credential. */
const headerAuth = definePlugin({
  name: 'header-auth',
  priority: 1250,
  schema: Type.Object({}, { additionalProperties: false }),
  create: (_config, deps) => ({
    access: (ex) => {
      const name = ex.req.headers['x-test-user'];
      const consumer = typeof name === 'string' ? deps.consumers.find(name) : undefined;
      if (!consumer) return undefined;
      const credentials = deps.consumers.credentials('keyauth_credentials').filter((c) => c.consumer.id === consumer.id);
      const credential = credentials[Number(ex.req.headers['x-test-credential'] ?? 0)];
      setConsumer(ex, consumer, credential, credential?.id);
    },
  }),
});
const plugins = new Map<string, PluginDefinition<any>>([...PLUGINS, ['header-auth', headerAuth]]);

interface Started {
  url: string;
  gateway: Gateway;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** A gateway in this process with a controllable clock. */
async function start(config: object, now?: () => number): Promise<Started> {
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  const gateway = new Gateway({ config, proxyListen: { host: '127.0.0.1', port: 0 }, logger: createLogger({ level: 'info', destination }), plugins, now });
  const address = await gateway.start();
  return { url: `http://127.0.0.1:${address.port}`, gateway, logs, close: () => gateway.stop(1000) };
}

function instanceOn(gateway: Gateway, routeName: string): RateLimitingInstance {
  const route = [...gateway.snapshot.routes.values()].find((r) => r.name === routeName)!;
  return route.plugins.all.find((p) => p.name === 'rate-limiting')!.instance as RateLimitingInstance;
}

const rateHeaders = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).filter(([k]) => /ratelimit|retry-after/.test(k)));
/** Unique names: plugin ids (and so counter keys in the shared Redis) differ per run. */
const uniq = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

describe('rate-limiting: schema', () => {
  it('fills Kong defaults (Redis timeout: 100 ms)', () => {
    const config: Record<string, unknown> = { minute: 10 };
    assert.deepEqual(validateAgainst(rateLimiting.schema, config, 'config'), []);
    assert.deepEqual(config, {
      minute: 10,
      limit_by: 'consumer',
      policy: 'local',
      algorithm: 'fixed-window',
      fault_tolerant: true,
      hide_client_headers: false,
      error_code: 429,
      error_message: 'API rate limit exceeded',
      sync_rate: -1,
      redis: { port: 6379, timeout: 100, database: 0, ssl: false, ssl_verify: false },
    });
    assert.equal(rateLimiting.priority, 910);
  });

  it("Kong's cross-field rules and messages", () => {
    assert.deepEqual(validate({}), ["config: at least one of these fields must be non-empty: 'config.second', 'config.minute', 'config.hour', 'config.day', 'config.month', 'config.year'"]);
    assert.deepEqual(validate({ minute: 20, hour: 10 }), ['config: The limit for hour(10.0) cannot be lower than the limit for minute(20.0)']);
    assert.deepEqual(validate({ minute: 0 }), ['config.minute: must be a number greater than 0']);
    assert.deepEqual(validate({ minute: 1, limit_by: 'header' }), ['config.header_name: required field missing']);
    assert.deepEqual(validate({ minute: 1, limit_by: 'path' }), ['config.path: required field missing']);
    assert.deepEqual(validate({ minute: 1, policy: 'redis' }), ['config.redis.host: required field missing']);
    assert.deepEqual(validate({ minute: 1, policy: 'cluster' }), ['config.policy: must be one of: local, redis (Kong\'s "cluster" policy needs a database; use redis)']);
    assert.deepEqual(validate({ minute: 1, sync_rate: 1 }), ['config.sync_rate: value must be -1']);
    assert.deepEqual(validate({ minute: 1, burst: 5 }), ['config.burst: only applies to algorithm "token-bucket"']);
    assert.deepEqual(validate({ minute: 1, algorithm: 'leaky' }), ['config.algorithm: must be one of: fixed-window, sliding-window, token-bucket']);
    assert.deepEqual(validate({ minute: 1, policy: 'redis', redis: { sentinel_master: 'm' } }), ['config.redis.sentinel_nodes: required with redis.sentinel_master']);
    assert.deepEqual(validate({ minute: 1, policy: 'redis', redis_url: 'redis://127.0.0.1:6379/2' }), []);
    assert.deepEqual(validate({ minute: 1, policy: 'redis', redis: { cluster_nodes: [{ ip: '10.0.0.1' }] } }), []);
    assert.deepEqual(validate({ minute: 1, algorithm: 'token-bucket', burst: 5 }), []);
  });

  it('the deprecated flat redis_* fields set the redis record (Kong < 3.6 configs keep working)', () => {
    const config: Record<string, unknown> = { minute: 1, policy: 'redis', redis_host: 'r.internal', redis_port: 6380, redis_password: 'pw', redis_timeout: 250, redis_database: 3, redis_ssl: true };
    assert.deepEqual(validate(config), []);
    validateAgainst(rateLimiting.schema, config, 'config');
    assert.deepEqual(effectiveRedis(config as RateLimitingConfig), { host: 'r.internal', port: 6380, password: 'pw', timeout: 250, database: 3, ssl: true, ssl_verify: false });
  });
});

describe('rate-limiting: local policy through the gateway', () => {
  let up: Upstream;
  let gw: Started;
  let clock = Date.UTC(2025, 2, 1, 12, 0, 0);

  const route = (name: string, config: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    name,
    paths: [`/${name}`],
    ...extra,
    plugins: [{ name: 'rate-limiting', config }],
  });

  before(async () => {
    up = await startUpstream();
    gw = await start(
      {
        _format_version: '3.0',
        consumers: [{ username: 'alice', keyauth_credentials: [{ key: 'a1' }, { key: 'a2' }] }, { username: 'bob' }],
        services: [
          {
            name: 'svc',
            url: up.url,
            routes: [
              route('basic', { minute: 3, hour: 5, limit_by: 'ip' }),
              route('custom', { second: 1, error_code: 503, error_message: 'slow down' }),
              route('hidden', { minute: 1, hide_client_headers: true }),
              route('byheader', { minute: 1, limit_by: 'header', header_name: 'X-Tenant' }),
              route('bypath', { minute: 1, limit_by: 'path', path: '/bypath/exact' }),
              { ...route('byconsumer', { minute: 1, limit_by: 'consumer' }), plugins: [{ name: 'header-auth' }, { name: 'rate-limiting', config: { minute: 1 } }] },
              { ...route('bycredential', { minute: 1 }), plugins: [{ name: 'header-auth' }, { name: 'rate-limiting', config: { minute: 1, limit_by: 'credential' } }] },
              route('quota', { day: 2, month: 1000, limit_by: 'ip' }),
            ],
          },
          { name: 'svc2', url: up.url, routes: [{ name: 'svc2a', paths: ['/svc2a'] }, { name: 'svc2b', paths: ['/svc2b'] }], plugins: [{ name: 'rate-limiting', config: { minute: 2, limit_by: 'service' } }] },
        ],
      },
      () => clock,
    );
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it("sends Kong's headers, refuses with 429, Retry-After and Kong's body, and resets at the window edge", async () => {
    const calls = up.requests.length;
    const first = await send(`${gw.url}/basic`);
    assert.equal(first.status, 200);
    assert.deepEqual(rateHeaders(first.headers), {
      'x-ratelimit-limit-minute': '3',
      'x-ratelimit-remaining-minute': '2',
      'x-ratelimit-limit-hour': '5',
      'x-ratelimit-remaining-hour': '4',
      'ratelimit-limit': '3',
      'ratelimit-remaining': '2',
      'ratelimit-reset': '60',
    });
    clock += 20_000;
    await send(`${gw.url}/basic`);
    const third = await send(`${gw.url}/basic`);
    assert.equal(third.headers['ratelimit-remaining'], '0');
    assert.equal(third.headers['ratelimit-reset'], '40');
    const blocked = await send(`${gw.url}/basic`);
    assert.equal(blocked.status, 429);
    assert.equal(blocked.json().message, 'API rate limit exceeded');
    assert.match(blocked.json().request_id, /^[0-9a-f]+$/);
    assert.equal(blocked.headers['retry-after'], '40');
    assert.equal(blocked.headers['x-ratelimit-remaining-minute'], '0');
    assert.equal(blocked.headers['x-ratelimit-remaining-hour'], '2', 'blocked requests are not counted');
    assert.equal(up.requests.length, calls + 3, 'the blocked request never reached the upstream');

    clock += 40_000; // the next minute
    const again = await send(`${gw.url}/basic`);
    assert.equal(again.status, 200);
    assert.equal(again.headers['x-ratelimit-remaining-minute'], '2');
    assert.equal(again.headers['x-ratelimit-remaining-hour'], '1');
    assert.equal(again.headers['ratelimit-limit'], '5', 'the hour now has the fewest remaining');
    await send(`${gw.url}/basic`);
    const hourly = await send(`${gw.url}/basic`);
    assert.equal(hourly.status, 429);
    assert.equal(hourly.headers['ratelimit-limit'], '5', 'a tie at 0 goes to the longer window');
    assert.equal(hourly.headers['retry-after'], '3540');
  });

  it('error_code, error_message and hide_client_headers', async () => {
    assert.equal((await send(`${gw.url}/custom`)).status, 200);
    const custom = await send(`${gw.url}/custom`);
    assert.equal(custom.status, 503);
    assert.equal(custom.json().message, 'slow down');
    assert.equal(custom.headers['x-ratelimit-limit-second'], '1');

    const ok = await send(`${gw.url}/hidden`);
    assert.deepEqual(rateHeaders(ok.headers), {});
    const hidden = await send(`${gw.url}/hidden`);
    assert.equal(hidden.status, 429);
    assert.deepEqual(rateHeaders(hidden.headers), {}, 'no Retry-After either');
  });

  it('limit_by header and path, with the client IP as the fallback', async () => {
    assert.equal((await send(`${gw.url}/byheader`, { headers: { 'x-tenant': 'a' } })).status, 200);
    assert.equal((await send(`${gw.url}/byheader`, { headers: { 'x-tenant': 'a' } })).status, 429);
    assert.equal((await send(`${gw.url}/byheader`, { headers: { 'x-tenant': 'b' } })).status, 200, 'another tenant has its own count');
    assert.equal((await send(`${gw.url}/byheader`)).status, 200, 'no header: counted by IP');
    assert.equal((await send(`${gw.url}/byheader`)).status, 429);

    assert.equal((await send(`${gw.url}/bypath/exact`)).status, 200);
    assert.equal((await send(`${gw.url}/bypath/exact`)).status, 429);
    assert.equal((await send(`${gw.url}/bypath/other`)).status, 200, 'other paths: counted by IP');
    assert.equal((await send(`${gw.url}/bypath/more`)).status, 429);
  });

  it('limit_by consumer, credential and service', async () => {
    assert.equal((await send(`${gw.url}/byconsumer`, { headers: { 'x-test-user': 'alice' } })).status, 200);
    assert.equal((await send(`${gw.url}/byconsumer`, { headers: { 'x-test-user': 'alice', 'x-test-credential': '1' } })).status, 429, 'same consumer, other key');
    assert.equal((await send(`${gw.url}/byconsumer`, { headers: { 'x-test-user': 'bob' } })).status, 200);
    assert.equal((await send(`${gw.url}/byconsumer`)).status, 200, 'anonymous: counted by IP');

    assert.equal((await send(`${gw.url}/bycredential`, { headers: { 'x-test-user': 'alice' } })).status, 200);
    assert.equal((await send(`${gw.url}/bycredential`, { headers: { 'x-test-user': 'alice' } })).status, 429);
    assert.equal((await send(`${gw.url}/bycredential`, { headers: { 'x-test-user': 'alice', 'x-test-credential': '1' } })).status, 200, 'each credential has its own count');

    assert.equal((await send(`${gw.url}/svc2a`)).status, 200);
    assert.equal((await send(`${gw.url}/svc2b`)).status, 200);
    assert.equal((await send(`${gw.url}/svc2a`)).status, 429, 'both routes count against their service');
  });

  it('quotas: the remaining day/month quota is in the response headers', async () => {
    const r = await send(`${gw.url}/quota`);
    assert.equal(r.headers['x-ratelimit-remaining-day'], '1');
    assert.equal(r.headers['x-ratelimit-remaining-month'], '999');
    assert.equal(r.headers['ratelimit-limit'], '2');
    assert.equal((await send(`${gw.url}/quota`)).status, 200);
    assert.equal((await send(`${gw.url}/quota`)).status, 429);
  });

  it('a reload that keeps the plugin keeps its counts', async () => {
    const name = uniq('reload');
    const config = (minute: number) => ({ _format_version: '3.0', services: [{ name: 's', url: up.url, routes: [{ name, paths: ['/'], plugins: [{ name: 'rate-limiting', config: { minute, limit_by: 'ip' } }] }] }] });
    const g = await start(config(2), () => clock);
    try {
      assert.equal((await send(`${g.url}/`)).status, 200);
      g.gateway.reload(config(3));
      const r = await send(`${g.url}/`);
      assert.equal(r.headers['x-ratelimit-remaining-minute'], '1', 'the count before the reload is kept');
    } finally {
      await g.close();
    }
  });
});

describe('rate-limiting: redis policy through the gateway (shared Redis)', () => {
  let up: Upstream;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up?.close());

  for (const algorithm of ['fixed-window', 'sliding-window', 'token-bucket'] as const) {
    it(`${algorithm}: two gateways sharing Redis let exactly the limit through under concurrency`, async () => {
      const name = uniq(algorithm);
      const config = {
        _format_version: '3.0',
        services: [{ name: 's', url: up.url, routes: [{ name, paths: ['/'], plugins: [{ name: 'rate-limiting', config: { hour: 25, limit_by: 'ip', policy: 'redis', algorithm, redis: { host: '127.0.0.1', port: 6379, timeout: 2000 } } }] }] }],
      };
      const a = await start(config);
      const b = await start(config);
      try {
        const results = await Promise.all(Array.from({ length: 60 }, (_, i) => send(`${i % 2 ? a.url : b.url}/`)));
        const ok = results.filter((r) => r.status === 200).length;
        assert.equal(ok, 25);
        assert.equal(results.filter((r) => r.status === 429).length, 35);
        assert.equal(instanceOn(a.gateway, name).stats.storeErrors + instanceOn(b.gateway, name).stats.storeErrors, 0);
      } finally {
        await a.close();
        await b.close();
      }
    });
  }

  it('one connection per distinct Redis config, reused across reloads, closed on stop', async () => {
    const name = uniq('conn');
    const config = (db: number, minute: number) => ({
      _format_version: '3.0',
      services: [
        {
          name: 's',
          url: up.url,
          routes: [
            { name, paths: ['/a'], plugins: [{ name: 'rate-limiting', config: { minute, policy: 'redis', redis: { host: '127.0.0.1', database: db } } }] },
            { name: `${name}b`, paths: ['/b'], plugins: [{ name: 'rate-limiting', config: { second: 5, policy: 'redis', redis_host: '127.0.0.1', redis_database: db } }] },
          ],
        },
      ],
    });
    const g = await start(config(0, 5));
    try {
      assert.equal((await send(`${g.url}/a`)).status, 200);
      assert.equal(g.gateway.redis.size, 1, 'the record and the flat fields describe the same connection');
      for (let i = 0; i < 5; i++) g.gateway.reload(config(0, 6 + i));
      assert.equal((await send(`${g.url}/b`)).status, 200);
      assert.equal(g.gateway.redis.size, 1, 'reloads reuse the connection');
      g.gateway.reload(config(1, 5));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(g.gateway.redis.size, 1, 'the old connection is closed when its snapshot retires');
    } finally {
      await g.close();
    }
    assert.equal(g.gateway.redis.size, 0);
  });
});

describe('rate-limiting: Redis down or slow (own redis-server, stopped and restarted)', () => {
  let up: Upstream;
  let redis: TestRedisServer;
  let gw: Started;
  const tolerant = uniq('tolerant');
  const strict = uniq('strict');

  before(async () => {
    up = await startUpstream();
    redis = await TestRedisServer.start();
    const plugin = (fault_tolerant: boolean) => ({ name: 'rate-limiting', config: { minute: 1000, limit_by: 'ip', policy: 'redis', fault_tolerant, redis: { host: '127.0.0.1', port: redis.port, timeout: 100 } } });
    gw = await start({
      _format_version: '3.0',
      services: [{ name: 's', url: up.url, routes: [{ name: tolerant, paths: ['/tolerant'], plugins: [plugin(true)] }, { name: strict, paths: ['/strict'], plugins: [plugin(false)] }] }],
    });
  });

  after(async () => {
    await gw?.close();
    await redis?.stop();
    await up?.close();
  });

  const warnings = () => gw.logs.filter((l) => l.msg === 'redis unavailable').length;

  async function until(what: string, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('counts while Redis is up', async () => {
    const r = await send(`${gw.url}/tolerant`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-ratelimit-remaining-minute'], '999');
    assert.equal((await send(`${gw.url}/strict`)).status, 200);
  });

  it('down: fault_tolerant passes without headers (warned once, counted); otherwise 503', async () => {
    await redis.stop();
    const before = instanceOn(gw.gateway, tolerant).stats.failedOpen;
    for (let i = 0; i < 5; i++) {
      const r = await send(`${gw.url}/tolerant`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-ratelimit-remaining-minute'], undefined);
    }
    assert.equal(instanceOn(gw.gateway, tolerant).stats.failedOpen, before + 5);
    const refused = await send(`${gw.url}/strict`);
    assert.equal(refused.status, 503);
    assert.equal(refused.json().message, 'Rate limiting is temporarily unavailable');
    assert.equal(instanceOn(gw.gateway, strict).stats.failedClosed, 1);
    for (let i = 0; i < 5; i++) await send(`${gw.url}/strict`);
    assert.equal(warnings(), 1, 'one warning for the whole outage (at most one per 10 s)');
  });

  it('back: limiting resumes without a restart', async () => {
    await redis.restart();
    await until('the tolerant route counts again', async () => (await send(`${gw.url}/tolerant`)).headers['x-ratelimit-remaining-minute'] !== undefined);
    await until('the strict route passes again', async () => (await send(`${gw.url}/strict`)).status === 200);
  });

  it('slow (a frozen server): the timeout answers, then it recovers', async () => {
    redis.pause();
    try {
      const started = Date.now();
      const r = await send(`${gw.url}/tolerant`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-ratelimit-remaining-minute'], undefined);
      assert.ok(Date.now() - started < 5000, 'bounded by the 100 ms timeout, not by the frozen server');
      assert.equal((await send(`${gw.url}/strict`)).status, 503);
      assert.ok(instanceOn(gw.gateway, strict).stats.storeErrors >= 1);
    } finally {
      redis.resume();
    }
    await until('the strict route passes again', async () => (await send(`${gw.url}/strict`)).status === 200);
  });
});
