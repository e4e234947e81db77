#!/usr/bin/env node
// node bench/idle-connections.mjs [--connections N]   (after `npm run build`)
//
// Memory of idle keep-alive clients: Gatehouse, one worker, plain proxy (scenario a). Measures RSS
// idle after start, then opens N client connections (default 10,000), each sends one request,
// reads its answer and then stays open and silent, and reports the RSS this added.
// Writes bench/results/idle-connections.{md,json}. Issue targets: idle <= 80 MB per worker,
// 10,000 idle connections add <= 250 MB.
import { parseArgs } from 'node:util';
import { spawnSync, spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { installCleanup, freePort, startProcess, stopProcess, waitReady, rssOf, processTree, sleep } from './lib/procs.mjs';
import { ensureTools, gatehouseBuilt, gatehouseNodeFlags, snapshotGatehouse, BENCH_DIR } from './lib/setup.mjs';
import { startUpstream } from './lib/nginx.mjs';

const { values: opts } = parseArgs({ options: { connections: { type: 'string', default: '10000' } }, strict: true });
const N = Number(opts.connections);
const NEED_FDS = N + 1000; // N sockets plus slack, in each of this script and the gateway

// Both this script and the gateway (our child, which inherits the limit) hold N sockets.
const limit = Number(spawnSync('bash', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
if (Number.isFinite(limit) && limit < NEED_FDS) {
  if (process.env.GATEHOUSE_BENCH_ULIMIT_RAISED) {
    console.error(`idle-connections: open-file limit is ${limit}; ${NEED_FDS} needed (the hard limit is lower)`);
    process.exit(1);
  }
  const self = fileURLToPath(import.meta.url);
  const child = spawn('bash', ['-c', '{ ulimit -n 65535 || ulimit -n "$(ulimit -Hn)"; } 2>/dev/null; exec "$0" "$@"', process.execPath, self, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, GATEHOUSE_BENCH_ULIMIT_RAISED: '1' },
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}

function treeRssBytes(pid) {
  return processTree(pid).reduce((n, p) => n + rssOf(p), 0);
}

/** Opens one connection, sends one request, resolves once the whole answer is in; the socket stays open. */
function openIdle(port, sockets) {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    sockets.push(s);
    let buf = '';
    let need = -1;
    const timer = setTimeout(() => reject(new Error('timeout waiting for the answer')), 30_000);
    s.setEncoding('latin1');
    s.on('connect', () => s.write('GET /api/hello HTTP/1.1\r\nHost: bench.test\r\n\r\n'));
    s.on('data', (d) => {
      buf += d;
      if (need < 0) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.slice(0, end);
        if (!/^HTTP\/1\.1 200 /.test(head)) return reject(new Error(head.split('\r\n')[0]));
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        need = end + 4 + (m ? Number(m[1]) : 0);
      }
      if (buf.length >= need) {
        clearTimeout(timer);
        buf = '';
        resolve();
      }
    });
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

async function main() {
  installCleanup();
  if (!gatehouseBuilt()) {
    console.error('idle-connections: dist/ missing; run `npm run build` first');
    process.exit(1);
  }
  const tools = ensureTools();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-idle-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const log = (m) => console.error(`idle-connections: ${m}`);

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
  const root = snapshotGatehouse(dir);
  const gh = startProcess('gatehouse', process.execPath, [...gatehouseNodeFlags(root), join(root, 'bin', 'gatehouse.js'), 'start', '--config', config, '--proxy-listen', `127.0.0.1:${port}`, '--admin-listen', 'off', '--workers', '1', '--grace-period', '1'], {
    logFile: join(dir, 'gatehouse.out'),
  });
  await waitReady(gh, port, '/api/hello', {}, 30_000);
  await sleep(2000);
  const idle = treeRssBytes(gh.pid);
  // V8 gives back the young generation grown during start-up only after ~10 s without work (its
  // memory reducer): a worker that sits idle settles there.
  await sleep(20_000);
  const settledIdle = treeRssBytes(gh.pid);
  log(`idle RSS ${(idle / 2 ** 20).toFixed(1)} MB 2 s after start, ${(settledIdle / 2 ** 20).toFixed(1)} MB after 20 s idle; opening ${N} keep-alive connections`);

  const sockets = [];
  let peak = idle;
  const sampler = setInterval(() => {
    peak = Math.max(peak, treeRssBytes(gh.pid));
  }, 200);
  const t0 = Date.now();
  const BATCH = 500;
  for (let i = 0; i < N; i += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, N - i) }, () => openIdle(port, sockets)));
  }
  const openMs = Date.now() - t0;
  await sleep(3000);
  const withConns = treeRssBytes(gh.pid);
  await sleep(5000);
  const settled = treeRssBytes(gh.pid);
  clearInterval(sampler);
  peak = Math.max(peak, withConns, settled);
  const stillOpen = sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;
  if (gh.exitCode !== undefined) throw new Error(`gatehouse exited (${gh.exitCode})`);

  for (const s of sockets) s.destroy();
  await stopProcess(gh);
  await stopProcess(upstream);

  const MB = 2 ** 20;
  const added = settled - settledIdle;
  const result = {
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, node: process.version },
    connections: N,
    still_open: stillOpen,
    open_ms: openMs,
    idle_rss_bytes: idle,
    settled_idle_rss_bytes: settledIdle,
    rss_3s_after_bytes: withConns,
    rss_8s_after_bytes: settled,
    peak_rss_bytes: peak,
    added_bytes: added,
    added_per_connection_bytes: added / N,
    targets: { idle_rss_ok: settledIdle <= 80 * MB, added_ok: added <= 250 * MB },
  };
  const md = `# Idle keep-alive connections (bench/idle-connections.mjs)

${result.date}; ${result.machine.cpu}; Node ${result.machine.node}. Gatehouse, one worker, one route; each client connection sent one request, read the answer, then stayed open and silent. RSS is VmRSS of the gateway process.

| measure | value | target |
|---|--:|---|
| RSS 2 s after start (young generation still grown from start-up) | ${(idle / MB).toFixed(1)} MB | |
| idle RSS (after 20 s without traffic) | ${(settledIdle / MB).toFixed(1)} MB | <= 80 MB (${result.targets.idle_rss_ok ? 'met' : '**missed**'}) |
| connections opened (still open at the end) | ${N.toLocaleString('en-US')} (${stillOpen.toLocaleString('en-US')}) in ${(openMs / 1000).toFixed(1)} s | |
| RSS 3 s / 8 s after the last one opened | ${(withConns / MB).toFixed(1)} / ${(settled / MB).toFixed(1)} MB | |
| peak RSS (200 ms samples) | ${(peak / MB).toFixed(1)} MB | |
| added by the idle connections (8 s value - idle RSS) | ${(added / MB).toFixed(1)} MB (${(added / N / 1024).toFixed(1)} KB each) | <= 250 MB (${result.targets.added_ok ? 'met' : '**missed**'}) |
`;
  mkdirSync(join(BENCH_DIR, 'results'), { recursive: true });
  writeFileSync(join(BENCH_DIR, 'results', 'idle-connections.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(BENCH_DIR, 'results', 'idle-connections.md'), md);
  console.log(md);
}
