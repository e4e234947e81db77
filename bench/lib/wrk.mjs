// Runs wrk and reads its result from a Lua done() hook (exact microseconds, error counts by kind).
// A script with only done() keeps wrk's static-request fast path; request() is added only when a
// scenario needs rotating requests.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, logTail } from './procs.mjs';

const DONE_LUA = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "\\nBENCH_JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"bytes\\":%d,\\"p50_us\\":%.0f,\\"p90_us\\":%.0f,\\"p99_us\\":%.0f,\\"max_us\\":%.0f,\\"mean_us\\":%.1f,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"status\\":%d,\\"timeout\\":%d}\\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;

/** Writes the wrk script for a target: its own Lua (if any) plus the done() reporter. */
export function writeWrkScript(dir, name, lua = '') {
  const file = join(dir, `${name}.lua`);
  writeFileSync(file, `${lua}\n${DONE_LUA}`);
  return file;
}

/**
 * One wrk run. Returns { rps, p50_ms, p90_ms, p99_ms, max_ms, requests, errors, non2xx, socketErrors, raw }.
 */
export async function runWrk(wrkBin, { dir, name, port, path, headers = {}, script, seconds, threads = 1, connections = 50, scheme = 'http' }) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(`${scheme}://127.0.0.1:${port}${path}`);
  const logFile = join(dir, `wrk-${name}-${Date.now()}.out`);
  const proc = startProcess(`wrk ${name}`, wrkBin, args, { logFile });
  const code = await proc.exited;
  const raw = readFileSync(logFile, 'utf8');
  const m = /BENCH_JSON (\{.*\})/.exec(raw);
  if (code !== 0 || !m) throw new Error(`wrk failed (exit ${code})${logTail(logFile)}`);
  const j = JSON.parse(m[1]);
  const socketErrors = j.connect + j.read + j.write + j.timeout;
  return {
    rps: j.requests / (j.duration_us / 1e6),
    p50_ms: j.p50_us / 1000,
    p90_ms: j.p90_us / 1000,
    p99_ms: j.p99_us / 1000,
    max_ms: j.max_us / 1000,
    requests: j.requests,
    non2xx: j.status,
    socketErrors,
    errors: j.status + socketErrors,
    raw: raw.replace(/\nBENCH_JSON .*\n?/, '\n').trim(),
  };
}
