import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { send } from '../../../test/helpers/harness.js';
import { cached, clock, countingHandler, eventually, startCacheGateway, startSwitchableUpstream, type CacheGateway, type Clock, type SwitchableUpstream } from './test-support.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(config: Record<string, unknown>, c: Clock): Promise<{ up: SwitchableUpstream; gw: CacheGateway }> {
  const up = await startSwitchableUpstream();
  cleanup.push(up.close);
  const gw = await startCacheGateway(cached(up.url, config, {}), c.now);
  cleanup.push(gw.close);
  return { up, gw };
}

const status = (r: { headers: Record<string, unknown> }) => r.headers['x-cache-status'];
const n = (r: { body: string }) => (JSON.parse(r.body) as { n: number }).n;

describe('proxy-cache: stale-while-revalidate', () => {
  it('a stale entry is served at once while one background request refreshes it', async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_ttl: 10, stale_while_revalidate: 30 }, c);
    await send(`${gw.url}/a`);
    c.advance(15);
    const stale = await send(`${gw.url}/a`);
    assert.equal(status(stale), 'Hit');
    assert.equal(stale.headers.age, '15');
    assert.equal(n(stale), 1);
    // A burst of stale hits starts one refresh only.
    await Promise.all([send(`${gw.url}/a`), send(`${gw.url}/a`)]);
    await eventually(() => gw.cache().stats.stored === 2);
    assert.equal(up.hits, 2);
    assert.equal(gw.cache().stats.revalidations, 1);
    const fresh = await send(`${gw.url}/a`);
    assert.equal(status(fresh), 'Hit');
    assert.equal(n(fresh), 2);
    assert.equal(fresh.headers.age, '0');
  });

  it('on a service balanced over an upstream, the background refresh goes to a target with its Host', async () => {
    const c = clock();
    const up = await startSwitchableUpstream();
    cleanup.push(up.close);
    const port = new URL(up.url).port;
    const doc = cached(up.url, { cache_ttl: 10, stale_while_revalidate: 30 }) as { services: Record<string, unknown>[] };
    const gw = await startCacheGateway(
      { ...doc, upstreams: [{ name: 'cache.pool', targets: [{ target: `localhost:${port}` }] }], services: [{ ...doc.services[0], url: undefined, host: 'cache.pool' }] },
      c.now,
    );
    cleanup.push(gw.close);
    await send(`${gw.url}/b`);
    c.advance(15);
    assert.equal(status(await send(`${gw.url}/b`)), 'Hit');
    await eventually(() => gw.cache().stats.stored === 2);
    assert.equal(up.hits, 2);
    assert.equal(up.requests[1]!.headers.host, `localhost:${port}`);
  });

  it('beyond the window the request goes upstream (Refresh, with storage_ttl keeping the entry)', async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_ttl: 10, stale_while_revalidate: 5, storage_ttl: 3600 }, c);
    await send(`${gw.url}/a`);
    c.advance(16);
    const r = await send(`${gw.url}/a`);
    assert.equal(status(r), 'Refresh');
    assert.equal(n(r), 2);
    assert.equal(up.hits, 2);
  });

  it("with cache_control the response's own stale-while-revalidate counts, and must-revalidate forbids it", async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_control: true, storage_ttl: 3600 }, c);
    up.handler = countingHandler({ 'cache-control': 'max-age=10, stale-while-revalidate=60' });
    await send(`${gw.url}/swr`);
    up.handler = countingHandler({ 'cache-control': 'max-age=10, stale-while-revalidate=60, must-revalidate' });
    await send(`${gw.url}/strict`);
    c.advance(20);
    assert.equal(status(await send(`${gw.url}/swr`)), 'Hit');
    assert.equal(status(await send(`${gw.url}/strict`)), 'Refresh');
  });
});

describe('proxy-cache: stale-if-error', () => {
  it('an upstream that cannot be reached: the stale entry answers instead of a 502', async () => {
    const c = clock();
    const up = await startSwitchableUpstream();
    const gw = await startCacheGateway(cached(up.url, { cache_ttl: 10, stale_if_error: 60 }, {}), c.now);
    cleanup.push(gw.close);
    const first = await send(`${gw.url}/a`);
    await up.close();
    c.advance(30);
    const stale = await send(`${gw.url}/a`);
    assert.equal(stale.status, 200);
    assert.equal(stale.body, first.body);
    assert.equal(status(stale), 'Hit');
    assert.equal(stale.headers.age, '30');
    assert.equal(stale.headers['content-type'], 'application/json');
    c.advance(41);
    const gone = await send(`${gw.url}/a`);
    assert.equal(gone.status, 502, 'past the window the error is passed on');
  });

  it('an upstream 500/502/503/504 response: the stale entry answers', async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_ttl: 10, stale_if_error: 60 }, c);
    const first = await send(`${gw.url}/a`);
    c.advance(20);
    for (const code of [500, 503]) {
      up.handler = (_req, res) => {
        res.writeHead(code, { 'content-type': 'text/html', 'retry-after': '5' });
        res.end('<h1>down</h1>');
      };
      const r = await send(`${gw.url}/a`);
      assert.equal(r.status, 200);
      assert.equal(r.body, first.body);
      assert.equal(status(r), 'Hit');
      assert.equal(r.headers['retry-after'], undefined);
      assert.equal(r.headers['content-length'], String(Buffer.byteLength(first.body)));
    }
    const head = await send(`${gw.url}/a`, { method: 'HEAD' });
    assert.equal(head.status, 503, 'HEAD is not a stored request: the error passes');
    up.handler = countingHandler();
    const recovered = await send(`${gw.url}/a`);
    assert.equal(status(recovered), 'Refresh');
    assert.equal(recovered.status, 200);
  });

  it('without stale_if_error (the default) an error is passed on', async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_ttl: 10, storage_ttl: 3600 }, c);
    await send(`${gw.url}/a`);
    c.advance(20);
    up.handler = countingHandler({}, 503);
    const r = await send(`${gw.url}/a`);
    assert.equal(r.status, 503);
    assert.equal(status(r), 'Bypass');
  });
});

describe('proxy-cache: conditional revalidation (ETag / Last-Modified)', () => {
  it('an expired entry with an ETag is revalidated; the 304 refreshes it and the client gets the whole response', async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_ttl: 10 }, c);
    let version = 'v1';
    up.handler = (req, res) => {
      const etag = `"${version}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag, 'x-revalidated': 'yes' });
        res.end();
        return;
      }
      const text = JSON.stringify({ version, n: up.hits });
      res.writeHead(200, { 'content-type': 'application/json', etag, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const first = await send(`${gw.url}/doc`);
    assert.equal(status(first), 'Miss');
    c.advance(15);
    const refreshed = await send(`${gw.url}/doc`);
    assert.equal(up.requests[1]!.headers['if-none-match'], '"v1"');
    assert.equal(refreshed.status, 200);
    assert.equal(status(refreshed), 'Refresh');
    assert.equal(refreshed.body, first.body);
    assert.equal(refreshed.headers['x-revalidated'], 'yes', "the 304's headers update the stored ones");
    assert.equal(refreshed.headers['content-length'], String(Buffer.byteLength(first.body)));
    const hit = await send(`${gw.url}/doc`);
    assert.equal(status(hit), 'Hit');
    assert.equal(hit.headers.age, '0', 'freshness restarted');
    assert.equal(hit.headers['x-revalidated'], 'yes');
    assert.equal(gw.cache().stats.notModified, 1);
    // A changed resource: the 200 replaces the entry.
    version = 'v2';
    c.advance(15);
    const changed = await send(`${gw.url}/doc`);
    assert.equal(status(changed), 'Refresh');
    assert.equal(JSON.parse(changed.body).version, 'v2');
    assert.equal(JSON.parse((await send(`${gw.url}/doc`)).body).version, 'v2');
  });

  it('Last-Modified is sent as If-Modified-Since; the client\'s own validators never reach the upstream of a miss', async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_ttl: 10 }, c);
    const lastModified = new Date(c.t - 3600_000).toUTCString();
    up.handler = (req, res) => {
      if (req.headers['if-modified-since'] === lastModified) {
        res.writeHead(304, {});
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'last-modified': lastModified });
      res.end('hello');
    };
    const miss = await send(`${gw.url}/t`, { headers: { 'if-modified-since': lastModified, 'if-none-match': '"x"' } });
    assert.equal(miss.status, 200);
    assert.equal(miss.body, 'hello');
    assert.equal(up.requests[0]!.headers['if-modified-since'], undefined);
    assert.equal(up.requests[0]!.headers['if-none-match'], undefined);
    c.advance(11);
    const r = await send(`${gw.url}/t`);
    assert.equal(up.requests[1]!.headers['if-modified-since'], lastModified);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello');
    assert.equal(status(r), 'Refresh');
  });

  it('background revalidation (stale-while-revalidate) is conditional too', async () => {
    const c = clock();
    const { up, gw } = await setup({ cache_ttl: 10, stale_while_revalidate: 60 }, c);
    up.handler = (req, res) => {
      if (req.headers['if-none-match'] === '"e"') {
        res.writeHead(304, { etag: '"e"' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', etag: '"e"' });
      res.end('body');
    };
    await send(`${gw.url}/b`);
    c.advance(20);
    assert.equal(status(await send(`${gw.url}/b`)), 'Hit');
    await eventually(() => gw.cache().stats.notModified === 1);
    assert.equal(up.requests[1]!.headers['if-none-match'], '"e"');
    const r = await send(`${gw.url}/b`);
    assert.equal(r.body, 'body');
    assert.equal(r.headers.age, '0');
  });
});
