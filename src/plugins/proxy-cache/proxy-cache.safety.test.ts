import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { send } from '../../../test/helpers/harness.js';
import { cached, countingHandler, startCacheGateway, startSwitchableUpstream, type CacheGateway, type SwitchableUpstream } from './test-support.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(config: Record<string, unknown> = {}, document?: (url: string) => object): Promise<{ up: SwitchableUpstream; gw: CacheGateway }> {
  const up = await startSwitchableUpstream();
  cleanup.push(up.close);
  const gw = await startCacheGateway(document ? document(up.url) : cached(up.url, config));
  cleanup.push(gw.close);
  return { up, gw };
}

const status = (r: { headers: Record<string, unknown> }) => r.headers['x-cache-status'];
const served = (r: { body: string }) => JSON.parse(r.body) as { n: number; url: string; headers: Record<string, string> };

describe('proxy-cache safety: what is never stored by default', () => {
  it('responses with Set-Cookie', async () => {
    const { up, gw } = await setup();
    up.handler = countingHandler({ 'set-cookie': 'session=secret' });
    const first = await send(`${gw.url}/me`);
    assert.equal(status(first), 'Bypass');
    const second = await send(`${gw.url}/me`);
    assert.equal(status(second), 'Bypass');
    assert.equal(served(second).n, 2);
    assert.equal(gw.cache().stats.stored, 0);
  });

  it('Cache-Control private and no-store, even with cache_control off', async () => {
    const { up, gw } = await setup();
    for (const cc of ['private, max-age=60', 'no-store', 'no-cache']) {
      up.handler = countingHandler({ 'cache-control': cc });
      await send(`${gw.url}/${cc.split(',')[0]}`);
      assert.equal(status(await send(`${gw.url}/${cc.split(',')[0]}`)), 'Bypass', cc);
    }
    assert.equal(gw.cache().stats.stored, 0);
  });

  it('partial content: a Range request never stores its 206, and a 206 is never stored', async () => {
    const { up, gw } = await setup();
    up.handler = (req, res) => {
      const text = 'partial';
      res.writeHead(206, { 'content-type': 'text/plain', 'content-range': `bytes 0-6/100`, 'content-length': text.length });
      res.end(text);
    };
    const ranged = await send(`${gw.url}/file`, { headers: { range: 'bytes=0-6' } });
    assert.equal(ranged.status, 206);
    assert.equal(status(ranged), 'Bypass');
    const plain = await send(`${gw.url}/file`);
    assert.equal(status(plain), 'Bypass', 'an upstream answering 206 to a plain GET is not stored either');
    up.handler = countingHandler();
    assert.equal(status(await send(`${gw.url}/file`)), 'Miss');
    const rangedHit = await send(`${gw.url}/file`, { headers: { range: 'bytes=0-6' } });
    assert.equal(rangedHit.status, 200, 'a Range request may be answered with the whole stored response');
    assert.equal(status(rangedHit), 'Hit');
  });

  it('error responses (5xx)', async () => {
    const { up, gw } = await setup();
    up.handler = countingHandler({}, 502);
    await send(`${gw.url}/x`);
    const again = await send(`${gw.url}/x`);
    assert.equal(again.status, 502);
    assert.equal(status(again), 'Bypass');
    assert.equal(up.hits, 2);
  });

  it('requests with Authorization, and requests of an authenticated consumer', async () => {
    const { up, gw } = await setup({}, (url) => ({
      _format_version: '3.0',
      consumers: [{ username: 'alice', keyauth_credentials: [{ key: 'alice-key' }] }],
      services: [{ name: 's', url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'key-auth' }, { name: 'proxy-cache', config: { strategy: 'memory' } }] }] }],
    }));
    for (let i = 0; i < 2; i++) assert.equal(status(await send(`${gw.url}/a`, { headers: { apikey: 'alice-key' } })), 'Bypass');
    for (let i = 0; i < 2; i++) assert.equal(status(await send(`${gw.url}/a`, { headers: { apikey: 'alice-key', authorization: 'Basic eA==' } })), 'Bypass');
    assert.equal(up.hits, 4);
    assert.equal(gw.cache().stats.stored, 0);
  });

  it('cache_authenticated: the consumer is part of the key, so consumers never share an entry', async () => {
    const { up, gw } = await setup({}, (url) => ({
      _format_version: '3.0',
      consumers: [
        { username: 'alice', keyauth_credentials: [{ key: 'alice-key' }] },
        { username: 'bob', keyauth_credentials: [{ key: 'bob-key' }] },
      ],
      services: [{ name: 's', url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'key-auth' }, { name: 'proxy-cache', config: { strategy: 'memory', cache_authenticated: true } }] }] }],
    }));
    const alice = await send(`${gw.url}/me`, { headers: { apikey: 'alice-key' } });
    assert.equal(status(alice), 'Miss');
    const aliceAgain = await send(`${gw.url}/me`, { headers: { apikey: 'alice-key' } });
    assert.equal(status(aliceAgain), 'Hit');
    assert.equal(served(aliceAgain).headers['x-consumer-username'], 'alice');
    const bob = await send(`${gw.url}/me`, { headers: { apikey: 'bob-key' } });
    assert.equal(status(bob), 'Miss');
    assert.equal(served(bob).headers['x-consumer-username'], 'bob');
    assert.notEqual(bob.headers['x-cache-key'], alice.headers['x-cache-key']);
    assert.equal(up.hits, 2);
  });

  it('cache_authenticated without a consumer: the Authorization header is part of the key', async () => {
    const { up, gw } = await setup({ cache_authenticated: true });
    await send(`${gw.url}/me`, { headers: { authorization: 'Bearer token-a' } });
    assert.equal(status(await send(`${gw.url}/me`, { headers: { authorization: 'Bearer token-a' } })), 'Hit');
    assert.equal(status(await send(`${gw.url}/me`, { headers: { authorization: 'Bearer token-b' } })), 'Miss');
    assert.equal(status(await send(`${gw.url}/me`)), 'Miss');
    assert.equal(up.hits, 3);
  });
});

describe('proxy-cache safety: the key', () => {
  it('sorted, decoded query parameters: /a?x=1&y=2 and /a?y=2&x=1 share an entry', async () => {
    const { up, gw } = await setup();
    const first = await send(`${gw.url}/a?x=1&y=2`);
    const second = await send(`${gw.url}/a?y=2&x=1`);
    assert.equal(status(second), 'Hit');
    assert.equal(second.headers['x-cache-key'], first.headers['x-cache-key']);
    assert.equal(status(await send(`${gw.url}/a?x=%31&y=2`)), 'Hit', 'percent-encoding does not make a new key');
    assert.equal(up.hits, 1);
  });

  it('/a and /a/..%2fb are never confused (the normalised path, not a decoded one)', async () => {
    const { up, gw } = await setup();
    const a = await send(`${gw.url}/a`);
    const b = await send(`${gw.url}/a/..%2fb`);
    assert.equal(status(b), 'Miss');
    assert.notEqual(b.headers['x-cache-key'], a.headers['x-cache-key']);
    assert.equal(served(b).url, '/a/..%2Fb');
    assert.equal(served(await send(`${gw.url}/a`)).url, '/a');
    const dots = await send(`${gw.url}/x/../a`);
    assert.equal(status(dots), 'Hit', 'dot segments are removed before keying: /x/../a is /a');
    assert.equal(up.hits, 2);
  });

  it('an encoded separator cannot pose as a real one', async () => {
    const { gw } = await setup();
    const real = await send(`${gw.url}/a?a=1&b=2`);
    const encoded = await send(`${gw.url}/a?a=1%26b%3D2`);
    assert.equal(status(encoded), 'Miss');
    assert.notEqual(encoded.headers['x-cache-key'], real.headers['x-cache-key']);
    assert.equal(status(await send(`${gw.url}/a?a=1:b=2`)), 'Miss');
  });

  it('unkeyed headers (X-Forwarded-Host, X-Original-URL, Forwarded) cannot change a cached response', async () => {
    const { up, gw } = await setup();
    const poisoned = await send(`${gw.url}/page`, {
      headers: { 'x-forwarded-host': 'evil.example', 'x-original-url': '/admin', 'x-rewrite-url': '/admin', forwarded: 'host=evil.example', 'x-http-method-override': 'DELETE' },
    });
    assert.equal(status(poisoned), 'Miss');
    const seen = up.requests[0]!.headers;
    assert.equal(seen['x-forwarded-host'], '127.0.0.1', 'the gateway sets X-Forwarded-Host itself for untrusted clients');
    assert.equal(seen['x-original-url'], undefined);
    assert.equal(seen['x-rewrite-url'], undefined);
    assert.equal(seen.forwarded, undefined);
    assert.equal(seen['x-http-method-override'], undefined);
    const victim = await send(`${gw.url}/page`);
    assert.equal(status(victim), 'Hit');
    assert.doesNotMatch(victim.body, /evil|admin|DELETE/);
  });

  it('the Host the client used is part of the key (a response that embeds it cannot leak to another host)', async () => {
    const { up, gw } = await setup();
    await send(`${gw.url}/page`, { headers: { host: 'a.example' } });
    const other = await send(`${gw.url}/page`, { headers: { host: 'b.example' } });
    assert.equal(status(other), 'Miss');
    assert.equal(served(other).headers['x-forwarded-host'], 'b.example');
    assert.equal(status(await send(`${gw.url}/page`, { headers: { host: 'a.example' } })), 'Hit');
    assert.equal(up.hits, 2);
  });

  it('headers named in vary_headers are keyed, so they are forwarded', async () => {
    const { up, gw } = await setup({ vary_headers: ['X-Original-URL'] });
    await send(`${gw.url}/page`, { headers: { 'x-original-url': '/one' } });
    assert.equal(up.requests[0]!.headers['x-original-url'], '/one');
    assert.equal(status(await send(`${gw.url}/page`, { headers: { 'x-original-url': '/two' } })), 'Miss');
  });
});

describe("proxy-cache safety: the upstream's Vary and failures", () => {
  it('Vary is honoured: each variant is stored and served to matching requests only', async () => {
    const { up, gw } = await setup();
    up.handler = (req, res) => {
      const text = JSON.stringify({ lang: req.headers['accept-language'] ?? 'none', n: up.hits });
      res.writeHead(200, { 'content-type': 'application/json', vary: 'Accept-Language', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const en = { 'accept-language': 'en' };
    const fr = { 'accept-language': 'fr' };
    assert.equal(status(await send(`${gw.url}/v`, { headers: en })), 'Miss');
    assert.equal(status(await send(`${gw.url}/v`, { headers: fr })), 'Miss');
    const enHit = await send(`${gw.url}/v`, { headers: en });
    const frHit = await send(`${gw.url}/v`, { headers: fr });
    assert.equal(status(enHit), 'Hit');
    assert.equal(JSON.parse(enHit.body).lang, 'en');
    assert.equal(status(frHit), 'Hit');
    assert.equal(JSON.parse(frHit.body).lang, 'fr');
    assert.equal(enHit.headers['x-cache-key'], frHit.headers['x-cache-key'], 'X-Cache-Key names the primary key');
    const none = await send(`${gw.url}/v`);
    assert.equal(status(none), 'Miss');
    assert.equal(JSON.parse(none.body).lang, 'none');
    assert.equal(up.hits, 3);
  });

  it('coalesced requests only take the leader\'s response when their Vary headers match', async () => {
    const { up, gw } = await setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    up.handler = (req, res) => {
      void gate.then(() => {
        const text = JSON.stringify({ lang: req.headers['accept-language'] });
        res.writeHead(200, { 'content-type': 'application/json', vary: 'accept-language', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      });
    };
    const first = send(`${gw.url}/v`, { headers: { 'accept-language': 'en' } });
    while (up.hits < 1) await new Promise((r) => setTimeout(r, 5));
    const others = [send(`${gw.url}/v`, { headers: { 'accept-language': 'en' } }), send(`${gw.url}/v`, { headers: { 'accept-language': 'de' } })];
    while (gw.cache().stats.coalesced < 2) await new Promise((r) => setTimeout(r, 5));
    release();
    const [, sameLang, otherLang] = await Promise.all([first, ...others]);
    assert.equal(JSON.parse(sameLang!.body).lang, 'en');
    assert.equal(status(sameLang!), 'Hit');
    assert.equal(JSON.parse(otherLang!.body).lang, 'de');
    assert.equal(up.hits, 2);
  });

  it('Vary: * is never stored', async () => {
    const { up, gw } = await setup();
    up.handler = countingHandler({ vary: '*' });
    await send(`${gw.url}/v`);
    assert.equal(status(await send(`${gw.url}/v`)), 'Bypass');
  });

  it('an upstream failing mid-body leaves nothing in the cache', async () => {
    const { up, gw } = await setup();
    up.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 20);
    };
    const broken = await send(`${gw.url}/flaky`).catch((err: Error) => err);
    if (!(broken instanceof Error)) assert.notEqual(broken.status, 200);
    assert.equal(gw.cache().stats.stored, 0);
    up.handler = countingHandler();
    const next = await send(`${gw.url}/flaky`);
    assert.equal(status(next), 'Miss');
    assert.equal(next.status, 200);
    assert.equal(gw.cache().inFlight, 0);
  });

  it('bodies above max_body_size are passed through and not stored', async () => {
    const { up, gw } = await setup({ memory: { max_body_size: 100 } });
    up.handler = (_req, res) => {
      const text = JSON.stringify({ big: 'x'.repeat(200) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(text);
    };
    const first = await send(`${gw.url}/big`);
    assert.equal(first.status, 200);
    assert.equal(JSON.parse(first.body).big.length, 200);
    assert.equal(status(first), 'Bypass');
    assert.equal(status(await send(`${gw.url}/big`)), 'Bypass');
  });
});
