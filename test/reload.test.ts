import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type Upstream } from './helpers/harness.js';
import { request } from './helpers/node.js';
import { gatehouseProcesses } from './helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-reload-'));
const upstreams: Upstream[] = [];
after(async () => {
  for (const u of upstreams) await u.close();
});

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  proxy: string;
  admin: string;
}

const launch = gatehouseProcesses();
function startGatehouse(file: string, args: string[] = []): Promise<Started> {
  return launch(file, args, { GATEHOUSE_LOG_LEVEL: 'info' });
}

function admin(g: Started, method: string, path: string, body?: unknown) {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return request(`${g.admin}${path}`, { method, body: text, headers: text ? { 'content-type': 'application/json' } : {} });
}

/** The whole-config change: the upstream path and a response header carry the same generation. */
function generation(up: Upstream, k: number): object {
  return {
    _format_version: '3.0',
    _gatehouse: { access_log: false },
    services: [
      {
        name: 'stable',
        url: `${up.url}/g${k}`,
        routes: [{ name: 'stable', paths: ['/stable'], plugins: [{ name: 'response-transformer', config: { add: { headers: [`x-gen:${k}`] } } }] }],
      },
    ],
    // Alternately on and off at each generation, so the toggles below go both ways.
    plugins: [{ name: 'correlation-id', enabled: (k / 5) % 2 === 0, config: { echo_downstream: true } }],
    upstreams: [{ name: 'pool', targets: [{ target: '10.0.0.1:80' }] }],
  };
}

test('50 config changes under steady load (keep-alive and new connections, 2 workers): no error, no reset, never half-applied', { timeout: 240_000 }, async () => {
  const up = await startUpstream();
  upstreams.push(up);
  const file = join(dir, 'load.yaml');
  writeFileSync(file, JSON.stringify(generation(up, 0)));
  const g = await startGatehouse(file, ['--workers', '2']);

  let running = true;
  let total = 0;
  const errors: string[] = [];
  const mismatches: string[] = [];
  /** The generation every request started after this point must see (at least). */
  let floor = 0;
  const check = (res: { status: number; headers: http.IncomingHttpHeaders; text: string }, minGen: number) => {
    total++;
    if (res.status !== 200) return errors.push(`status ${res.status}: ${res.text.slice(0, 200)}`);
    const gen = Number(/^\/g(\d+)\//.exec(JSON.parse(res.text).url)?.[1]);
    const header = Number(res.headers['x-gen']);
    if (gen !== header) mismatches.push(`upstream path of generation ${gen} with the header of generation ${header}`);
    if (gen < minGen) mismatches.push(`generation ${gen} served after generation ${minGen} was acknowledged`);
  };
  const loop = async (agent: http.Agent | undefined) => {
    while (running) {
      const minGen = floor;
      try {
        check(await request(`${g.proxy}/stable/x`, { agent }), minGen);
      } catch (err) {
        errors.push(`${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`);
      }
    }
  };
  const keepAlive = Array.from({ length: 3 }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  const loops = [...keepAlive.map((a) => loop(a)), loop(undefined), loop(undefined)];

  const reach = async (path: string, status: number) => {
    // A fresh connection each time, so both workers are asked.
    for (let i = 0; i < 6; i++) assert.equal((await request(`${g.proxy}${path}`)).status, status, `${path} after the admin call returned`);
  };
  let gen = 0;
  let correlation = true;
  let target: string | undefined;
  for (let k = 1; k <= 50; k++) {
    const kind = k % 5;
    if (kind === 0) {
      gen = k;
      const r = await admin(g, 'POST', '/config', generation(up, k));
      assert.equal(r.status, 201, r.text);
      floor = k;
      correlation = (k / 5) % 2 === 0;
      target = undefined;
    } else if (kind === 1) {
      const r = await admin(g, 'POST', '/services/stable/routes', { name: `tmp${k}`, paths: [`/tmp${k}`] });
      assert.equal(r.status, 201, r.text);
      await reach(`/tmp${k}`, 200);
    } else if (kind === 2) {
      const r = await admin(g, 'DELETE', `/routes/tmp${k - 1}`);
      assert.equal(r.status, 204, r.text);
      await reach(`/tmp${k - 1}`, 404);
    } else if (kind === 3) {
      correlation = !correlation;
      const plugin = (await admin(g, 'GET', '/plugins')).body.data.find((p: { name: string }) => p.name === 'correlation-id');
      const r = await admin(g, 'PATCH', `/plugins/${plugin.id}`, { enabled: correlation });
      assert.equal(r.status, 200, r.text);
      const res = await request(`${g.proxy}/stable/y`);
      assert.equal(res.headers['kong-request-id'] !== undefined, correlation, 'the plugin toggle is live');
    } else {
      const r = target ? await admin(g, 'DELETE', `/upstreams/pool/targets/${target}`) : await admin(g, 'POST', '/upstreams/pool/targets', { target: `10.0.1.${k}:80` });
      assert.equal(r.status, target ? 204 : 201, r.text);
      target = target ? undefined : r.body.id;
    }
  }
  await new Promise((r) => setTimeout(r, 200));
  running = false;
  await Promise.all(loops);
  for (const a of keepAlive) a.destroy();

  assert.deepEqual(errors, [], 'no failed request, no reset');
  assert.deepEqual(mismatches, [], 'no request saw a half-applied or stale config');
  assert.ok(total > 100, `steady load ran (${total} requests)`);
  const status = (await admin(g, 'GET', '/status')).body;
  assert.equal(status.workers, 2);
  assert.deepEqual(new Set(status.workers_config_versions), new Set([status.configuration_version]), 'every worker holds the same version');
  assert.equal(gen, 50);
  const explained = (await admin(g, 'GET', '/debug/route?path=/stable/x')).body;
  assert.equal(explained.matched.route.name, 'stable', 'the route debugger answers from a worker');
  assert.deepEqual(
    explained.plugins.map((p: { name: string }) => p.name),
    ['correlation-id', 'response-transformer'],
  );
  g.child.kill('SIGTERM');
  assert.equal(await g.exited, 0);
});

test('--watch reloads the file when it is edited (an invalid edit is refused); admin write-backs are not reloaded', { timeout: 120_000 }, async () => {
  const up = await startUpstream((req, res) => res.end(`one ${req.url}`));
  const two = await startUpstream((req, res) => res.end(`two ${req.url}`));
  upstreams.push(up, two);
  const file = join(dir, 'watched.yaml');
  const yaml = (url: string) => `_format_version: "3.0"\n_gatehouse: { access_log: false }\nservices:\n- name: s\n  url: ${url}\n  routes:\n  - name: r\n    paths: [/]\n`;
  writeFileSync(file, yaml(up.url));
  const g = await startGatehouse(file, ['--watch']);
  const body = async () => (await request(`${g.proxy}/x`)).text;
  assert.equal(await body(), 'one /x');

  const until = async (what: () => Promise<boolean>, message: string) => {
    const deadline = Date.now() + 10_000;
    while (!(await what())) {
      if (Date.now() > deadline) assert.fail(`${message}\n${g.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  // An editor's save: a new file renamed over the old one.
  writeFileSync(`${file}.new`, yaml(two.url));
  renameSync(`${file}.new`, file);
  await until(async () => (await body()) === 'two /x', 'the edit was not applied');

  writeFileSync(file, '_format_version: "3.0"\nservices:\n- name: s\n  url: nope\n');
  await until(async () => /config file change refused/.test(g.output()), 'the invalid edit was not reported');
  assert.equal(await body(), 'two /x', 'the running config stays');

  writeFileSync(file, yaml(up.url));
  await until(async () => (await body()) === 'one /x', 'the fixed file was not applied');
  const before = (await admin(g, 'GET', '/status')).body.configuration_version;
  assert.equal((await admin(g, 'PATCH', '/services/s', { retries: 2 })).status, 200);
  assert.match(readFileSync(file, 'utf8'), /retries: 2/, 'written back');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await admin(g, 'GET', '/status')).body.configuration_version, before + 1, 'our own write is not reloaded again');

  // SIGHUP re-reads the file too.
  writeFileSync(file, yaml(two.url));
  g.child.kill('SIGHUP');
  await until(async () => (await body()) === 'two /x', 'SIGHUP did not reload');
  g.child.kill('SIGTERM');
  assert.equal(await g.exited, 0);
});
