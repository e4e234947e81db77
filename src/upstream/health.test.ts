import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Value } from '@sinclair/typebox/value';
import { HealthChecker, type HealthCheckerOptions } from './health.js';
import { Healthchecks, type HealthchecksConfig } from './schema.js';
import type { Address } from './types.js';
import { createLogger } from '../observability/logger.js';
import { freePort, managedServers } from '../../test/helpers/harness.js';

const servers = managedServers();
const checkers: HealthChecker[] = [];
after(() => {
  for (const c of checkers) c.stop();
});

/** A `healthchecks` block with the schema's defaults filled in, as the config loader gives it. */
function healthchecks(partial: object): HealthchecksConfig {
  return Value.Default(Healthchecks, structuredClone(partial)) as HealthchecksConfig;
}

function address(ip: string, port: number, hostname = ip): Address {
  return { key: `${ip}:${port}`, ip, port, weight: 100, target: `${hostname}:${port}`, hostname, healthy: true, inflight: 0, ewma: 0, ewmaAt: 0 };
}

interface Change {
  address: string;
  healthy: boolean;
  reason: string;
}

interface Checked {
  checker: HealthChecker;
  changes: Change[];
  logs: Record<string, any>[];
}

function checker(config: object, addresses: Address[], options: Partial<HealthCheckerOptions> = {}): Checked {
  const logs: Record<string, any>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  const changes: Change[] = [];
  const c = new HealthChecker({
    upstream: 'up.example',
    config: healthchecks(config),
    logger: createLogger({ level: 'info', destination }),
    hostHeader: (a) => a.target,
    onChange: (a, healthy, reason) => changes.push({ address: a.key, healthy, reason }),
    ...options,
  });
  c.setAddresses(addresses);
  checkers.push(c);
  return { checker: c, changes, logs };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, condition: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await sleep(10);
  }
}

describe('passive health checks', () => {
  it('N consecutive failure statuses trip an address; a success in between resets; other statuses count as neither', () => {
    const a = address('10.0.0.1', 80, 'svc.example');
    const { checker: c, changes, logs } = checker({ passive: { unhealthy: { http_failures: 3 } } }, [a]);
    assert.equal(c.passiveEnabled, true);
    assert.equal(c.activeEnabled, false);
    for (const s of [500, 500, 200, 500, 503]) c.reportStatus(a, s);
    assert.equal(a.healthy, true, 'the 200 reset the count');
    for (const s of [404, 418, 599, 1200, -1]) c.reportStatus(a, s);
    assert.equal(a.healthy, true, 'statuses in neither list do not count');
    c.reportStatus(a, 429);
    assert.equal(a.healthy, false, '500, 503, (neither), 429: three in a row');
    assert.deepEqual(changes, [{ address: '10.0.0.1:80', healthy: false, reason: 'passive: 3 http failures in a row (last status 429)' }]);
    const st = c.status(a);
    assert.equal(st.health, 'UNHEALTHY');
    assert.equal(st.reason, 'passive: 3 http failures in a row (last status 429)');
    assert.ok(Math.abs(st.since - Date.now()) < 1000);
    // No healthy.successes: proxied successes do not bring it back; more failures change nothing.
    for (const s of [200, 500, 500, 500, 200]) c.reportStatus(a, s);
    assert.equal(a.healthy, false);
    assert.equal(changes.length, 1);
    assert.equal(logs.length, 1, 'one log line per change');
    assert.equal(logs[0].level, 40, 'warn');
    assert.equal(logs[0].upstream, 'up.example');
    assert.equal(logs[0].target, 'svc.example:80');
    assert.equal(logs[0].address, '10.0.0.1:80');
    assert.equal(logs[0].reason, 'passive: 3 http failures in a row (last status 429)');
  });

  it('timeouts and tcp failures are counted separately, each against its own threshold', () => {
    const a = address('10.0.0.1', 80);
    const b = address('10.0.0.2', 80);
    const { checker: c, changes } = checker({ passive: { unhealthy: { tcp_failures: 2, timeouts: 3 } } }, [a, b]);
    c.reportFailure(a, 'tcp');
    c.reportFailure(a, 'timeout');
    c.reportFailure(a, 'timeout');
    assert.equal(a.healthy, true, '1 tcp failure, 2 timeouts');
    c.reportFailure(a, 'tcp');
    assert.equal(a.healthy, false);
    for (const kind of ['timeout', 'tcp', 'timeout'] as const) c.reportFailure(b, kind);
    assert.equal(b.healthy, true);
    c.reportFailure(b, 'timeout');
    assert.equal(b.healthy, false);
    assert.deepEqual(
      changes.map((ch) => ch.reason),
      ['passive: 2 tcp failures in a row', 'passive: 3 timeouts in a row'],
    );
    // http_failures is 0: failure statuses never trip.
    const d = address('10.0.0.3', 80);
    c.setAddresses([a, b, d]);
    for (let i = 0; i < 20; i++) c.reportStatus(d, 500);
    assert.equal(d.healthy, true);
  });

  it('healthy.successes in a row bring an address back; a failure in between resets them', () => {
    const a = address('10.0.0.1', 80);
    const { checker: c, changes, logs } = checker({ passive: { healthy: { successes: 2 }, unhealthy: { http_failures: 2 } } }, [a]);
    c.reportStatus(a, 500);
    c.reportStatus(a, 502); // in neither list
    c.reportStatus(a, 503);
    assert.equal(a.healthy, false);
    c.reportStatus(a, 200);
    c.reportStatus(a, 500);
    c.reportStatus(a, 204);
    assert.equal(a.healthy, false, 'the 500 reset the successes');
    c.reportStatus(a, 301);
    assert.equal(a.healthy, true);
    assert.equal(changes[1].reason, 'passive: 2 successes in a row');
    assert.equal(logs[1].level, 30, 'info');
    // The flip reset the counters: one failure is not enough.
    c.reportStatus(a, 500);
    assert.equal(a.healthy, true);
  });

  it('counters of an address carried over by setAddresses are kept; removed addresses are ignored', () => {
    const a = address('10.0.0.1', 80);
    const b = address('10.0.0.2', 80);
    const { checker: c } = checker({ passive: { unhealthy: { http_failures: 2 } } }, [a]);
    c.reportStatus(a, 500);
    c.setAddresses([a, b]);
    c.reportStatus(a, 500);
    assert.equal(a.healthy, false);
    c.setAddresses([b]);
    c.reportStatus(a, 200);
    c.setHealthy(a, true, 'set by hand (admin API)');
    assert.equal(a.healthy, false, 'not watched any more');
  });

  it('a throwing onChange is logged; the state still changes', () => {
    const a = address('10.0.0.1', 80);
    const { checker: c, logs } = checker({ passive: { unhealthy: { tcp_failures: 1 } } }, [a], {
      onChange: () => {
        throw new Error('boom');
      },
    });
    c.reportFailure(a, 'tcp');
    assert.equal(a.healthy, false);
    assert.ok(logs.some((l) => l.level === 50 && l.err?.message === 'boom'));
  });
});

describe('passive cool-down (half-open)', () => {
  it('with the injected clock: back half-open after the cool-down, one failure of any counted kind trips it again, a success resets', () => {
    let t = 5000;
    const a = address('10.0.0.1', 80);
    const { checker: c, changes } = checker({ passive: { unhealthy: { timeouts: 2, http_failures: 3, cooldown: 10 } } }, [a], { now: () => t });
    c.reportFailure(a, 'timeout');
    c.reportFailure(a, 'timeout');
    assert.equal(a.healthy, false);
    t += 9999;
    assert.equal(c.status(a).health, 'UNHEALTHY');
    t += 1;
    assert.deepEqual(c.status(a), { health: 'HEALTHY', reason: 'passive: cool-down over (half-open)', since: c.status(a).since });
    assert.equal(a.healthy, true);
    c.reportFailure(a, 'timeout');
    assert.equal(a.healthy, false, 'one more timeout trips it at once');
    assert.equal(changes.at(-1)!.reason, 'passive: 2 timeouts in a row');
    // Half-open again: a failure of another counted kind (a 500) trips it too.
    t += 10_000;
    assert.equal(c.status(a).health, 'HEALTHY');
    c.reportStatus(a, 500);
    assert.equal(a.healthy, false, 'one 500 trips it at once');
    // Cool-down again, noticed by the next passive report (a success): it stays healthy and the
    // success resets the half-open counters, so one timeout is not enough any more.
    t += 10_000;
    c.reportStatus(a, 200);
    assert.equal(a.healthy, true);
    c.reportFailure(a, 'timeout');
    assert.equal(a.healthy, true);
    assert.deepEqual(
      changes.map((ch) => ch.healthy),
      [false, true, false, true, false, true],
    );
  });

  it('no cool-down for addresses made unhealthy by hand', () => {
    let t = 0;
    const a = address('10.0.0.1', 80);
    const { checker: c } = checker({ passive: { unhealthy: { timeouts: 1, cooldown: 1 } } }, [a], { now: () => t });
    c.setHealthy(a, false, 'set by hand (admin API)');
    t += 60_000;
    assert.equal(c.status(a).health, 'UNHEALTHY');
    // Nor when a passive trip is then confirmed by hand.
    c.setHealthy(a, true, 'set by hand (admin API)');
    c.reportFailure(a, 'timeout');
    c.setHealthy(a, false, 'set by hand (admin API)');
    t += 60_000;
    assert.deepEqual(c.status(a).health, 'UNHEALTHY');
    assert.equal(c.status(a).reason, 'set by hand (admin API)');
  });

  it('with a real 0.2 s cool-down the address comes back by itself', async () => {
    const a = address('10.0.0.1', 80);
    const { checker: c, changes } = checker({ passive: { unhealthy: { tcp_failures: 2, cooldown: 0.2 } } }, [a]);
    c.reportFailure(a, 'tcp');
    c.reportFailure(a, 'tcp');
    const tripped = performance.now();
    assert.equal(a.healthy, false);
    await waitFor('cool-down', () => a.healthy);
    assert.ok(performance.now() - tripped >= 190, 'not before the cool-down');
    assert.equal(changes.at(-1)!.reason, 'passive: cool-down over (half-open)');
    c.reportFailure(a, 'tcp');
    assert.equal(a.healthy, false, 'half-open: one tcp failure trips it');
    await waitFor('second cool-down', () => a.healthy);
    c.reportStatus(a, 200);
    c.reportFailure(a, 'tcp');
    assert.equal(a.healthy, true, 'the success closed the circuit');
  });
});

describe('active health checks', () => {
  it('http: unhealthy after http_failures failing probes, healthy after successes; Host, path, headers and User-Agent', async () => {
    let code = 500;
    const up = await servers.upstream((_req, res) => {
      res.writeHead(code, { 'content-type': 'text/plain' });
      res.end('some body to discard');
    });
    const a = address('127.0.0.1', up.port, 'svc.example');
    const { checker: c, changes } = checker(
      {
        active: {
          http_path: '/status',
          headers: { 'X-Probe': ['yes'] },
          healthy: { interval: 0.05, successes: 2 },
          unhealthy: { interval: 0.05, http_failures: 2 },
        },
      },
      [a],
    );
    assert.equal(c.activeEnabled, true);
    assert.equal(c.passiveEnabled, false);
    c.start();
    await waitFor('unhealthy', () => !a.healthy);
    assert.equal(changes[0].reason, 'active: 2 http failures in a row (last status 500)');
    assert.equal(c.status(a).health, 'UNHEALTHY');
    code = 200;
    await waitFor('healthy', () => a.healthy);
    assert.equal(changes[1].reason, 'active: 2 successful probes in a row');
    c.stop();
    assert.ok(up.requests.length >= 4);
    for (const r of up.requests) {
      assert.equal(r.method, 'GET');
      assert.equal(r.url, '/status');
      assert.equal(r.headers.host, `svc.example:${up.port}`);
      assert.equal(r.headers['user-agent'], 'gatehouse-healthcheck');
      assert.equal(r.headers['x-probe'], 'yes');
      assert.equal(r.headers.connection, 'close', 'a fresh connection per probe');
    }
  });

  it('http: a server that accepts but never answers gives timeouts', async () => {
    const up = await servers.upstream(() => undefined);
    const a = address('127.0.0.1', up.port);
    const { checker: c, changes } = checker({ active: { timeout: 0.1, healthy: { interval: 0.05 }, unhealthy: { timeouts: 2, tcp_failures: 1 } } }, [a]);
    c.start();
    await waitFor('unhealthy', () => !a.healthy);
    assert.equal(changes[0].reason, 'active: 2 probe timeouts in a row');
  });

  it('http: a closed port gives tcp failures', async () => {
    const port = await freePort();
    const a = address('127.0.0.1', port);
    const { checker: c, changes } = checker({ active: { healthy: { interval: 0.05 }, unhealthy: { tcp_failures: 2, timeouts: 1 } } }, [a]);
    c.start();
    await waitFor('unhealthy', () => !a.healthy);
    assert.equal(changes[0].reason, 'active: 2 tcp failures in a row');
  });

  it('tcp: a listening port is a success, a closed port a tcp failure', async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    after(() => new Promise<void>((r) => server.close(() => r())));
    const open = address('127.0.0.1', (server.address() as net.AddressInfo).port);
    const closed = address('127.0.0.1', await freePort());
    const { checker: c, changes } = checker(
      { active: { type: 'tcp', healthy: { interval: 0.05, successes: 1 }, unhealthy: { interval: 0.05, tcp_failures: 1 } } },
      [open, closed],
    );
    c.setHealthy(open, false, 'set by hand (admin API)');
    c.start();
    await waitFor('open healthy, closed unhealthy', () => open.healthy && !closed.healthy);
    c.stop();
    assert.ok(connections >= 1);
    assert.deepEqual(changes.slice(1).sort((x, y) => x.address.localeCompare(y.address)), [
      { address: open.key, healthy: true, reason: 'active: 1 successful probe in a row' },
      { address: closed.key, healthy: false, reason: 'active: 1 tcp failure in a row' },
    ].sort((x, y) => x.address.localeCompare(y.address)));
  });

  it('no more than `concurrency` probes at once', async () => {
    async function peak(concurrency: number): Promise<number> {
      let now = 0;
      let max = 0;
      let total = 0;
      const slow = (_req: IncomingMessage, res: ServerResponse) => {
        now++;
        total++;
        max = Math.max(max, now);
        setTimeout(() => {
          now--;
          res.end('ok');
        }, 80);
      };
      const ups = await Promise.all([servers.upstream(slow), servers.upstream(slow), servers.upstream(slow)]);
      const { checker: c } = checker({ active: { concurrency, healthy: { interval: 0.03 } } }, ups.map((u) => address('127.0.0.1', u.port)));
      c.start();
      await waitFor('probes', () => total >= 6);
      c.stop();
      return max;
    }
    assert.equal(await peak(1), 1);
    assert.equal(await peak(3), 3, 'the test can see overlapping probes');
  });

  it('https: SNI (configured, the target host name, none for an IP) and certificate verification', async (t) => {
    let openssl = true;
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-health-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    try {
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-subj', '/CN=probe.example', '-addext', 'subjectAltName=DNS:probe.example', '-days', '2'],
        { cwd: dir, stdio: 'pipe' },
      );
    } catch {
      openssl = false;
    }
    if (!openssl) return t.skip('no openssl');
    const names: (string | false | null)[] = [];
    const server = https.createServer({ cert: readFileSync(join(dir, 'c.pem')), key: readFileSync(join(dir, 'k.pem')) }, (req, res) => {
      names.push((req.socket as import('node:tls').TLSSocket).servername);
      res.end('ok');
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    after(() => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    });
    const port = (server.address() as net.AddressInfo).port;
    /** The reason of the first change a probe makes: healthy addresses can only fail, unhealthy ones only recover. */
    const probeOnce = async (active: object, hostname: string, healthy: boolean): Promise<string> => {
      const a = address('127.0.0.1', port, hostname);
      a.healthy = healthy;
      const { checker: c, changes } = checker(
        { active: { type: 'https', healthy: { interval: 0.05, successes: 1 }, unhealthy: { interval: 0.05, tcp_failures: 1 }, ...active } },
        [a],
      );
      c.start();
      await waitFor('a probe', () => changes.length > 0);
      c.stop();
      return changes[0].reason;
    };
    const ok = 'active: 1 successful probe in a row';
    assert.equal(await probeOnce({ https_verify_certificate: false }, 'probe.example', false), ok);
    assert.deepEqual(names, ['probe.example'], 'SNI: the target host name');
    assert.equal(await probeOnce({ https_verify_certificate: false }, '127.0.0.1', false), ok);
    assert.equal(names[1], false, 'no SNI for an IP');
    assert.equal(await probeOnce({ https_verify_certificate: false, https_sni: 'other.example' }, 'probe.example', false), ok);
    assert.equal(names[2], 'other.example', 'SNI: https_sni');
    assert.equal(await probeOnce({}, 'probe.example', true), 'active: 1 tcp failure in a row', 'a self-signed certificate fails verification');
    assert.equal(names.length, 3);
  });
});

describe('by hand, status() and stop()', () => {
  it('HEALTHCHECKS_OFF without checks, UNHEALTHY when set by hand; changes logged once', () => {
    const a = address('10.0.0.1', 80);
    const { checker: c, changes, logs } = checker({}, [a]);
    assert.equal(c.activeEnabled, false);
    assert.equal(c.passiveEnabled, false);
    assert.deepEqual(c.status(a), { health: 'HEALTHCHECKS_OFF', reason: '', since: 0 });
    c.reportStatus(a, 500);
    c.reportFailure(a, 'tcp');
    c.start();
    c.setHealthy(a, false, 'set by hand (admin API)');
    c.setHealthy(a, false, 'set by hand (admin API)');
    assert.equal(a.healthy, false);
    const st = c.status(a);
    assert.equal(st.health, 'UNHEALTHY');
    assert.equal(st.reason, 'set by hand (admin API)');
    assert.ok(st.since > 0);
    assert.equal(changes.length, 1);
    assert.equal(logs.length, 1);
    c.setHealthy(a, true, 'set by hand (admin API)');
    assert.equal(c.status(a).health, 'HEALTHCHECKS_OFF');
    assert.equal(changes.length, 2);
    assert.equal(logs[1].level, 30);
    // An address the checker does not watch: its own flag.
    assert.deepEqual(c.status(address('10.9.9.9', 1)), { health: 'HEALTHCHECKS_OFF', reason: '', since: 0 });
  });

  it('setHealthy resets the counters of both modes', () => {
    const a = address('10.0.0.1', 80);
    const { checker: c } = checker({ passive: { unhealthy: { http_failures: 3 } } }, [a]);
    c.reportStatus(a, 500);
    c.reportStatus(a, 500);
    c.setHealthy(a, true, 'set by hand (admin API)');
    assert.equal(c.status(a).health, 'HEALTHY');
    c.reportStatus(a, 500);
    c.reportStatus(a, 500);
    assert.equal(a.healthy, true);
    c.reportStatus(a, 500);
    assert.equal(a.healthy, false);
  });

  it('stop() aborts probes in flight and nothing fires after it', async () => {
    let hang = false;
    let open = 0;
    const up = await servers.upstream((_req, res) => {
      if (!hang) res.end('ok');
    });
    up.server.on('connection', (s) => {
      open++;
      s.on('close', () => open--);
    });
    const a = address('127.0.0.1', up.port);
    const { checker: c, changes } = checker(
      { active: { timeout: 2, healthy: { interval: 0.05 }, unhealthy: { interval: 0.05, timeouts: 1, tcp_failures: 1 } }, passive: { unhealthy: { http_failures: 1, cooldown: 0.05 } } },
      [a],
    );
    c.start();
    await waitFor('probes', () => up.requests.length >= 2);
    hang = true;
    const seen = up.requests.length;
    await waitFor('a probe hanging', () => up.requests.length > seen);
    c.stop();
    c.stop();
    await waitFor('the probe connection closed (long before its 2 s timeout)', () => open === 0, 200);
    const after = up.requests.length;
    c.start();
    c.reportStatus(a, 500);
    await sleep(400);
    assert.equal(up.requests.length, after, 'no probe after stop()');
    assert.deepEqual(changes, [], 'the aborted probe is not judged');
    assert.equal(a.healthy, true);
  });
});
