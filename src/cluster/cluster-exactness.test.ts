// Exactness across processes: real CLI nodes with two workers each, concurrent requests.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { send, startUpstream, type Upstream } from '../../test/helpers/harness.js';
import { freePort } from '../../test/helpers/redis-server.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'bin/gatehouse.js');
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-limits-'));
const children: ChildProcess[] = [];
const upstreams: Upstream[] = [];

after(async () => {
  await Promise.all(children.map((c) => stopNode(c)));
  for (const u of upstreams) await u.close();
  rmSync(dir, { recursive: true, force: true });
});

async function stopNode(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Starts `gatehouse start --workers 2` and waits until it says it started. */
async function startNode(config: string): Promise<{ url: string; child: ChildProcess }> {
  const file = join(dir, `${randomUUID()}.yaml`);
  writeFileSync(file, config);
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, 'start', '--config', file, '--workers', '2', '--admin-listen', 'off', '--proxy-listen', `127.0.0.1:${port}`], {
    env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const deadline = Date.now() + 20_000;
  // Ready when both workers answer (the primary logs at warn level only on trouble, so poll the port).
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node exited early (${child.exitCode}): ${out}`);
    if (Date.now() > deadline) throw new Error(`node not ready: ${out}`);
    try {
      if ((await send(`http://127.0.0.1:${port}/__ready`)).status === 404) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `http://127.0.0.1:${port}`, child };
}

/** A fixed one-minute window must not roll over mid-test: start early in a minute. */
async function awayFromMinuteEdge(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 40_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 200));
}

function config(upstreamUrl: string, route: string, plugin: Record<string, unknown>): string {
  return [
    '_format_version: "3.0"',
    '_gatehouse: { access_log: false }',
    'services:',
    `- name: s`,
    `  url: ${upstreamUrl}`,
    '  routes:',
    `  - name: ${route}`,
    '    paths: [/limited]',
    '    plugins:',
    '    - name: rate-limiting',
    `      config: ${JSON.stringify(plugin)}`,
    '',
  ].join('\n');
}

async function burst(urls: string[], n: number): Promise<{ ok: number; limited: number; other: number[] }> {
  const results = await Promise.all(Array.from({ length: n }, (_, i) => send(`${urls[i % urls.length]}/limited`).then((r) => r.status)));
  return { ok: results.filter((s) => s === 200).length, limited: results.filter((s) => s === 429).length, other: results.filter((s) => s !== 200 && s !== 429) };
}

test('redis policy: 300 concurrent requests through two nodes (2 workers each) sharing one Redis let exactly 100 through', async () => {
  const up = await startUpstream();
  upstreams.push(up);
  // A unique route name gives a unique plugin id, so counters from earlier runs never collide.
  const yaml = config(up.url, `exact-${randomUUID().slice(0, 8)}`, { minute: 100, limit_by: 'service', policy: 'redis', redis: { host: '127.0.0.1', port: 6379, timeout: 2000 } });
  const [a, b] = await Promise.all([startNode(yaml), startNode(yaml)]);
  await awayFromMinuteEdge();
  const r = await burst([a.url, b.url], 300);
  assert.deepEqual(r.other, []);
  assert.equal(r.ok, 100);
  assert.equal(r.limited, 200);
  assert.equal(up.requests.length, 100, 'only the allowed requests reached the upstream');
  await Promise.all([stopNode(a.child), stopNode(b.child)]);
});

test('local policy: exact across the workers of one node (counters in the primary)', async () => {
  const up = await startUpstream();
  upstreams.push(up);
  const node = await startNode(config(up.url, 'local-exact', { minute: 100, limit_by: 'service', policy: 'local' }));
  await awayFromMinuteEdge();
  const r = await burst([node.url], 300);
  assert.deepEqual(r.other, []);
  assert.equal(r.ok, 100);
  assert.equal(r.limited, 200);
  await stopNode(node.child);
});
