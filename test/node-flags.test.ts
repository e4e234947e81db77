import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS, withNodeFlags } from '../src/runtime/node-flags.js';
import { gatehouseProcesses } from './helpers/processes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('bin/gatehouse.js runs node with NODE_FLAGS, and npm start does too', () => {
  const shebang = readFileSync(join(ROOT, 'bin/gatehouse.js'), 'utf8').split('\n', 1)[0]!;
  assert.equal(shebang, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.start!.includes(`node ${NODE_FLAGS.join(' ')} bin/gatehouse.js`));
});

test('withNodeFlags adds the flags unless the caller chose a value', () => {
  assert.deepEqual(withNodeFlags(['--inspect']), ['--inspect', ...NODE_FLAGS]);
  assert.deepEqual(withNodeFlags(['--max-semi-space-size=16']), ['--max-semi-space-size=16']);
});

test('--workers 2: the workers run with the flags even when the primary was started without them', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-flags-'));
  const file = join(dir, 'gatehouse.json');
  writeFileSync(file, JSON.stringify({ _format_version: '3.0' }));
  const node = await gatehouseProcesses()(file, ['--workers', '2']);
  const deadline = Date.now() + 10_000;
  let workers: string[][] = [];
  while (Date.now() < deadline) {
    workers = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .map((p) => {
        try {
          const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
          const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
          return ppid === node.child.pid ? readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0') : undefined;
        } catch {
          return undefined;
        }
      })
      .filter((c): c is string[] => c !== undefined);
    if (workers.length === 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(workers.length, 2);
  for (const argv of workers) for (const flag of NODE_FLAGS) assert.ok(argv.includes(flag), argv.join(' '));
});
