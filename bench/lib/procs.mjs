// Child processes of a bench run: each in its own process group, all killed when the run ends
// (normal exit, Ctrl-C, SIGTERM, an uncaught error). Plus the small helpers that poke at them:
// free ports, HTTP readiness, RSS of a process tree from /proc.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';

const live = new Map(); // pid -> { name, child }
let watchdog; // { proc, file }: kills the groups listed in file if this script dies by SIGKILL

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

let hooked = false;
/** Installs the exit/signal hooks once: whatever happens to this script, its children die with it. */
export function installCleanup() {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const pid of live.keys()) killGroup(pid, 'SIGKILL');
    if (watchdog) {
      killGroup(watchdog.child.pid, 'SIGKILL');
      rmSync(watchdog.dir, { recursive: true, force: true });
    }
  });
  startWatchdog();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`\nbench: ${sig}, stopping ${live.size} child process(es)`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.on('uncaughtException', (err) => {
    console.error(`bench: ${err?.stack ?? err}`);
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    console.error(`bench: ${err?.stack ?? err}`);
    process.exit(1);
  });
}

/**
 * A SIGKILLed script runs no exit hook; this shell outlives it by at most a second and then kills
 * every process group still listed. It costs one `sleep 1` a second.
 */
function startWatchdog() {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-watchdog-'));
  const file = join(dir, 'pgids');
  writeFileSync(file, '');
  const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; for g in $(cat '${file}'); do kill -KILL -- -$g 2>/dev/null; done; rm -rf '${dir}'`;
  const child = spawn('bash', ['-c', script], { detached: true, stdio: 'ignore' });
  child.unref();
  watchdog = { child, dir, file };
}

function listGroups() {
  if (watchdog) writeFileSync(watchdog.file, [...live.keys()].join('\n'));
}

/**
 * Starts a long-running child in its own process group (so the whole tree can be signalled),
 * stdout/stderr appended to logFile. Returns { pid, child, name, logFile, exited }.
 */
export function startProcess(name, command, args, { logFile, env, cwd } = {}) {
  installCleanup();
  const fd = logFile ? openSync(logFile, 'a') : 'ignore';
  const child = spawn(command, args, {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: env ?? cleanEnv(),
    cwd,
  });
  if (typeof fd === 'number') closeSync(fd);
  const proc = { name, child, pid: child.pid, logFile, exitCode: undefined };
  proc.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      proc.exitCode = code ?? signal;
      live.delete(child.pid);
      listGroups();
      resolve(proc.exitCode);
    });
    child.on('error', (err) => {
      proc.exitCode = err.message;
      live.delete(child.pid);
      listGroups();
      resolve(proc.exitCode);
    });
  });
  if (child.pid) live.set(child.pid, proc);
  listGroups();
  return proc;
}

/** SIGTERM to the group, SIGKILL after graceMs; resolves when the leader has exited. */
export async function stopProcess(proc, graceMs = 5000) {
  if (!proc || proc.exitCode !== undefined) return;
  killGroup(proc.pid, 'SIGTERM');
  const timer = setTimeout(() => killGroup(proc.pid, 'SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
  // Stragglers of the group (nginx workers, cluster workers) must not outlive their leader.
  killGroup(proc.pid, 'SIGKILL');
}

/** The environment for children: no proxy variables (express-gateway would route through them). */
export function cleanEnv(extra = {}) {
  const env = { ...process.env, ...extra };
  for (const k of Object.keys(env)) if (/^(https?|no|all)_proxy$/i.test(k)) delete env[k];
  return env;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * One GET on a new connection; resolves { status, body, headers } or rejects. `tls` for the
 * HTTPS targets (the bench certificate is self-signed, so it is not verified).
 */
export function httpGet(port, path, headers = {}, timeoutMs = 2000, tls = false) {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port, path, headers, agent: false, timeout: timeoutMs };
    const get = tls ? (cb) => https.get({ ...options, rejectUnauthorized: false }, cb) : (cb) => http.get(options, cb);
    const req = get((res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls until GET answers 2xx; throws with the log tail if the process dies or time runs out. */
export async function waitReady(proc, port, path, headers, timeoutMs = 60_000, tls = false) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc.exitCode !== undefined) throw new Error(`${proc.name} exited (${proc.exitCode}) before it was ready${logTail(proc.logFile)}`);
    try {
      const r = await httpGet(port, path, headers, 1000, tls);
      if (r.status >= 200 && r.status < 300) return r;
      last = `HTTP ${r.status} ${r.body.slice(0, 200)}`;
    } catch (err) {
      last = err.message;
    }
    await sleep(100);
  }
  throw new Error(`${proc.name} not ready after ${timeoutMs} ms (${last})${logTail(proc.logFile)}`);
}

export function logTail(file, lines = 15) {
  if (!file) return '';
  try {
    const text = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    return text ? `\n--- ${file} ---\n${text}` : '';
  } catch {
    return '';
  }
}

/** pid plus all its descendants, from /proc/<pid>/stat. */
export function processTree(root) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(name));
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    out.push(pid);
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  return out;
}

/** VmRSS of one process in bytes (0 when gone). */
export function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Sum of VmRSS over the process tree rooted at pid, in bytes. */
export function treeRss(pid) {
  return processTree(pid).reduce((n, p) => n + rssOf(p), 0);
}

/** Samples treeRss every intervalMs until stop() is called; stop() returns the peak in bytes. */
export function rssSampler(pid, intervalMs = 200) {
  let peak = treeRss(pid);
  const timer = setInterval(() => {
    const v = treeRss(pid);
    if (v > peak) peak = v;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const v = treeRss(pid);
      return Math.max(peak, v);
    },
  };
}

/** utime + stime of one process in clock ticks (0 when gone). */
function cpuTicksOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/**
 * CPU bookkeeping for one measurement: ticks the whole machine spent busy (user + nice + system),
 * ticks our own processes spent (the given trees, plus this script and its reaped children, which
 * includes every finished wrk), and steal. The difference between two snapshots says how much of
 * the machine something else used during the run: the noise indicator in the results.
 */
export function cpuSnapshot(rootPids) {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , , , steal] = line;
  const self = readFileSync('/proc/self/stat', 'utf8');
  const f = self.slice(self.lastIndexOf(')') + 2).split(' ');
  let ours = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  for (const root of rootPids) for (const pid of processTree(root)) if (pid !== process.pid) ours += cpuTicksOf(pid);
  return { at: Date.now(), busy: user + nice + system, steal: steal ?? 0, ours };
}

/** Percent of one core used by other processes, and stolen, between two cpuSnapshots (100 ticks/s assumed). */
export function otherCpu(a, b) {
  const secs = (b.at - a.at) / 1000;
  const other = Math.max(0, b.busy - a.busy - (b.ours - a.ours));
  return { other_pct: (other / secs), steal_pct: (b.steal - a.steal) / secs };
}
