import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { startUpstream, type Upstream } from './helpers/harness.js';
import { request } from './helpers/node.js';
import { gatehouseProcesses } from './helpers/processes.js';
import { TestRedisServer } from './helpers/redis-server.js';

// Several real gateway processes sharing the real Redis at 127.0.0.1:6379 (a key prefix of their
// own per test, deleted afterwards), and one test against a throwaway redis-server that is stopped
// and started again.

const REDIS = 'redis://127.0.0.1:6379';
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-cluster-'));
const upstreams: Upstream[] = [];
const prefixes: string[] = [];
const servers: TestRedisServer[] = [];

after(async () => {
  for (const u of upstreams) await u.close();
  for (const s of servers) await s.stop();
  const redis = new Redis(REDIS, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    for (const prefix of prefixes) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
    }
  } finally {
    redis.disconnect();
  }
});

function prefix(): string {
  const p = `gatehouse-test:${randomUUID()}:`;
  prefixes.push(p);
  return p;
}

interface Node {
  child: ChildProcess;
  proxy: string;
  admin: string;
  file: string;
  output: () => string;
  exited: Promise<number | null>;
}

const yaml = (name: string, url: string, path: string) =>
  `_format_version: "3.0"\n_gatehouse: { access_log: false }\nservices:\n- name: ${name}\n  url: ${url}\n  routes:\n  - name: ${name}\n    paths: [${path}]\n`;

const launch = gatehouseProcesses();
async function startNode(file: string, redisUrl: string, clusterPrefix: string, extra: string[] = []): Promise<Node> {
  const p = await launch(file, ['--cluster-redis', redisUrl, '--cluster-prefix', clusterPrefix, ...extra], { GATEHOUSE_CLUSTER_HEARTBEAT_MS: '200' });
  return { ...p, file };
}

async function stop(n: Node): Promise<void> {
  n.child.kill('SIGTERM');
  assert.equal(await n.exited, 0);
}

function call(n: Node, method: string, path: string, body?: unknown) {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return request(`${n.admin}${path}`, { method, body: text, headers: text ? { 'content-type': 'application/json' } : {} });
}

/** Waits until `check` holds; returns how long it took. */
async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<number> {
  const t0 = Date.now();
  while (!(await check().catch(() => false))) {
    if (Date.now() - t0 > timeoutMs) assert.fail(`${what} (after ${timeoutMs} ms)`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

async function upstream(name: string): Promise<Upstream> {
  const up = await startUpstream((req, res) => res.end(`${name} ${req.url}`));
  upstreams.push(up);
  return up;
}

test('cluster: Redis is seeded from the first node, later nodes take its config, changes converge everywhere', { timeout: 180_000 }, async (t) => {
  const p = prefix();
  const up = await upstream('up');
  const fileA = join(dir, 'a.yaml');
  const fileB = join(dir, 'b.yaml');
  writeFileSync(fileA, yaml('from-a', up.url, '/a'));
  writeFileSync(fileB, yaml('from-b', up.url, '/b'));
  const a = await startNode(fileA, REDIS, p);
  const b = await startNode(fileB, REDIS, p, ['--workers', '2']);
  assert.equal((await request(`${b.proxy}/a/1`)).text, 'up /1', 'the second node serves the cluster config, not its file');
  assert.equal((await request(`${b.proxy}/b/1`)).status, 404);

  const created = await call(a, 'POST', '/services/from-a/routes', { name: 'new', paths: ['/new'] });
  assert.equal(created.status, 201, created.text);
  const ms = await until(async () => (await request(`${b.proxy}/new/x`)).status === 200, 'node b did not converge');
  t.diagnostic(`node b served the change ${ms} ms after node a answered`);
  assert.ok(ms < 3000, `converged in ${ms} ms`);
  // And the other way round, through the node with two workers.
  assert.equal((await call(b, 'PATCH', '/routes/new', { paths: ['/newer'] })).status, 200);
  await until(async () => (await request(`${a.proxy}/newer/x`)).status === 200, 'node a did not converge');
  for (let i = 0; i < 4; i++) assert.equal((await request(`${b.proxy}/newer/x`)).status, 200, 'every worker of b');

  // An invalid change is refused on the node that got it and reaches no one.
  assert.equal((await call(b, 'POST', '/routes', { name: 'bad', paths: ['nope'] })).status, 400);

  await until(async () => {
    const nodes = (await call(a, 'GET', '/cluster/nodes')).body.data as { config_version: number; status: string }[];
    return nodes.length === 2 && nodes.every((n) => n.status === 'alive' && n.config_version === nodes[0]!.config_version);
  }, 'both nodes listed with the same version');
  const nodes = (await call(b, 'GET', '/cluster/nodes')).body.data;
  for (const n of nodes) {
    assert.match(n.id, /^[0-9a-f-]{36}$/);
    assert.match(n.proxy, /^127\.0\.0\.1:\d+$/);
    assert.equal(typeof n.last_seen, 'number');
    assert.ok(n.last_seen_ms_ago < 5000);
  }
  assert.equal(nodes.filter((n: { this_node: boolean }) => n.this_node).length, 1);
  const status = (await call(a, 'GET', '/status')).body;
  assert.equal(status.cluster.redis, 'connected');
  assert.equal((await call(a, 'GET', '/')).body.configuration.database, 'redis');
  // The file is kept as a copy of the cluster config (a restart without Redis starts from it).
  await until(async () => readFileSync(fileB, 'utf8').includes('/newer'), 'node b backed the config up to its file');
  await stop(a);
  await stop(b);
});

test('cluster: concurrent writes on two nodes lose nothing (version check and retry)', { timeout: 180_000 }, async () => {
  const p = prefix();
  const up = await upstream('up');
  const file = join(dir, 'c.yaml');
  writeFileSync(file, yaml('svc', up.url, '/svc'));
  const a = await startNode(file, REDIS, p);
  const b = await startNode(file, REDIS, p);
  const writes = [];
  for (let i = 0; i < 15; i++) {
    writes.push(call(a, 'POST', '/consumers', { username: `a${i}` }));
    writes.push(call(b, 'POST', '/consumers', { username: `b${i}` }));
  }
  const results = await Promise.all(writes);
  assert.deepEqual(
    results.map((r) => r.status),
    results.map(() => 201),
  );
  for (const n of [a, b]) {
    await until(async () => (await call(n, 'GET', '/consumers')).body.data.length === 30, 'every consumer on every node');
  }
  const va = (await call(a, 'GET', '/status')).body.configuration_version;
  await until(async () => (await call(b, 'GET', '/status')).body.configuration_version === va, 'same version');
  assert.ok(va >= 31, `one version per change (${va})`);
  await stop(a);
  await stop(b);
});

test('cluster: a node restarted while another changes the config catches up from Redis', { timeout: 180_000 }, async () => {
  const p = prefix();
  const up = await upstream('up');
  const fileA = join(dir, 'ra.yaml');
  const fileB = join(dir, 'rb.yaml');
  writeFileSync(fileA, yaml('svc', up.url, '/v1'));
  writeFileSync(fileB, yaml('svc', up.url, '/v1'));
  const a = await startNode(fileA, REDIS, p);
  let b = await startNode(fileB, REDIS, p, ['--no-write-back']);
  await stop(b);
  for (let i = 2; i <= 4; i++) assert.equal((await call(a, 'PATCH', '/routes/svc', { paths: [`/v${i}`] })).status, 200);
  b = await startNode(fileB, REDIS, p, ['--no-write-back']);
  assert.equal((await request(`${b.proxy}/v4/x`)).status, 200, 'the restarted node serves the newest config');
  assert.equal((await request(`${b.proxy}/v1/x`)).status, 404);
  assert.match(readFileSync(fileB, 'utf8'), /\/v1/, '--no-write-back leaves the file alone');
  await stop(a);
  await stop(b);
});

test('cluster: while Redis is down nodes keep serving and refuse writes; when it is back (empty) it is re-seeded and they converge', { timeout: 180_000 }, async () => {
  const redis = await TestRedisServer.start();
  servers.push(redis);
  const url = `redis://127.0.0.1:${redis.port}`;
  const p = prefix();
  const up = await upstream('up');
  const fileA = join(dir, 'da.yaml');
  writeFileSync(fileA, yaml('svc', up.url, '/one'));
  const a = await startNode(fileA, url, p);
  assert.equal((await call(a, 'POST', '/services/svc/routes', { name: 'two', paths: ['/two'] })).status, 201);

  await redis.stop();
  await until(async () => (await call(a, 'GET', '/status')).body.cluster.redis === 'unreachable', 'node a noticed');
  assert.equal((await request(`${a.proxy}/two/x`)).status, 200, 'the last good config keeps serving');
  const refused = await call(a, 'POST', '/services/svc/routes', { name: 'three', paths: ['/three'] });
  assert.equal(refused.status, 503, refused.text);
  assert.equal((await call(a, 'GET', '/routes/three')).status, 404, 'nothing was applied');
  // A node started now starts from its file.
  const fileB = join(dir, 'db.yaml');
  writeFileSync(fileB, yaml('svc', up.url, '/from-file-b'));
  const b = await startNode(fileB, url, p, ['--no-write-back']);
  assert.equal((await request(`${b.proxy}/from-file-b/x`)).status, 200);

  await redis.restart();
  // The restarted server is empty: whichever node reconnects first seeds it; both converge on it.
  await until(async () => {
    const [x, y] = await Promise.all([call(a, 'GET', '/config'), call(b, 'GET', '/config')]);
    return JSON.stringify(x.body.config) === JSON.stringify(y.body.config);
  }, 'the nodes converged after Redis came back', 20_000);
  const after = await call(b, 'POST', '/consumers', { username: 'late' });
  assert.equal(after.status, 201, after.text);
  await until(async () => (await call(a, 'GET', '/consumers/late')).status === 200, 'writes work again and reach every node');
  await stop(a);
  await stop(b);
});
