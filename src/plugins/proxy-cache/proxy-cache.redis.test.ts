import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { send } from '../../../test/helpers/harness.js';
import { askPlugins } from '../../admin/server.js';
import { TestRedisServer } from '../../../test/helpers/redis-server.js';
import { RedisCacheStore } from '../../cache/redis-store.js';
import { cached, countingHandler, startCacheGateway, startSwitchableUpstream, type CacheGateway, type SwitchableUpstream } from './test-support.js';

// Against the real Redis at 127.0.0.1:6379; every test writes under its own key prefix and
// deletes it afterwards.
const cleanup: (() => Promise<void>)[] = [];
let redis: Redis;
before(() => {
  redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: false });
});
after(async () => {
  for (const c of cleanup.reverse()) await c();
  await redis.quit();
});

async function keysUnder(prefix: string): Promise<string[]> {
  return redis.keys(`${prefix}*`);
}

function uniquePrefix(): string {
  const prefix = `gatehouse-test:proxy-cache:${randomUUID()}:`;
  cleanup.push(async () => {
    const keys = await keysUnder(prefix);
    if (keys.length) await redis.del(...keys);
  });
  return prefix;
}

function redisConfig(prefix: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { strategy: 'redis', redis: { host: '127.0.0.1', port: 6379, timeout: 2000, prefix, ...extra } };
}

/** A gateway node; `behindLoadBalancer`: it trusts the X-Forwarded-* of 127.0.0.1, as nodes behind one balancer do. */
async function node(url: string, config: Record<string, unknown>, behindLoadBalancer = false): Promise<CacheGateway> {
  const document = cached(url, config);
  const gw = await startCacheGateway(behindLoadBalancer ? { ...document, _gatehouse: { trusted_ips: ['127.0.0.1'] } } : document);
  cleanup.push(gw.close);
  return gw;
}

async function upstream(): Promise<SwitchableUpstream> {
  const up = await startSwitchableUpstream();
  cleanup.push(up.close);
  return up;
}

const status = (r: { headers: Record<string, unknown> }) => r.headers['x-cache-status'];

describe('proxy-cache: redis strategy (real Redis)', () => {
  it('an entry stored by one node is a hit on another', async () => {
    const prefix = uniquePrefix();
    const up = await upstream();
    // Two nodes listen on two ports here; behind a balancer both see the balancer's port.
    const a = await node(up.url, redisConfig(prefix), true);
    const b = await node(up.url, redisConfig(prefix), true);
    const lb = { 'x-forwarded-proto': 'https', 'x-forwarded-port': '443', 'x-forwarded-host': 'api.example' };
    const miss = await send(`${a.url}/shared?x=1`, { headers: lb });
    assert.equal(status(miss), 'Miss');
    // The write is asynchronous: wait until it landed.
    while ((await keysUnder(prefix)).length === 0) await new Promise((r) => setTimeout(r, 10));
    const hit = await send(`${b.url}/shared?x=1`, { headers: lb });
    assert.equal(status(hit), 'Hit');
    assert.equal(hit.body, miss.body);
    assert.equal(hit.headers['x-cache-key'], miss.headers['x-cache-key'], 'the key does not depend on the node');
    assert.equal(up.hits, 1);
    const ttl = await redis.pttl(`${prefix}${String(miss.headers['x-cache-key'])}`);
    assert.ok(ttl > 290_000 && ttl <= 300_000, `stored with the entry's retention (${ttl} ms)`);
  });

  it('binary bodies survive the round trip; Vary variants are stored under their own keys', async () => {
    const prefix = uniquePrefix();
    const up = await upstream();
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 255, 0x0d, 0x0a]);
    up.handler = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', vary: 'Accept-Language', 'content-length': bytes.length + 2 });
      res.end(Buffer.concat([bytes, Buffer.from(String(req.headers['accept-language'] ?? '--').slice(0, 2))]));
    };
    const gw = await node(up.url, { ...redisConfig(prefix), content_type: ['application/octet-stream'] });
    const get = (lang: string) =>
      new Promise<Buffer>((resolve, reject) => {
        import('node:http').then(({ default: http }) => {
          http
            .get(`${gw.url}/bin`, { headers: { 'accept-language': lang }, agent: false }, (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve(Buffer.concat(chunks)));
            })
            .on('error', reject);
        }, reject);
      });
    await get('en');
    await get('fr');
    while ((await keysUnder(prefix)).length < 3) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(await get('en'), Buffer.concat([bytes, Buffer.from('en')]));
    assert.deepEqual(await get('fr'), Buffer.concat([bytes, Buffer.from('fr')]));
    assert.equal(up.hits, 2);
    assert.equal((await keysUnder(prefix)).length, 3, 'one Vary index and two variants');
  });

  it('bodies above redis.max_body_size are not stored', async () => {
    const prefix = uniquePrefix();
    const up = await upstream();
    up.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('x'.repeat(2048));
    };
    const gw = await node(up.url, redisConfig(prefix, { max_body_size: 1024 }));
    const r = await send(`${gw.url}/big`);
    assert.equal(r.body.length, 2048);
    assert.equal(status(r), 'Bypass');
    assert.equal(status(await send(`${gw.url}/big`)), 'Bypass');
    assert.deepEqual(await keysUnder(prefix), []);
  });

  it('request coalescing still makes one upstream request per node', async () => {
    const prefix = uniquePrefix();
    const up = await upstream();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inner = countingHandler();
    up.handler = (req, res, body) => void gate.then(() => inner(req, res, body));
    const gw = await node(up.url, redisConfig(prefix));
    const all = Promise.all(Array.from({ length: 50 }, () => send(`${gw.url}/hot`)));
    while (gw.cache().stats.coalesced < 49) await new Promise((r) => setTimeout(r, 10));
    release();
    const responses = await all;
    assert.equal(up.hits, 1);
    assert.ok(responses.every((r) => JSON.parse(r.body).n === 1));
  });

  it('admin: DELETE /proxy-cache removes the keys under the prefix only; GET/DELETE by key', async () => {
    const prefix = uniquePrefix();
    const other = uniquePrefix();
    await redis.set(`${other}keep`, 'x');
    const up = await upstream();
    const gw = await node(up.url, redisConfig(prefix));
    const miss = await send(`${gw.url}/a`);
    await send(`${gw.url}/b`);
    while ((await keysUnder(prefix)).length < 2) await new Promise((r) => setTimeout(r, 10));
    const key = String(miss.headers['x-cache-key']);
    const ask = (method: string, path: string) => askPlugins(gw.gateway.snapshot, { method, path, query: new URLSearchParams(), body: undefined });
    const found = await ask('GET', `/proxy-cache/${key}`);
    assert.equal(found?.status, 200);
    assert.equal((found!.body as { body: string }).body, miss.body);
    assert.equal((await ask('DELETE', `/proxy-cache/${key}`))?.status, 204);
    assert.deepEqual(await ask('GET', `/proxy-cache/${key}`), { status: 404 });
    assert.equal((await ask('DELETE', '/proxy-cache'))?.status, 204);
    assert.deepEqual(await keysUnder(prefix), []);
    assert.equal(await redis.get(`${other}keep`), 'x');
  });
});

describe('proxy-cache: redis down (own redis-server, stopped and restarted)', () => {
  let server: TestRedisServer;
  before(async () => {
    server = await TestRedisServer.start();
  });
  after(async () => {
    await server?.stop();
  });

  it('the cache fails open: requests are proxied while Redis is down, and cached again when it is back', async () => {
    const up = await upstream();
    const gw = await node(up.url, { strategy: 'redis', redis: { host: '127.0.0.1', port: server.port, timeout: 500, prefix: 'pc:' } });
    await send(`${gw.url}/a`);
    const store = gw.cache().store as RedisCacheStore;
    while ((await send(`${gw.url}/a`)).headers['x-cache-status'] !== 'Hit') await new Promise((r) => setTimeout(r, 10));
    await server.stop();
    for (let i = 0; i < 3; i++) {
      const r = await send(`${gw.url}/a`);
      assert.equal(r.status, 200);
      assert.equal(status(r), 'Miss');
    }
    assert.ok(store.failures > 0);
    assert.ok(gw.logs.some((l) => l.msg === 'proxy-cache: redis store unavailable'));
    await server.restart();
    const deadline = Date.now() + 10_000;
    let last = '';
    while (Date.now() < deadline) {
      last = String((await send(`${gw.url}/a`)).headers['x-cache-status']);
      if (last === 'Hit') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(last, 'Hit');
  });
});
