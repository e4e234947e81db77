#!/usr/bin/env node
// node bench/cpuprofile-top.mjs FILE.cpuprofile [--top N] [--markdown] [--from-ms MS]
// Self time from a V8 .cpuprofile (node --cpu-prof), summed by function name + script url, and by
// area (node core module, npm package, Gatehouse source folder, V8 pseudo-frames like GC).
// --from-ms: ignore the first MS milliseconds of the profile (start-up: module loading, config
// compilation), so what remains is the request path.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opts, positionals } = parseArgs({ options: { top: { type: 'string', default: '15' }, markdown: { type: 'boolean', default: false }, 'from-ms': { type: 'string', default: '0' } }, allowPositionals: true });
if (!positionals[0]) {
  console.error('usage: node bench/cpuprofile-top.mjs FILE.cpuprofile [--top N] [--markdown]');
  process.exit(2);
}

export function selfTimes(profile, fromUs = 0) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map(); // node id -> microseconds
  // timeDeltas[i] is the gap before sample i; the time after a sample belongs to it.
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i];
    if (at < fromUs) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const fn = new Map();
  const area = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const { functionName, url } = byId.get(id).callFrame;
    const name = functionName || '(anonymous)';
    total += us;
    if (name === '(idle)') idle += us;
    const key = `${name}\t${shortUrl(url)}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const a = areaOf(name, url);
    area.set(a, (area.get(a) ?? 0) + us);
  }
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  return { total, idle, functions: sorted(fn), areas: sorted(area) };
}

function shortUrl(url) {
  if (!url) return '';
  return url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/dist\/src\//, 'src/');
}

function areaOf(name, url) {
  if (!url) return name.startsWith('(') ? name : '(native/V8 builtins)';
  const mod = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (mod) return `npm: ${mod[1]}`;
  const src = /\/dist\/src\/([^/]+)(\/|\.js)/.exec(url);
  if (src) return `gatehouse: src/${src[1]}${src[2] === '.js' ? '.ts' : '/'}`;
  const core = /^node:(?:internal\/)?([a-z_]+)/.exec(url);
  if (core) return `node core: ${core[1]}`;
  return url;
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, '/'));
if (isMain) {
  const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
  const fromMs = Number(opts['from-ms']);
  const { total, idle, functions, areas } = selfTimes(profile, fromMs * 1000);
  const busy = total - idle;
  const top = Number(opts.top);
  const pct = (us) => `${((us / busy) * 100).toFixed(1)}%`;
  const ms = (us) => (us / 1000).toFixed(0);
  console.log(`profile: ${fromMs ? `from ${fromMs} ms on, ` : ''}${(total / 1e6).toFixed(1)} s sampled, ${(idle / 1e6).toFixed(1)} s idle; percentages are of the ${(busy / 1e6).toFixed(1)} s not idle\n`);
  if (opts.markdown) {
    console.log('| # | self ms | % busy | function | script |\n|--:|--:|--:|---|---|');
    functions.filter(([k]) => !k.startsWith('(idle)')).slice(0, top).forEach(([k, us], i) => {
      const [name, url] = k.split('\t');
      console.log(`| ${i + 1} | ${ms(us)} | ${pct(us)} | \`${name}\` | ${url ? `\`${url}\`` : ''} |`);
    });
    console.log('\n| area | self ms | % busy |\n|---|--:|--:|');
    for (const [a, us] of areas.filter(([a]) => a !== '(idle)').slice(0, top)) console.log(`| ${a} | ${ms(us)} | ${pct(us)} |`);
  } else {
    for (const [k, us] of functions.filter(([k]) => !k.startsWith('(idle)')).slice(0, top)) {
      const [name, url] = k.split('\t');
      console.log(`${ms(us).padStart(7)} ms ${pct(us).padStart(6)}  ${name}  ${url}`);
    }
    console.log('\nby area:');
    for (const [a, us] of areas.filter(([a]) => a !== '(idle)').slice(0, top)) console.log(`${ms(us).padStart(7)} ms ${pct(us).padStart(6)}  ${a}`);
  }
}
