import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { TestDnsServer } from '../../test/helpers/dns-server.js';
import { DnsError, HostResolver, LOOKUP_FALLBACK_TTL, type ResolvedHost } from './dns.js';

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ips = (r: ResolvedHost) => r.addresses.map((a) => a.ip);

// One DNS server and resolver for the file: each test uses its own host names.
let server: TestDnsServer;
let resolver: HostResolver;
before(async () => {
  server = await TestDnsServer.start();
  resolver = new HostResolver({ servers: [server.address], timeoutMs: 500, tries: 1 });
});
after(() => server.close());

describe('dns: HostResolver.resolve', () => {
  it('resolves A records with their TTL', async () => {
    server.set('api.test', [{ ip: '10.1.2.3', ttl: 42 }]);
    assert.deepEqual(await resolver.resolve('api.test'), { addresses: [{ ip: '10.1.2.3', family: 4 }], ttl: 42 });
  });

  it('several records -> several addresses (A and AAAA, canonical order), the lowest TTL', async () => {
    server.set('multi.test', [
      { ip: '10.0.0.2', ttl: 60 },
      { ip: '2001:db8::1', ttl: 30 },
      { ip: '10.0.0.1', ttl: 90 },
      { ip: '::ffff:192.0.2.1', ttl: 120 },
    ]);
    const r = await resolver.resolve('MULTI.test');
    assert.deepEqual(r.addresses, [
      { ip: '10.0.0.1', family: 4 },
      { ip: '10.0.0.2', family: 4 },
      { ip: '2001:db8::1', family: 6 },
      { ip: '::ffff:192.0.2.1', family: 6 },
    ]);
    assert.equal(r.ttl, 30);
  });

  it('passes IP literals through without a query', async () => {
    const before = server.queries;
    assert.deepEqual(await resolver.resolve('192.0.2.7'), { addresses: [{ ip: '192.0.2.7', family: 4 }], ttl: Infinity });
    assert.deepEqual(await resolver.resolve('::1'), { addresses: [{ ip: '::1', family: 6 }], ttl: Infinity });
    assert.deepEqual(await resolver.resolve('[2001:db8::5]'), { addresses: [{ ip: '2001:db8::5', family: 6 }], ttl: Infinity });
    assert.equal(server.queries, before);
  });

  it('rejects with the DNS code: ENOTFOUND for an unknown name, ENODATA for a name without records', async () => {
    await assert.rejects(resolver.resolve('nope.test'), (err: unknown) => err instanceof DnsError && err.code === 'ENOTFOUND' && err.hostname === 'nope.test');
    server.set('empty.test', []);
    await assert.rejects(resolver.resolve('empty.test'), (err: unknown) => err instanceof DnsError && err.code === 'ENODATA');
  });

  it('does not fall back to the hosts file when servers are configured', async () => {
    await assert.rejects(resolver.resolve('localhost'), { code: 'ENOTFOUND' });
  });

  it('rejects with ECONNREFUSED or ETIMEOUT when the server is gone', async () => {
    const gone = await TestDnsServer.start();
    const address = gone.address;
    await gone.close();
    const r = new HostResolver({ servers: [address], timeoutMs: 200, tries: 1 });
    await assert.rejects(r.resolve('api.test'), (err: unknown) => err instanceof DnsError && ['ECONNREFUSED', 'ETIMEOUT'].includes(err.code));
  });

  it('resolves "localhost" through the system fallback (hosts file)', async () => {
    const system = new HostResolver({ timeoutMs: 500, tries: 1 });
    const r = await system.resolve('localhost');
    assert.ok(ips(r).some((ip) => ip === '127.0.0.1' || ip === '::1'), JSON.stringify(r));
    // Either DNS answered (real TTL) or the lookup fallback did.
    assert.ok(r.ttl === LOOKUP_FALLBACK_TTL || r.ttl >= 0);
  });

  it('rejects invalid server addresses at construction', () => {
    assert.throws(() => new HostResolver({ servers: ['not an address'] }));
  });
});

describe('dns: HostResolver.watch', () => {
  it('re-resolves after the TTL and calls onChange once per change', async () => {
    server.set('watch.test', [{ ip: '10.0.0.1', ttl: 1 }]);
    const changes: string[][] = [];
    const errors: Error[] = [];
    const stop = resolver.watch('watch.test', (r) => changes.push(ips(r)), (e) => errors.push(e));
    try {
      await waitFor('the first result', () => changes.length === 1);
      assert.deepEqual(changes, [['10.0.0.1']]);
      const queries = server.queries;
      server.set('watch.test', [{ ip: '10.0.0.1', ttl: 1 }, { ip: '10.0.0.2', ttl: 1 }]);
      await waitFor('the change', () => changes.length === 2, 4000);
      assert.deepEqual(changes[1], ['10.0.0.1', '10.0.0.2']);
      // Unchanged answers (in another order) re-query but do not call onChange.
      server.set('watch.test', [{ ip: '10.0.0.2', ttl: 1 }, { ip: '10.0.0.1', ttl: 1 }]);
      const atChange = server.queries;
      await waitFor('two more resolutions', () => server.queries >= atChange + 4, 5000);
      assert.equal(changes.length, 2);
      assert.ok(server.queries > queries);
      assert.deepEqual(errors, []);
    } finally {
      stop();
    }
  });

  it('reports a name that disappears, keeps the previous addresses, and recovers', async () => {
    server.set('gone.test', [{ ip: '10.0.0.9', ttl: 1 }]);
    const changes: string[][] = [];
    const errors: Error[] = [];
    const stop = resolver.watch('gone.test', (r) => changes.push(ips(r)), (e) => errors.push(e), { errorRetry: 0.2 });
    try {
      await waitFor('the first result', () => changes.length === 1);
      server.remove('gone.test');
      await waitFor('two errors', () => errors.length >= 2, 4000);
      assert.equal((errors[0] as DnsError).code, 'ENOTFOUND');
      assert.deepEqual(changes, [['10.0.0.9']], 'no empty list is reported: the previous addresses stay');
      // Back with the same address: nothing changed for the consumer.
      server.set('gone.test', [{ ip: '10.0.0.9', ttl: 1 }]);
      const queries = server.queries;
      await waitFor('the next resolution', () => server.queries >= queries + 4, 2000);
      const errorsAfter = errors.length;
      await sleep(500);
      assert.equal(errors.length, errorsAfter, 'resolving again: no more errors');
      assert.deepEqual(changes, [['10.0.0.9']]);
      server.set('gone.test', [{ ip: '10.0.0.10', ttl: 1 }]);
      await waitFor('the new address', () => changes.length === 2, 4000);
      assert.deepEqual(changes[1], ['10.0.0.10']);
    } finally {
      stop();
    }
  });

  it('stop() stops querying', async () => {
    server.set('stop.test', [{ ip: '10.0.0.3', ttl: 1 }]);
    let changes = 0;
    const stop = resolver.watch('stop.test', () => changes++, () => undefined);
    await waitFor('the first result', () => changes === 1);
    stop();
    const queries = server.queries;
    await sleep(1500);
    assert.equal(server.queries, queries);
  });

  it('stop() before the first answer: no callback', async () => {
    server.set('early.test', [{ ip: '10.0.0.4', ttl: 1 }]);
    let calls = 0;
    const stop = resolver.watch('early.test', () => calls++, () => calls++);
    stop();
    await sleep(200);
    assert.equal(calls, 0);
  });

  it('an IP literal is reported once, without timers or queries', async () => {
    const queries = server.queries;
    const seen: ResolvedHost[] = [];
    const stop = resolver.watch('10.9.8.7', (r) => seen.push(r), () => undefined);
    await waitFor('the result', () => seen.length === 1);
    stop();
    assert.deepEqual(ips(seen[0]!), ['10.9.8.7']);
    assert.equal(server.queries, queries);
  });

  it('passes an exception of onChange to onError', async () => {
    server.set('throws.test', [{ ip: '10.0.0.5', ttl: 60 }]);
    const errors: Error[] = [];
    const stop = resolver.watch('throws.test', () => {
      throw new Error('boom');
    }, (e) => errors.push(e));
    try {
      await waitFor('the error', () => errors.length === 1);
      assert.equal(errors[0]!.message, 'boom');
    } finally {
      stop();
    }
  });
});
