// Installs what the benchmark needs when it is missing: nginx and wrk from Debian, and the Node
// peers into bench/scratch (git-ignored; never project dependencies).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, mkdirSync, cpSync, copyFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

export const BENCH_DIR = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
export const ROOT = join(BENCH_DIR, '..');
export const SCRATCH = join(BENCH_DIR, 'scratch');

/** Node peers: folder name in bench/scratch, npm spec, the version that must be there. */
export const PEERS = {
  'fast-gateway': { spec: 'fast-gateway@3.4.7', version: /^3\.4\.7$/ }, // 5.x does not install (a dependency is missing from the registry)
  'express-gateway': { spec: 'express-gateway@1.16', version: /^1\.16\./ },
};

function which(cmd) {
  const r = spawnSync('bash', ['-c', `command -v ${cmd} || { test -x /usr/sbin/${cmd} && echo /usr/sbin/${cmd}; }`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0] : undefined;
}

function run(cmd, args, what) {
  console.error(`bench: ${what}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status ?? r.signal})`);
}

/** Returns { nginx, wrk } absolute paths, installing the Debian packages if either is missing. */
export function ensureTools() {
  let nginx = which('nginx');
  let wrk = which('wrk');
  if (!nginx || !wrk) {
    const sudo = process.getuid?.() === 0 ? [] : ['sudo', '-n'];
    const apt = (args) => (sudo.length ? run(sudo[0], [...sudo.slice(1), 'apt-get', ...args], 'apt-get') : run('apt-get', args, 'apt-get'));
    apt(['update']);
    apt(['install', '-y', 'nginx', 'wrk']);
    nginx = which('nginx');
    wrk = which('wrk');
    if (!nginx || !wrk) throw new Error('nginx or wrk still missing after apt-get install');
  }
  return { nginx, wrk };
}

/** Path of the peer's package folder, installing it into bench/scratch/<name> if missing. */
export function ensurePeer(name) {
  const peer = PEERS[name];
  const prefix = join(SCRATCH, name);
  const pkgDir = join(prefix, 'node_modules', name);
  const installed = () => {
    try {
      return peer.version.test(JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version);
    } catch {
      return false;
    }
  };
  if (!installed()) {
    run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', peer.spec], `installing ${name}`);
    if (!installed()) throw new Error(`${peer.spec} did not install into ${prefix}`);
  }
  return pkgDir;
}

export function toolVersions({ nginx, wrk }) {
  const out = (cmd, args) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0];
  };
  return {
    nginx: out(nginx, ['-v']).replace(/^nginx version: nginx\//, ''),
    wrk: out(wrk, ['-v']).split(' [')[0],
  };
}

export function peerVersion(name) {
  try {
    return JSON.parse(readFileSync(join(SCRATCH, name, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

export function gatehouseBuilt() {
  return existsSync(join(ROOT, 'dist', 'src', 'cli.js'));
}

/**
 * Copies the built gateway (dist/, bin/, package.json; node_modules linked) into dir and returns
 * the copy's root. Others may rebuild dist/ while a run is going; the run measures one build.
 */
export function snapshotGatehouse(dir) {
  const root = join(dir, 'gatehouse');
  mkdirSync(root, { recursive: true });
  cpSync(join(ROOT, 'dist'), join(root, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'bin'), join(root, 'bin'), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(root, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
  return root;
}

/**
 * The node flags bin/gatehouse.js runs with (its `#!/usr/bin/env -S node ...` line), so the bench
 * starts `node <flags> bin/gatehouse.js` exactly as the installed command runs.
 */
export function gatehouseNodeFlags(root = ROOT) {
  const first = readFileSync(join(root, 'bin', 'gatehouse.js'), 'utf8').split('\n', 1)[0];
  const m = /^#!\S*env -S node(.*)$/.exec(first);
  return m ? m[1].trim().split(/\s+/).filter(Boolean) : [];
}
