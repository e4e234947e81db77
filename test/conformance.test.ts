import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startUpstream, startGateway, type Upstream, type TestGateway } from './helpers/harness.js';

// Compiled to dist/test/: the repository root is two levels up, the shared suite beside it.
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RUNNER = join(ROOT, '../shared/conformance/run-http11probe.mjs');

interface CaseResult {
  id: string;
  scored: boolean;
  verdict: 'pass' | 'warn' | 'fail';
  observed: string;
}

/** The upstream the suite expects: /echo answers with the received headers as "name: value" lines, anything else with 200 OK. */
function echoUpstream(req: IncomingMessage, res: ServerResponse): void {
  let body = 'OK';
  if ((req.url ?? '').split('?')[0] === '/echo') {
    const lines: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    body = `${lines.join('\n')}\n`;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function runSuite(port: number): Promise<{ results: CaseResult[]; summary: string }> {
  return new Promise((resolvePromise, reject) => {
    // Asynchronous on purpose: the gateway under test runs in this process.
    execFile(process.execPath, [RUNNER, '--port', String(port), '--json'], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      try {
        resolvePromise(JSON.parse(stdout));
      } catch {
        reject(new Error(`runner produced no report (${err?.message ?? 'no error'}): ${stderr}`));
      }
    });
  });
}

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('Http11Probe suite: no scored case fails against the proxy listener', { timeout: 300_000 }, async (t) => {
  if (!existsSync(RUNNER)) {
    t.skip(`conformance runner not found at ${RUNNER}`);
    return;
  }
  const up: Upstream = await startUpstream(echoUpstream);
  cleanup.push(up.close);
  const gw: TestGateway = await startGateway({
    _format_version: '3.0',
    services: [{ name: 's', url: up.url, routes: [{ name: 'all', paths: ['/'], strip_path: false }] }],
  });
  cleanup.push(gw.close);

  const { results, summary } = await runSuite(gw.port);
  const scored = results.filter((r) => r.scored);
  const warned = scored.filter((r) => r.verdict === 'warn').map((r) => r.id);
  const failed = scored.filter((r) => r.verdict === 'fail').map((r) => `${r.id} (${r.observed})`);
  const unscoredFailed = results.filter((r) => !r.scored && r.verdict === 'fail').map((r) => r.id);
  t.diagnostic(`${summary}; ${warned.length} scored warnings: ${warned.join(', ') || 'none'}`);
  if (unscoredFailed.length) t.diagnostic(`unscored cases failing (informational): ${unscoredFailed.join(', ')}`);
  if (failed.length) console.log(`failing scored cases:\n  ${failed.join('\n  ')}`);
  assert.deepEqual(failed, [], `scored cases failed: ${failed.join(', ')}`);
});
