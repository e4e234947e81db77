// The results table (markdown) and the issue's targets, from the aggregated per-target figures.

const MB = 1024 * 1024;
/** A pass during which other processes used this much of one core (percent) is marked noisy. */
export const NOISY_PCT = 20;
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const fmtMs = (n) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const fmtMb = (b) => (b / MB).toFixed(1);
const fmtX = (r) => (r === undefined || !Number.isFinite(r) ? '' : r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`);
const fmtX3 = (r) => (r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(3)}x`);
const fmtK = (n) => `${(n / 1000).toFixed(1)}k`;

export function machineLine(m) {
  return `${m.cpu}, ${m.cores} cores, ${m.memory_gb} GB; Linux ${m.kernel}; Node ${m.node}; nginx ${m.nginx}; ${m.wrk}; ${m.date}`;
}

/** The row a result's ratios are computed against: its target's `ref`, else the plain nginx reference. */
export function referenceOf(results, r) {
  const name = r.target?.ref;
  return results.find((x) => (name ? x.name === name : x.reference) && x.best);
}

export function markdownTable(results) {
  const head = '| target | req/s | x nginx | p50 ms | x nginx | p99 ms | x nginx | errors | idle RSS MB | x nginx | peak RSS MB | x nginx | req/s per pass |';
  const sep = '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|';
  const rows = results.map((r) => {
    if (!r.best) return `| ${r.label} | ${r.note ?? 'not measured'} |  |  |  |  |  |  |  |  |  |  |  |`;
    const ref = referenceOf(results, r);
    const b = r.best;
    const x = (v, rv) => (ref && rv ? fmtX(v / rv) : '');
    const rss = r.direct ? ['', '', '', ''] : [fmtMb(b.idle_rss), x(b.idle_rss, ref?.best.idle_rss), fmtMb(r.peak_rss), x(r.peak_rss, ref?.peak_rss)];
    return `| ${r.label} | ${fmtInt(b.rps)} | ${x(b.rps, ref?.best.rps)} | ${fmtMs(b.p50_ms)} | ${x(b.p50_ms, ref?.best.p50_ms)} | ${fmtMs(b.p99_ms)} | ${x(b.p99_ms, ref?.best.p99_ms)} | ${fmtInt(r.errors)} | ${rss.join(' | ')} | ${r.passes.map((p) => (p.rps ? `${fmtK(p.rps)}${p.other_pct >= NOISY_PCT ? '*' : ''}` : 'failed')).join(' / ')} |`;
  });
  return [head, sep, ...rows].join('\n');
}

/** The issue's targets, as far as this run measured them. Each: { what, target, value, ok }. */
export function checkTargets(results, idle) {
  const by = Object.fromEntries(results.filter((r) => r.best).map((r) => [r.name, r]));
  const rps = (n) => by[n]?.best.rps;
  const out = [];
  const add = (what, target, value, ok, fmt = fmtX3) => out.push({ what, target, value: value === undefined ? 'not measured' : fmt(value), ok: value === undefined ? undefined : ok(value) });
  const ratio = (a, b) => (rps(a) && rps(b) ? rps(a) / rps(b) : undefined);
  add('a: req/s vs nginx', '>= 0.35x (stretch 0.45x)', ratio('gatehouse-a', 'nginx'), (v) => v >= 0.35);
  add('a: p99 vs nginx p99', '<= 3x', by['gatehouse-a'] && by.nginx ? by['gatehouse-a'].best.p99_ms / by.nginx.best.p99_ms : undefined, (v) => v <= 3);
  add('b: req/s vs nginx', '>= 0.28x', ratio('gatehouse-b', 'nginx'), (v) => v >= 0.28);
  add('c: req/s vs a', '>= 0.9x', ratio('gatehouse-c', 'gatehouse-a'), (v) => v >= 0.9);
  add('a vs fast-gateway', '>= 2.5x', ratio('gatehouse-a', 'fast-gateway'), (v) => v >= 2.5);
  add('a vs express-gateway', '>= 8x', ratio('gatehouse-a', 'express-gateway'), (v) => v >= 8);
  add('e (proxy-cache hit) vs a (issue 8: a hit at least as fast as the proxy path)', '>= 1x', ratio('gatehouse-e', 'gatehouse-a'), (v) => v >= 1);
  add('e (proxy-cache hit) vs nginx proxying (issue 8: quoted)', 'quoted', ratio('gatehouse-e', 'nginx'), () => true);
  add('tls: HTTPS req/s vs nginx over HTTPS (issue 9: quoted)', 'quoted', ratio('gatehouse-tls', 'nginx-tls'), () => true);
  add('tls vs a (cost of TLS termination in Gatehouse; nginx over HTTPS vs plain for comparison below)', 'quoted', ratio('gatehouse-tls', 'gatehouse-a'), () => true);
  add('nginx over HTTPS vs plain nginx', 'quoted', ratio('nginx-tls', 'nginx'), () => true);
  add('a: RSS 1 s after the first answer, one worker', '<= 80 MB (see the idle row below)', by['gatehouse-a']?.best.idle_rss, (v) => v <= 80 * MB, (v) => `${fmtMb(v)} MB`);
  if (idle?.settled_idle_rss_bytes) add(`idle RSS after 20 s without traffic (bench/idle-connections.mjs, ${idle.date.slice(0, 10)})`, '<= 80 MB', idle.settled_idle_rss_bytes, (v) => v <= 80 * MB, (v) => `${fmtMb(v)} MB`);
  if (idle) add(`10,000 idle keep-alive connections add (bench/idle-connections.mjs, ${idle.date.slice(0, 10)})`, '<= 250 MB', idle.added_bytes, (v) => v <= 250 * MB, (v) => `${fmtMb(v)} MB`);
  return out;
}

export function targetsTable(checks) {
  const rows = checks.map((c) => `| ${c.what} | ${c.target} | ${c.value} | ${c.ok === undefined ? '-' : c.ok ? 'met' : '**missed**'} |`);
  return ['| issue target | wanted | this run | |', '|---|---|---|---|', ...rows].join('\n');
}
