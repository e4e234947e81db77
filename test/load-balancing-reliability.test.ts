// Reliability of balanced upstreams against real target processes that die, come back or hang.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, managedServers } from './helpers/harness.js';

const SERVER = fileURLToPath(new URL('../../test/fixtures/target-server.mjs', import.meta.url));
const { gateway: startGateway } = managedServers();
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** Starts a target process and waits until it listens. */
async function target(name: string, port: number, mode = ''): Promise<ChildProcess> {
  const child = spawn(process.execPath, [SERVER, name, String(port), mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`target ${name} exited (${code})`)));
  });
  return child;
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
after(() => agent.destroy());

function get(url: string): Promise<{ status: number; target: string | undefined }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        let t: string | undefined;
        try {
          t = (JSON.parse(body) as { target?: string }).target;
        } catch {
          t = undefined;
        }
        resolve({ status: res.statusCode ?? 0, target: t });
      });
      res.on('error', () => resolve({ status: -1, target: undefined }));
    });
    req.on('error', () => resolve({ status: -1, target: undefined }));
  });
}

function config(ports: number[], upstream: Record<string, unknown>, service: Record<string, unknown> = {}) {
  return {
    _format_version: '3.0',
    _gatehouse: { access_log: false },
    upstreams: [{ name: 'pool.internal', ...upstream, targets: ports.map((p) => ({ target: `127.0.0.1:${p}` })) }],
    services: [{ name: 'svc', host: 'pool.internal', ...service, routes: [{ name: 'r', paths: ['/'] }] }],
  };
}

test('one of three targets is killed under load: no client sees an error, and the active check brings it back after a restart', async () => {
  const ports = [await freePort(), await freePort(), await freePort()];
  const procs = [await target('t0', ports[0]!), await target('t1', ports[1]!), await target('t2', ports[2]!)];
  const gw = await startGateway(
    config(ports, {
      healthchecks: {
        active: { type: 'tcp', healthy: { interval: 0.2, successes: 2 }, unhealthy: { interval: 0.2, tcp_failures: 2 } },
        passive: { unhealthy: { tcp_failures: 2, timeouts: 2 } },
      },
    }),
  );
  const url = `${gw.url}/work`;
  const seen: { status: number; target: string | undefined; at: number }[] = [];
  let running = true;
  const load = Promise.all(
    Array.from({ length: 8 }, async () => {
      while (running) {
        const r = await get(url);
        seen.push({ ...r, at: Date.now() });
      }
    }),
  );
  await new Promise((r) => setTimeout(r, 500));
  const killedAt = Date.now();
  await kill(procs[1]!);
  await new Promise((r) => setTimeout(r, 1000));
  procs[1] = await target('t1', ports[1]!);
  const restartedAt = Date.now();
  // Wait until the restarted target serves again (active checks: 2 successes at 0.2 s).
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && !seen.some((s) => s.target === 't1' && s.at > restartedAt)) await new Promise((r) => setTimeout(r, 100));
  running = false;
  await load;

  const errors = seen.filter((s) => s.status !== 200);
  assert.equal(errors.length, 0, `client errors: ${JSON.stringify(errors.slice(0, 5))}`);
  assert.ok(seen.length > 200, `requests served: ${seen.length}`);
  const whileDown = seen.filter((s) => s.at > killedAt + 200 && s.at < restartedAt);
  assert.ok(whileDown.length > 20 && whileDown.every((s) => s.target !== 't1'), 'no traffic to the dead target');
  assert.ok(
    seen.some((s) => s.target === 't1' && s.at > restartedAt),
    'the restarted target gets traffic again',
  );
  const marks = gw.logs.filter((l) => JSON.stringify(l).includes(`127.0.0.1:${ports[1]}`) && /healthy/i.test(String(l.msg)));
  assert.ok(marks.length >= 2, 'went unhealthy, then healthy again (logged)');
});

test('a target that accepts but never answers: timeouts trip it; clients get 504 for at most the threshold count', async () => {
  const ports = [await freePort(), await freePort()];
  await target('good', ports[0]!);
  await target('hang', ports[1]!, 'hang');
  const gw = await startGateway(config(ports, { healthchecks: { passive: { unhealthy: { timeouts: 2 } } } }, { retries: 0, read_timeout: 300 }));
  const statuses: number[] = [];
  for (let i = 0; i < 12; i++) statuses.push((await get(`${gw.url}/`)).status);
  const timeouts = statuses.filter((s) => s === 504).length;
  assert.equal(timeouts, 2, `statuses: ${statuses.join(',')}`);
  assert.ok(statuses.slice(4).every((s) => s === 200), `statuses: ${statuses.join(',')}`);
});

test('--workers 2: a target set unhealthy through the admin API is avoided by every worker', async () => {
  const { gatehouseProcesses } = await import('./helpers/processes.js');
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const ports = [await freePort(), await freePort()];
  await target('w0', ports[0]!);
  await target('w1', ports[1]!);
  const file = join(mkdtempSync(join(tmpdir(), 'gatehouse-lb-')), 'gatehouse.json');
  writeFileSync(file, JSON.stringify(config(ports, {})));
  const node = await gatehouseProcesses()(file, ['--workers', '2']);
  const put = await fetch(`${node.admin}/upstreams/pool.internal/targets/127.0.0.1:${ports[0]}/unhealthy`, { method: 'PUT' });
  assert.equal(put.status, 204);
  const served = new Set<string | undefined>();
  // Fresh connections, so both workers take some of them.
  for (let i = 0; i < 40; i++) {
    const r = await new Promise<string | undefined>((resolve, reject) => {
      http.get(`${node.proxy}/`, { agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c));
        res.on('end', () => resolve((JSON.parse(body) as { target: string }).target));
      }).on('error', reject);
    });
    served.add(r);
  }
  assert.deepEqual([...served], ['w1']);
  const health = (await (await fetch(`${node.admin}/upstreams/pool.internal/health`)).json()) as { data: { target: string; health: string }[] };
  assert.equal(health.data.find((t) => t.target === `127.0.0.1:${ports[0]}`)!.health, 'UNHEALTHY');
});
