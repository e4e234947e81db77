// The proxies under test. Each target knows how to start itself (one worker/process, pointing at
// the upstream) and what wrk should send it. Every target gets the same request, GET /api/hello,
// except scenario c, which rotates over one request per route.
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startProcess, cleanEnv, httpGet } from './procs.mjs';
import { startNginxProxy, startNginxTlsProxy } from './nginx.mjs';
import { ensurePeer, gatehouseNodeFlags, ROOT } from './setup.mjs';
import { manyRoutes, requestList, rotatingLua } from './routes.mjs';

const PATH = '/api/hello';
const API_KEY = 'bench-key';

function gatehouseConfig(upstreamPort, routeExtra = {}, top = {}) {
  return {
    _format_version: '3.0',
    // No per-request access log line: none of the other targets writes one either.
    _gatehouse: { access_log: false },
    services: [{ name: 'upstream', url: `http://127.0.0.1:${upstreamPort}`, routes: [{ name: 'api', paths: ['/api'], ...routeExtra }] }],
    ...top,
  };
}

/** With `tls`, the measured port is the HTTPS listener's and the plain one takes any free port. */
function startGatehouse(ctx, name, port, config, workers = 1, { tls = false } = {}) {
  const file = join(ctx.dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  const listen = tls ? ['--proxy-listen', '127.0.0.1:0', '--proxy-listen-tls', `127.0.0.1:${port}`] : ['--proxy-listen', `127.0.0.1:${port}`];
  const args = [join(ctx.gatehouseRoot ?? ROOT, 'bin', 'gatehouse.js'), 'start', '--config', file, ...listen, '--admin-listen', 'off', '--workers', String(workers), '--grace-period', '1'];
  return startProcess(name, process.execPath, [...gatehouseNodeFlags(ctx.gatehouseRoot ?? ROOT), ...(ctx.nodeArgs ?? []), ...args], { logFile: join(ctx.dir, `${name}.out`) });
}

/**
 * The certificate both HTTPS targets serve: ECDSA P-256, self-signed, made once per run with the
 * openssl binary in the run's temp dir.
 */
function benchCertificate(ctx) {
  const cert = join(ctx.dir, 'bench-tls.crt');
  const key = join(ctx.dir, 'bench-tls.key');
  if (!existsSync(cert)) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=localhost', '-days', '2', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'pipe' });
  }
  return { cert, key };
}

/** Gatehouse's default TLS 1.2 cipher list (`_gatehouse.ssl_ciphers`), so nginx offers the same. */
async function gatehouseCiphers(ctx) {
  const { DEFAULT_SSL_CIPHERS } = await import(pathToFileURL(join(ctx.gatehouseRoot ?? ROOT, 'dist', 'src', 'tls', 'policy.js')).href);
  return DEFAULT_SSL_CIPHERS;
}

/** Scenario b's plugin set; the bench skips b until the registry has all of them. */
export const SCENARIO_B_PLUGINS = ['key-auth', 'rate-limiting', 'correlation-id'];

export const TARGETS = [
  {
    name: 'nginx',
    label: 'nginx reverse proxy (keepalive 64)',
    reference: true,
    start: (ctx, port) => startNginxProxy(ctx.nginx, ctx.dir, port, ctx.upstreamPort),
  },
  {
    name: 'gatehouse-a',
    label: 'Gatehouse a: plain proxy, 1 route',
    start: (ctx, port) => startGatehouse(ctx, 'gatehouse-a', port, gatehouseConfig(ctx.upstreamPort)),
  },
  {
    name: 'gatehouse-b',
    label: 'Gatehouse b: key-auth + rate-limiting + correlation-id',
    skip: (ctx) => {
      const missing = SCENARIO_B_PLUGINS.filter((p) => !ctx.plugins.has(p));
      return missing.length ? `skipped: plugin${missing.length > 1 ? 's' : ''} ${missing.join(', ')} not in src/plugins/registry.ts yet` : undefined;
    },
    headers: { apikey: API_KEY },
    /** The plugins must really be on the path: no key -> 401; with it, a rate-limit header. */
    async verify(port) {
      const denied = await httpGet(port, PATH);
      if (denied.status !== 401) throw new Error(`GET ${PATH} without a key answered ${denied.status}, expected 401 from key-auth`);
      const ok = await httpGet(port, PATH, { apikey: API_KEY });
      if (!Object.keys(ok.headers).some((h) => /ratelimit/i.test(h))) throw new Error(`no rate-limit header in ${JSON.stringify(ok.headers)}`);
    },
    start: (ctx, port) =>
      startGatehouse(
        ctx,
        'gatehouse-b',
        port,
        gatehouseConfig(
          ctx.upstreamPort,
          {
            plugins: [
              { name: 'key-auth', config: { key_names: ['apikey'] } },
              // local policy, a limit the run never reaches
              { name: 'rate-limiting', config: { second: 1_000_000_000, policy: 'local' } },
              { name: 'correlation-id', config: {} },
            ],
          },
          { consumers: [{ username: 'bench', keyauth_credentials: [{ key: API_KEY }] }] },
        ),
      ),
  },
  {
    name: 'gatehouse-c',
    label: 'Gatehouse c: 10,000 routes, requests spread over them',
    prepare(ctx) {
      const { services, requests } = manyRoutes(`http://127.0.0.1:${ctx.upstreamPort}`);
      const list = join(ctx.dir, 'gatehouse-c-requests.txt');
      writeFileSync(list, requestList(requests));
      this.lua = rotatingLua(list);
      this.config = { _format_version: '3.0', _gatehouse: { access_log: false }, services };
      // Readiness and sanity checks: a spread of the routes, every kind included.
      this.checks = requests.filter((_, i) => i % 97 === 0 || i === requests.length - 1).map((r) => ({ path: r.path, headers: { host: r.host } }));
    },
    start(ctx, port) {
      const cfg = structuredClone(this.config);
      for (const s of cfg.services) s.url = `http://127.0.0.1:${ctx.upstreamPort}`;
      return startGatehouse(ctx, 'gatehouse-c', port, cfg);
    },
  },
  {
    name: 'gatehouse-d',
    label: 'Gatehouse d: plain proxy, --workers 2',
    workers: 2,
    start: (ctx, port) => startGatehouse(ctx, 'gatehouse-d', port, gatehouseConfig(ctx.upstreamPort), 2),
  },
  {
    name: 'gatehouse-e',
    label: 'Gatehouse e: proxy-cache hit (memory strategy)',
    skip: (ctx) => (ctx.plugins.has('proxy-cache') ? undefined : 'skipped: proxy-cache not in src/plugins/registry.ts yet'),
    /** Every measured request must be a hit: the first request fills the cache, the next one hits. */
    async verify(port) {
      await httpGet(port, PATH);
      const hit = await httpGet(port, PATH);
      const status = hit.headers['x-cache-status'];
      if (status !== 'Hit') throw new Error(`second GET ${PATH} answered X-Cache-Status ${status}, expected Hit`);
    },
    start: (ctx, port) =>
      startGatehouse(ctx, 'gatehouse-e', port, gatehouseConfig(ctx.upstreamPort, { plugins: [{ name: 'proxy-cache', config: { strategy: 'memory', cache_ttl: 3600 } }] })),
  },
  {
    name: 'gatehouse-f',
    label: 'Gatehouse f: upstream of 3 targets (round-robin, passive checks)',
    start: (ctx, port) =>
      startGatehouse(ctx, 'gatehouse-f', port, {
        ...gatehouseConfig(ctx.upstreamPort),
        services: [{ name: 'upstream', host: 'bench-pool', routes: [{ name: 'api', paths: ['/api'] }] }],
        upstreams: [
          {
            name: 'bench-pool',
            healthchecks: { passive: { unhealthy: { tcp_failures: 3, timeouts: 3, http_failures: 5 } } },
            targets: [ctx.upstreamPort, ...ctx.extraUpstreamPorts].map((p) => ({ target: `127.0.0.1:${p}` })),
          },
        ],
      }),
  },
  {
    name: 'nginx-tls',
    label: 'nginx reverse proxy over HTTPS, same certificate (reference for the HTTPS rows)',
    tls: true,
    ref: 'nginx-tls',
    async prepare(ctx) {
      this.certificate = { ...benchCertificate(ctx), ciphers: await gatehouseCiphers(ctx) };
    },
    start(ctx, port) {
      return startNginxTlsProxy(ctx.nginx, ctx.dir, port, ctx.upstreamPort, this.certificate);
    },
  },
  {
    name: 'gatehouse-tls',
    label: 'Gatehouse tls: as a, over HTTPS (ratios vs nginx over HTTPS)',
    tls: true,
    ref: 'nginx-tls',
    prepare(ctx) {
      this.certificate = benchCertificate(ctx);
    },
    start(ctx, port) {
      const { cert, key } = this.certificate;
      const config = gatehouseConfig(ctx.upstreamPort, {}, { certificates: [{ cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') }] });
      return startGatehouse(ctx, 'gatehouse-tls', port, config, 1, { tls: true });
    },
  },
  {
    name: 'fast-gateway',
    label: 'fast-gateway 3.4.7',
    prepare(ctx) {
      this.pkg = ensurePeer('fast-gateway');
      this.script = join(ctx.dir, 'fast-gateway.cjs');
      writeFileSync(
        this.script,
        `const gateway = require(${JSON.stringify(this.pkg)});
const [port, upstream] = process.argv.slice(2);
gateway({ routes: [{ prefix: '/api', target: 'http://127.0.0.1:' + upstream }] })
  .start(Number(port), '127.0.0.1')
  .then(() => console.log('fast-gateway listening on ' + port));
`,
      );
    },
    start(ctx, port) {
      return startProcess('fast-gateway', process.execPath, [this.script, String(port), String(ctx.upstreamPort)], { logFile: join(ctx.dir, 'fast-gateway.out') });
    },
  },
  {
    name: 'express-gateway',
    label: 'express-gateway 1.16',
    prepare(ctx) {
      this.pkg = ensurePeer('express-gateway');
      this.script = join(ctx.dir, 'express-gateway.cjs');
      writeFileSync(
        this.script,
        `require(${JSON.stringify(this.pkg)})().load(process.argv[2]).run();
`,
      );
    },
    start(ctx, port) {
      // A fresh config folder per start: gateway.config.yml with this port, the package's
      // system.config.yml, and models/ copied from the package's lib/config (it will not start without).
      const cfgDir = join(ctx.dir, `express-gateway-config-${port}`);
      mkdirSync(cfgDir, { recursive: true });
      cpSync(join(this.pkg, 'lib', 'config', 'models'), join(cfgDir, 'models'), { recursive: true });
      copyFileSync(join(this.pkg, 'lib', 'config', 'system.config.yml'), join(cfgDir, 'system.config.yml'));
      writeFileSync(
        join(cfgDir, 'gateway.config.yml'),
        `http:
  port: ${port}
  hostname: 127.0.0.1
apiEndpoints:
  api:
    host: '*'
    paths: ['/api', '/api/*']
serviceEndpoints:
  backend:
    url: 'http://127.0.0.1:${ctx.upstreamPort}'
policies:
  - proxy
pipelines:
  default:
    apiEndpoints:
      - api
    policies:
      - proxy:
          - action:
              serviceEndpoint: backend
              changeOrigin: true
`,
      );
      return startProcess('express-gateway', process.execPath, [this.script, cfgDir], {
        logFile: join(ctx.dir, 'express-gateway.out'),
        env: cleanEnv({ LOG_LEVEL: 'warn', EG_DB_EMULATE: 'true' }),
      });
    },
  },
];

export const REQUEST_PATH = PATH;
