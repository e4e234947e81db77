import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLimitStore } from './limit-algorithms.js';
import { answerLimits, IpcLimitClient, isLimitsRequest, type LimitsRequestMessage } from './local-counters.js';
import { ioredisOptions, connectionKey } from './redis.js';
import type { LimitRequest } from './limit-types.js';

const req = (now: number): LimitRequest => ({ key: 'k', algorithm: 'fixed-window', windows: [{ period: 'minute', limit: 2, capacity: 2 }], now });

describe('node-local counters over IPC', () => {
  it('batches one event-loop turn into one message and resolves each request from the reply', async () => {
    const store = new MemoryLimitStore();
    const sent: LimitsRequestMessage[] = [];
    const client: IpcLimitClient = new IpcLimitClient((m) => {
      sent.push(m);
      // The primary's side, through a JSON round trip like node:cluster's IPC.
      const wire = JSON.parse(JSON.stringify(m));
      assert.ok(isLimitsRequest(wire));
      setImmediate(() => client.receive(JSON.parse(JSON.stringify(answerLimits(store, wire)))));
    });
    const now = Date.UTC(2025, 0, 1);
    const results = await Promise.all([client.consume(req(now)), client.consume(req(now)), client.consume(req(now))]);
    assert.equal(sent.length, 1, 'one message for the three requests');
    assert.deepEqual(results.map((r) => r.blocked), [0, 0, 1]);
    assert.deepEqual(results.map((r) => r.values[0]), [1, 2, 2]);
    store.close();
  });

  it('a primary that does not answer fails the requests after the timeout; replies for others are ignored', async () => {
    const client = new IpcLimitClient(() => undefined, 50);
    // The client's timer does not hold the process open (a worker's server does); this test's must.
    const alive = setTimeout(() => undefined, 5000);
    await assert.rejects(client.consume(req(0)), /did not answer within 50 ms/);
    clearTimeout(alive);
    assert.equal(client.receive({ type: 'apply', id: 1 }), false);
    client.close();
    await assert.rejects(client.consume(req(0)), /closed/);
  });
});

describe('redis connection options', () => {
  it('single server, TLS, Sentinel and Cluster map to ioredis options without an offline queue', () => {
    const single = ioredisOptions({ host: 'r1', port: 6380, database: 2, password: 'pw', ssl: true, ssl_verify: true, server_name: 'r.example' });
    assert.equal(single.kind, 'single');
    assert.equal(single.options.host, 'r1');
    assert.equal(single.options.port, 6380);
    assert.equal(single.options.db, 2);
    assert.equal(single.options.enableOfflineQueue, false);
    assert.deepEqual(single.options.tls, { rejectUnauthorized: true, servername: 'r.example' });
    const sentinel = ioredisOptions({ sentinel_master: 'mymaster', sentinel_nodes: [{ host: 's1', port: 26379 }], sentinel_password: 'sp', password: 'pw' });
    assert.equal(sentinel.kind, 'sentinel');
    assert.equal(sentinel.options.name, 'mymaster');
    assert.deepEqual(sentinel.options.sentinels, [{ host: 's1', port: 26379 }]);
    assert.equal(sentinel.options.sentinelPassword, 'sp');
    assert.equal(sentinel.options.role, 'master');
    const cluster = ioredisOptions({ cluster_nodes: [{ ip: '10.0.0.1', port: 7000 }, { ip: '10.0.0.2', port: 7001 }], password: 'pw' });
    assert.equal(cluster.kind, 'cluster');
    if (cluster.kind !== 'cluster') return;
    assert.deepEqual(cluster.nodes, [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }]);
    assert.equal(cluster.options.enableOfflineQueue, false);
    assert.equal(cluster.options.redisOptions?.password, 'pw');
  });

  it('equal configs share a key whatever the field order or undefined fields', () => {
    assert.equal(connectionKey({ host: 'a', port: 1, password: undefined }), connectionKey({ port: 1, host: 'a' }));
    assert.notEqual(connectionKey({ host: 'a', port: 1 }), connectionKey({ host: 'a', port: 1, database: 1 }));
  });
});
