#!/usr/bin/env node
// node bench/profile.mjs [--seconds 10] [--out DIR] [--markdown] [--pin]   (after `npm run build`)
//
// CPU profile of Gatehouse scenario a (one worker, one route) under wrk -t1 -c50 load:
// `node --cpu-prof --cpu-prof-dir=DIR bin/gatehouse.js start ...`, a 2 s warm-up, then the
// measured load; SIGTERM makes the gateway exit cleanly so V8 writes the .cpuprofile.
// Prints the top self-time functions (bench/cpuprofile-top.mjs).
// --pin: the gateway alone on CPU 1, wrk and the upstream on CPU 0 (taskset), so the profile is not
// inflated by the gateway being descheduled while its peers run on the same core.
import { parseArgs } from 'node:util';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { installCleanup, freePort, startProcess, stopProcess, waitReady, cpuSnapshot, otherCpu } from './lib/procs.mjs';
import { ensureTools, gatehouseBuilt, gatehouseNodeFlags, snapshotGatehouse, BENCH_DIR } from './lib/setup.mjs';
import { startUpstream } from './lib/nginx.mjs';
import { runWrk, writeWrkScript } from './lib/wrk.mjs';

const { values: opts } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, out: { type: 'string', default: '/tmp/prof' }, markdown: { type: 'boolean', default: false }, pin: { type: 'boolean', default: false } }, strict: true });
installCleanup();
if (!gatehouseBuilt()) {
  console.error('profile: dist/ missing; run `npm run build` first');
  process.exit(1);
}
const tools = ensureTools();
const pin = (cpu, pid) => {
  const r = spawnSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset failed: ${r.stderr}`);
};
if (opts.pin) pin(0, process.pid); // everything started from here inherits CPU 0
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-profile-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const profDir = mkdtempSync(join(opts.out.replace(/\/$/, '') + '-'));
mkdirSync(profDir, { recursive: true });

const upstreamPort = await freePort();
const upstream = startUpstream(tools.nginx, dir, upstreamPort);
await waitReady(upstream, upstreamPort, '/', {}, 15_000);

const port = await freePort();
const config = join(dir, 'gatehouse.json');
writeFileSync(
  config,
  JSON.stringify({
    _format_version: '3.0',
    _gatehouse: { access_log: false },
    services: [{ name: 'upstream', url: `http://127.0.0.1:${upstreamPort}`, routes: [{ name: 'api', paths: ['/api'] }] }],
  }),
);
const spawnedAt = Date.now();
const gh = startProcess(
  'gatehouse',
  process.execPath,
  ['--cpu-prof', `--cpu-prof-dir=${profDir}`, ...gatehouseNodeFlags(), join(snapshotGatehouse(dir), 'bin', 'gatehouse.js'), 'start', '--config', config, '--proxy-listen', `127.0.0.1:${port}`, '--admin-listen', 'off', '--workers', '1', '--grace-period', '1'],
  { logFile: join(dir, 'gatehouse.out') },
);
await waitReady(gh, port, '/api/hello', {}, 30_000);
const startupMs = Date.now() - spawnedAt + 200; // the profile from here on is the request path
if (opts.pin) pin(1, gh.pid);
const script = writeWrkScript(dir, 'profile');
await runWrk(tools.wrk, { dir, name: 'warmup', port, path: '/api/hello', script, seconds: 2 });
/** [user, system] clock ticks of the gateway process. */
const userSys = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]), Number(f[12])];
};
const ticks0 = userSys(gh.pid);
const before = cpuSnapshot([gh.pid, upstream.pid]);
const res = await runWrk(tools.wrk, { dir, name: 'run', port, path: '/api/hello', script, seconds: Number(opts.seconds) });
const { other_pct: other } = otherCpu(before, cpuSnapshot([gh.pid, upstream.pid]));
const ticks1 = userSys(gh.pid);
const [user, sys] = [ticks1[0] - ticks0[0], ticks1[1] - ticks0[1]];
await stopProcess(gh, 15_000);
await stopProcess(upstream);

const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error(`no .cpuprofile in ${profDir}`);
const path = join(profDir, file);
console.log(`load: ${Math.round(res.rps)} req/s (under the profiler), p99 ${res.p99_ms.toFixed(2)} ms, errors ${res.errors}; other processes used ${other.toFixed(0)}% of a core meanwhile${other >= 20 ? ' (a busy machine inflates native frames: run again when quiet)' : ''}`);
console.log(`gateway CPU during the measured run: ${((user + sys) / Number(opts.seconds)).toFixed(0)}% of a core, user ${((100 * user) / (user + sys)).toFixed(0)}% / kernel ${((100 * sys) / (user + sys)).toFixed(0)}%`);
console.log(`profile: ${path}\n`);
const top = spawnSync(process.execPath, [join(BENCH_DIR, 'cpuprofile-top.mjs'), path, '--top', '15', '--from-ms', String(startupMs), ...(opts.markdown ? ['--markdown'] : [])], { encoding: 'utf8' });
process.stdout.write(top.stdout + top.stderr);
