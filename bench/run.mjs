#!/usr/bin/env node
// npm run bench [-- --quick] [-- --only name,name] [-- --passes N] [-- --duration S] [-- --warmup S]
//
// Gatehouse against nginx and its Node peers, one worker each, in one run on this machine.
// Method and how to read the table: docs/performance.md.
import { parseArgs } from 'node:util';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir, cpus, availableParallelism, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { installCleanup, freePort, stopProcess, waitReady, httpGet, treeRss, rssSampler, sleep, cpuSnapshot, otherCpu } from './lib/procs.mjs';
import { ensureTools, toolVersions, peerVersion, gatehouseBuilt, snapshotGatehouse, BENCH_DIR, ROOT } from './lib/setup.mjs';
import { startUpstream, UPSTREAM_BODY } from './lib/nginx.mjs';
import { TARGETS, REQUEST_PATH } from './lib/targets.mjs';
import { writeWrkScript, runWrk } from './lib/wrk.mjs';
import { markdownTable, checkTargets, targetsTable, machineLine, referenceOf, NOISY_PCT } from './lib/report.mjs';

const { values: opts } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    passes: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    retries: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

const ALL_NAMES = ['upstream-direct', ...TARGETS.map((t) => t.name)];
if (opts.help) {
  console.log(`usage: npm run bench [-- --quick] [-- --only NAME,NAME] [-- --passes N] [-- --duration S] [-- --warmup S] [-- --retries N] [-- --keep]
targets: ${ALL_NAMES.join(', ')} (nginx, the reference, always runs)
--quick: one pass of 3 s after a 1 s warm-up; results go to bench/results/quick.{md,json}
--retries N: measure a target again (up to N times per pass) when other processes used
  ${NOISY_PCT}% or more of a core during its run (default 2; 0 with --quick)
--keep: keep the temp dir (configs, logs) after the run`);
  process.exit(0);
}

const quick = opts.quick;
const passes = Number(opts.passes ?? (quick ? 1 : 3));
const seconds = Number(opts.duration ?? (quick ? 3 : 10));
const warmup = Number(opts.warmup ?? (quick ? 1 : 2));
const retries = Number(opts.retries ?? (quick ? 0 : 2));
/** Longest wait for the machine to go quiet before each measurement. */
const quietWaitMs = quick ? 3000 : 30_000;
if (![passes, seconds, warmup, retries].every((n) => Number.isFinite(n) && n >= 0) || passes < 1 || seconds < 1) {
  console.error('bench: --passes, --duration, --warmup and --retries take positive numbers');
  process.exit(2);
}
const only = opts.only ? new Set(opts.only.split(',').map((s) => s.trim()).filter(Boolean)) : undefined;
if (only) {
  const unknown = [...only].filter((n) => !ALL_NAMES.includes(n));
  if (unknown.length) {
    console.error(`bench: unknown target(s) ${unknown.join(', ')}; known: ${ALL_NAMES.join(', ')}`);
    process.exit(2);
  }
  only.add('nginx'); // every ratio is to nginx in the same run
  // ... or to the target's own reference (the HTTPS rows: nginx over HTTPS).
  for (const t of TARGETS) if (only.has(t.name) && t.ref) only.add(t.ref);
}

const log = (msg) => console.error(`bench: ${msg}`);
installCleanup();

if (!gatehouseBuilt()) {
  console.error('bench: dist/ missing; run through `npm run bench` (it builds first)');
  process.exit(1);
}
const tools = ensureTools();

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));
let finished = false;
process.on('exit', () => {
  if (finished && !opts.keep) rmSync(dir, { recursive: true, force: true });
  else console.error(`bench: configs and logs kept in ${dir}`);
});
const gatehouseRoot = snapshotGatehouse(dir);
const { PLUGINS } = await import(pathToFileURL(join(gatehouseRoot, 'dist', 'src', 'plugins', 'registry.js')).href);

const ctx = { dir, gatehouseRoot, nginx: tools.nginx, wrk: tools.wrk, upstreamPort: await freePort(), extraUpstreamPorts: [await freePort(), await freePort()], plugins: new Set(PLUGINS.keys()) };

log(`upstream: nginx on 127.0.0.1:${ctx.upstreamPort}; ${passes} pass(es), ${warmup} s warm-up + ${seconds} s per target; temp dir ${dir}`);
const upstream = startUpstream(tools.nginx, dir, ctx.upstreamPort, ctx.extraUpstreamPorts);
const probe = await waitReady(upstream, ctx.upstreamPort, '/', {}, 15_000);
if (probe.body !== UPSTREAM_BODY) throw new Error(`upstream answered ${JSON.stringify(probe.body)}`);

const direct = {
  name: 'upstream-direct',
  label: 'for scale: the upstream itself, no proxy',
  direct: true,
};

/** One entry per target, in table order: targets to measure, or a note why not. */
const results = [direct, ...TARGETS]
  .filter((t) => !only || only.has(t.name))
  .map((t) => ({ target: t, name: t.name, label: t.label, reference: !!t.reference, direct: !!t.direct, passes: [], note: undefined }));

for (const r of results) {
  const t = r.target;
  r.note = t.skip?.(ctx);
  if (r.note) continue;
  try {
    await t.prepare?.(ctx);
    r.script = writeWrkScript(dir, t.name, t.lua);
  } catch (err) {
    r.note = `not run: ${err.message.split('\n')[0]}`;
    log(`${t.name}: ${err.message}`);
  }
}

async function checkResponses(port, t) {
  const checks = t.checks ?? [{ path: REQUEST_PATH, headers: t.headers ?? {} }];
  for (const c of checks) {
    const res = await httpGet(port, c.path, { ...(t.headers ?? {}), ...c.headers }, 2000, !!t.tls);
    if (res.status !== 200 || res.body !== UPSTREAM_BODY) {
      throw new Error(`GET ${c.path} ${JSON.stringify(c.headers)} -> ${res.status} ${res.body.slice(0, 200)}`);
    }
  }
}

/** One measurement of one target: start, check, idle RSS, warm-up, measured run with RSS sampling, stop. */
async function measure(r) {
  const t = r.target;
  const wrkRun = (port, secs, tag) =>
    runWrk(tools.wrk, { dir, name: `${t.name}-${tag}`, port, path: t.checks ? '/' : REQUEST_PATH, headers: t.headers, script: r.script, seconds: secs, scheme: t.tls ? 'https' : 'http' });
  const measured = async (port, roots) => {
    const a = cpuSnapshot(roots);
    const res = await wrkRun(port, seconds, 'run');
    return { ...res, ...otherCpu(a, cpuSnapshot(roots)) };
  };
  if (t.direct) {
    if (warmup > 0) await wrkRun(ctx.upstreamPort, warmup, 'warmup');
    return { ...(await measured(ctx.upstreamPort, [upstream.pid])), idle_rss: treeRss(upstream.pid), peak_rss: treeRss(upstream.pid), ready_ms: 0 };
  }
  const port = await freePort();
  const started = Date.now();
  const proc = t.start(ctx, port);
  try {
    const first = t.checks?.[0] ?? { path: REQUEST_PATH, headers: {} };
    await waitReady(proc, port, first.path, { ...(t.headers ?? {}), ...first.headers }, 120_000, !!t.tls);
    const readyMs = Date.now() - started;
    await checkResponses(port, t);
    await t.verify?.(port);
    await sleep(1000);
    const idle = treeRss(proc.pid);
    const sampler = rssSampler(proc.pid, 200);
    let res;
    try {
      if (warmup > 0) await wrkRun(port, warmup, 'warmup');
      res = await measured(port, [proc.pid, upstream.pid]);
    } finally {
      res = { ...res, peak_rss: sampler.stop() };
    }
    if (proc.exitCode !== undefined) throw new Error(`${t.name} exited (${proc.exitCode}) during the run`);
    return { ...res, idle_rss: idle, ready_ms: readyMs };
  } finally {
    await stopProcess(proc);
  }
}

/**
 * Other sessions share this machine: before each measurement, wait (up to quietWaitMs) until
 * processes outside the bench use under 10% of a core over one second.
 */
async function waitQuiet() {
  const deadline = Date.now() + quietWaitMs;
  let other = 0;
  do {
    const a = cpuSnapshot([upstream.pid]);
    await sleep(1000);
    other = otherCpu(a, cpuSnapshot([upstream.pid])).other_pct;
    if (other < 10) return other;
  } while (Date.now() < deadline);
  return other;
}

/** One target in one pass: measured again (up to `retries` times) while other load disturbs it. */
async function measurePass(r, pass) {
  for (let attempt = 0; attempt <= retries; attempt++) {
    const before = await waitQuiet();
    const busy = before >= 10 ? `(machine busy: ${before.toFixed(0)}% of a core) ` : '';
    process.stderr.write(`bench: pass ${pass}/${passes}${attempt ? ` retry ${attempt}` : ''} ${r.name.padEnd(16)} ${busy}`);
    try {
      const m = await measure(r);
      r.passes.push({ pass, attempt, ...m });
      const steal = m.steal_pct >= 1 ? ` steal ${m.steal_pct.toFixed(0)}%` : '';
      process.stderr.write(
        `${Math.round(m.rps)} req/s  p50 ${m.p50_ms.toFixed(2)} ms  p99 ${m.p99_ms.toFixed(2)} ms  errors ${m.errors}  idle ${(m.idle_rss / 2 ** 20).toFixed(1)} MB  peak ${(m.peak_rss / 2 ** 20).toFixed(1)} MB  other CPU ${m.other_pct.toFixed(0)}%${steal}\n`,
      );
      if (m.other_pct < NOISY_PCT) return;
    } catch (err) {
      r.passes.push({ pass, attempt, error: err.message });
      process.stderr.write(`FAILED\n${err.message}\n`);
      return;
    }
  }
}

const runnable = results.filter((r) => !r.note);
for (let pass = 1; pass <= passes; pass++) {
  // Round robin; every other pass in reverse, so no target always follows the same neighbour.
  const order = pass % 2 ? runnable : [...runnable].reverse();
  for (const r of order) await measurePass(r, pass);
}
await stopProcess(upstream);

// Per target: the pass with the most requests/s (among the quiet ones, if any) gives req/s,
// latencies and idle RSS; errors are summed over all passes and peak RSS is the highest of all.
for (const r of results) {
  const ok = r.passes.filter((p) => p.rps !== undefined);
  if (!ok.length) {
    if (!r.note && r.passes.length) r.note = `failed: ${r.passes[0].error.split('\n')[0]}`;
    continue;
  }
  const quiet = ok.filter((p) => p.other_pct < NOISY_PCT);
  r.best = (quiet.length ? quiet : ok).reduce((a, b) => (b.rps > a.rps ? b : a));
  r.errors = ok.reduce((n, p) => n + p.errors, 0);
  r.peak_rss = Math.max(...ok.map((p) => p.peak_rss));
  if (ok.length < r.passes.length) r.note = `${r.passes.length - ok.length} pass(es) failed`;
}

const gitOut = (args) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' }).stdout?.trim();
const versions = toolVersions(tools);
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: availableParallelism(),
  memory_gb: Math.round(totalmem() / 2 ** 30),
  kernel: release(),
  node: process.version,
  nginx: versions.nginx,
  wrk: versions.wrk,
  date: new Date().toISOString(),
};
const idleFile = join(BENCH_DIR, 'results', 'idle-connections.json');
const idle = existsSync(idleFile) ? JSON.parse(readFileSync(idleFile, 'utf8')) : undefined;
const checks = checkTargets(results, idle);

const method = `wrk -t1 -c50, ${warmup} s warm-up then ${seconds} s measured, ${passes} round-robin pass(es); figures from each target's best pass by req/s, among its quiet passes if it has any (errors: sum of all passes; peak RSS: highest of all passes). RSS: sum of VmRSS over the proxy's process tree, idle 1 s after the first answer, peak sampled every 200 ms during warm-up and run. Upstream: nginx, one worker, \`return 200\` with a ${UPSTREAM_BODY.length}-byte JSON body.`;
const notes = results.filter((r) => r.note).map((r) => `- ${r.label}: ${r.note}`);
if (results.some((r) => r.best && r.target.ref)) notes.push('- The HTTPS rows (wrk over TLS 1.3, keep-alive, the same self-signed ECDSA P-256 certificate) are compared with nginx over HTTPS; all other rows with plain nginx.');
const allPasses = results.flatMap((r) => r.passes.filter((p) => p.rps !== undefined));
const noisy = allPasses.filter((p) => p.other_pct >= NOISY_PCT).length;
const maxOther = Math.max(0, ...allPasses.map((p) => p.other_pct));
const maxSteal = Math.max(0, ...allPasses.map((p) => p.steal_pct));
notes.push(
  `- Other processes on the machine during the measured runs: up to ${maxOther.toFixed(0)}% of one core${maxSteal >= 1 ? `, steal up to ${maxSteal.toFixed(0)}%` : ''}; ${noisy ? `${noisy} pass(es) with ${NOISY_PCT}% or more are marked *` : 'no pass was disturbed by more than ' + NOISY_PCT + '%'}.`,
);
const md = `# Gatehouse benchmark${quick ? ' (quick)' : ''}

${machineLine(machine)}; gatehouse ${gitOut(['rev-parse', '--short', 'HEAD']) ?? '?'}${gitOut(['status', '--porcelain', 'src'])?.length ? ' (src/ has uncommitted changes)' : ''}

${method}

${markdownTable(results)}

${notes.join('\n')}

${targetsTable(checks)}
`;

const json = {
  quick,
  machine,
  gatehouse: { commit: gitOut(['rev-parse', 'HEAD']), dirty_src: !!gitOut(['status', '--porcelain', 'src'])?.length, plugins: [...ctx.plugins].sort() },
  peers: { 'fast-gateway': peerVersion('fast-gateway'), 'express-gateway': peerVersion('express-gateway') },
  method: { threads: 1, connections: 50, warmup_s: warmup, duration_s: seconds, passes, pick: 'best pass by req/s among quiet passes (other_pct < noisy_pct) if any', retries_when_noisy: retries, rss: 'sum of VmRSS over the process tree', upstream_body_bytes: UPSTREAM_BODY.length, other_cpu: 'percent of one core used by processes outside the bench during each measured run', noisy_pct: NOISY_PCT },
  results: results.map((r) => {
    const refRow = referenceOf(results, r);
    const ref = refRow?.best;
    const ratio = (v, rv) => (r.best && ref && rv ? v / rv : undefined);
    return {
      name: r.name,
      label: r.label,
      note: r.note,
      rps: r.best?.rps,
      p50_ms: r.best?.p50_ms,
      p99_ms: r.best?.p99_ms,
      errors: r.errors,
      idle_rss_bytes: r.best?.idle_rss,
      peak_rss_bytes: r.peak_rss,
      ready_ms: r.best?.ready_ms,
      reference: refRow?.name,
      vs_nginx: r.best ? { rps: ratio(r.best.rps, ref?.rps), p50: ratio(r.best.p50_ms, ref?.p50_ms), p99: ratio(r.best.p99_ms, ref?.p99_ms), idle_rss: ratio(r.best.idle_rss, ref?.idle_rss), peak_rss: ratio(r.peak_rss, refRow?.peak_rss) } : undefined,
      passes: r.passes.map(({ raw: _raw, ...p }) => p),
    };
  }),
  targets: checks,
};

mkdirSync(join(BENCH_DIR, 'results'), { recursive: true });
const base = join(BENCH_DIR, 'results', quick ? 'quick' : 'latest');
writeFileSync(`${base}.md`, md);
writeFileSync(`${base}.json`, `${JSON.stringify(json, null, 2)}\n`);
console.log(`\n${md}`);
log(`written ${base}.md and ${base}.json`);
finished = true;
