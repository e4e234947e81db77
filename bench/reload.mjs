// Reload benchmark: how long a single-entity admin change takes to be served by every worker when
// the config has 10,000 routes (bench/lib/routes.mjs, the same table as scenario c of run.mjs).
//
//   node bench/reload.mjs [--routes 10000] [--changes 30] [--workers 1,2] [--out bench/results]
//
// For each change (add a route, patch a route, delete a route, toggle a plugin, add a consumer
// credential) it measures:
//   call    the admin call, from sending it to its answer (validation of the whole config,
//           compilation in every worker, write-back to the file, swap);
//   served  from the answer until a burst of new connections (spread over the workers) all see
//           the change: the "admin call returned -> every worker serves it" figure;
//   total   call + served.
// Run `npm run build` first.
import http from 'node:http';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { manyRoutes } from './lib/routes.mjs';
import { startProcess, stopProcess, freePort, waitReady, httpGet, sleep, cleanEnv } from './lib/procs.mjs';
import { BENCH_DIR, ROOT, gatehouseBuilt, gatehouseNodeFlags } from './lib/setup.mjs';

const { values: args } = parseArgs({
  options: {
    routes: { type: 'string', default: '10000' },
    changes: { type: 'string', default: '30' },
    workers: { type: 'string', default: '1,2' },
    out: { type: 'string', default: join(BENCH_DIR, 'results') },
  },
});
const ROUTES = Number(args.routes);
const CHANGES = Number(args.changes);

function admin(port, method, path, body) {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers: text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode, body: raw ? JSON.parse(raw) : undefined });
      });
    });
    req.on('error', reject);
    req.end(text);
  });
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, median: +q(0.5).toFixed(1), p95: +q(0.95).toFixed(1), max: +s[s.length - 1].toFixed(1) };
};

/** Polls with new connections until `ok` holds for `burst` answers in a row (every worker asked). */
async function servedAfter(proxyPort, path, headers, ok, burst) {
  const t0 = performance.now();
  let streak = 0;
  while (streak < burst) {
    const r = await httpGet(proxyPort, path, headers, 5000);
    streak = ok(r) ? streak + 1 : 0;
    if (performance.now() - t0 > 10_000) throw new Error(`change not served after 10 s (${path}: ${r.status})`);
  }
  return performance.now() - t0;
}

async function run(workers, upstreamUrl, dir) {
  const { services } = manyRoutes(upstreamUrl, ROUTES);
  const config = {
    _format_version: '3.0',
    _gatehouse: { access_log: false },
    services,
    plugins: [{ name: 'correlation-id', config: { echo_downstream: true } }, { name: 'key-auth', route: 'r-100', config: { hide_credentials: true } }],
    consumers: [{ username: 'bench', keyauth_credentials: [{ key: 'bench-key-0' }] }],
  };
  const file = join(dir, `reload-${workers}.json`);
  writeFileSync(file, JSON.stringify(config));
  const proxyPort = await freePort();
  const adminPort = await freePort();
  const logFile = join(dir, `gatehouse-${workers}.log`);
  const t0 = performance.now();
  const proc = startProcess(`gatehouse (${workers} workers)`, process.execPath, [...gatehouseNodeFlags(), join(ROOT, 'bin/gatehouse.js'), 'start', '--config', file, '--workers', String(workers), '--proxy-listen', `127.0.0.1:${proxyPort}`, '--admin-listen', `127.0.0.1:${adminPort}`], {
    logFile,
    env: cleanEnv({ GATEHOUSE_LOG_LEVEL: 'warn' }),
  });
  try {
    await waitReady(proc, adminPort, '/status', {}, 120_000);
    const startMs = performance.now() - t0;
    await waitReady(proc, proxyPort, '/p100/v1/x', { host: 'bench.test', apikey: 'bench-key-0' }, 60_000);
    const burst = workers * 4;
    const correlationId = (await admin(adminPort, 'GET', '/plugins?size=1000')).body.data.find((p) => p.name === 'correlation-id').id;
    const kinds = {
      'add route': async (i) => {
        const r = await admin(adminPort, 'POST', '/services/svc-1/routes', { name: `new-${i}`, paths: [`/new-${i}`] });
        return { r, status: 201, probe: [`/new-${i}/x`, {}, (x) => x.status === 200] };
      },
      'patch route': async (i) => {
        const r = await admin(adminPort, 'PATCH', `/routes/r-${200 + i}`, { paths: [`/patched-${i}`] });
        return { r, status: 200, probe: [`/patched-${i}/x`, { host: 'bench.test' }, (x) => x.status === 200] };
      },
      'delete route': async (i) => {
        const r = await admin(adminPort, 'DELETE', `/routes/new-${i}`);
        return { r, status: 204, probe: [`/new-${i}/x`, {}, (x) => x.status === 404] };
      },
      'toggle plugin': async (i) => {
        const on = i % 2 === 1;
        const r = await admin(adminPort, 'PATCH', `/plugins/${correlationId}`, { enabled: on });
        return { r, status: 200, probe: ['/p100/v1/x', { host: 'bench.test', apikey: 'bench-key-0' }, (x) => x.status === 200 && (x.headers['kong-request-id'] !== undefined) === on] };
      },
      'add credential': async (i) => {
        const r = await admin(adminPort, 'POST', '/consumers/bench/key-auth', { key: `bench-key-${i + 1}` });
        return { r, status: 201, probe: ['/p100/v1/x', { host: 'bench.test', apikey: `bench-key-${i + 1}` }, (x) => x.status === 200] };
      },
    };
    const results = {};
    const order = ['add route', 'patch route', 'delete route', 'toggle plugin', 'add credential'];
    const rounds = Math.max(1, Math.ceil(CHANGES / order.length));
    for (let i = 0; i < rounds; i++) {
      for (const kind of order) {
        const c0 = performance.now();
        const { r, status, probe } = await kinds[kind](i);
        const call = performance.now() - c0;
        if (r.status !== status) throw new Error(`${kind}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
        const served = await servedAfter(proxyPort, probe[0], probe[1], probe[2], burst);
        (results[kind] ??= { call: [], served: [], total: [] }).call.push(call);
        results[kind].served.push(served);
        results[kind].total.push(call + served);
        await sleep(20);
      }
    }
    const out = { workers, routes: ROUTES, start_ms: Math.round(startMs), kinds: {} };
    const all = { call: [], served: [], total: [] };
    for (const [kind, r] of Object.entries(results)) {
      out.kinds[kind] = { call: stats(r.call), served: stats(r.served), total: stats(r.total) };
      for (const k of Object.keys(all)) all[k].push(...r[k]);
    }
    out.all = { call: stats(all.call), served: stats(all.served), total: stats(all.total) };
    return out;
  } finally {
    await stopProcess(proc);
  }
}

async function main() {
  if (!gatehouseBuilt()) throw new Error('run `npm run build` first');
  const upstream = http.createServer((req, res) => res.end('{"ok":true}'));
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${upstream.address().port}`;
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-reload-bench-'));
  const runs = [];
  for (const w of args.workers.split(',').map(Number)) {
    console.error(`reload bench: ${ROUTES} routes, ${w} worker(s), ${CHANGES} changes`);
    const r = await run(w, upstreamUrl, dir);
    runs.push(r);
    console.error(JSON.stringify(r.all));
  }
  upstream.close();
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}`;
  const lines = [
    `# Reload with ${ROUTES} routes`,
    '',
    `${new Date().toISOString()}, ${machine}. \`node bench/reload.mjs\`. Milliseconds: median / p95 / max.`,
    '',
    '- call: the admin call (whole-config validation, compile in every worker, file write-back, swap);',
    '- served: from the answer until new connections to every worker see the change;',
    '- total: call + served.',
    '',
    '| workers | change | call | served | total |',
    '|---|---|---|---|---|',
  ];
  const fmt = (s) => `${s.median} / ${s.p95} / ${s.max}`;
  for (const r of runs) {
    for (const [kind, k] of Object.entries(r.kinds)) lines.push(`| ${r.workers} | ${kind} | ${fmt(k.call)} | ${fmt(k.served)} | ${fmt(k.total)} |`);
    lines.push(`| ${r.workers} | **all** | ${fmt(r.all.call)} | ${fmt(r.all.served)} | ${fmt(r.all.total)} |`);
  }
  lines.push('', `Start-up with ${ROUTES} routes: ${runs.map((r) => `${r.workers} worker(s) ${r.start_ms} ms`).join(', ')}.`);
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, 'reload.json'), `${JSON.stringify({ date: new Date().toISOString(), machine, runs }, null, 2)}\n`);
  writeFileSync(join(args.out, 'reload.md'), `${lines.join('\n')}\n`);
  console.log(lines.join('\n'));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`reload bench: ${err.stack ?? err}`);
    process.exit(1);
  },
);
