import { after } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './harness.js';

const BIN = join(fileURLToPath(new URL('../../../', import.meta.url)), 'bin/gatehouse.js');

export interface GatehouseProcess {
  child: ChildProcess;
  proxy: string;
  admin: string;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * Real `gatehouse start` processes on fresh ports, killed when the test file ends. Resolves once
 * the process logs "gatehouse started".
 */
export function gatehouseProcesses(): (file: string, args?: string[], env?: Record<string, string>) => Promise<GatehouseProcess> {
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
  return async (file, args = [], env = {}) => {
    const proxyPort = await freePort();
    const adminPort = await freePort();
    const child = spawn(process.execPath, [BIN, 'start', '--config', file, '--proxy-listen', `127.0.0.1:${proxyPort}`, '--admin-listen', `127.0.0.1:${adminPort}`, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (out += c));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const deadline = Date.now() + 30_000;
    while (!/gatehouse started/.test(out)) {
      if (child.exitCode !== null) throw new Error(`exited early (${child.exitCode}): ${out}`);
      if (Date.now() > deadline) throw new Error(`not ready: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { child, proxy: `http://127.0.0.1:${proxyPort}`, admin: `http://127.0.0.1:${adminPort}`, output: () => out, exited };
  };
}
