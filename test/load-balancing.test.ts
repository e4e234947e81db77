import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { managedServers, send, type Upstream } from './helpers/harness.js';
import { startTestNode } from './helpers/node.js';
import { TestDnsServer } from './helpers/dns-server.js';
import { ConfigError } from '../src/lib/errors.js';

const { upstream: startUpstream, gateway: startGateway } = managedServers();

/** An upstream answering its own name, so the client sees which target served it. */
async function named(name: string, handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Upstream> {
  return startUpstream(
    handler ??
      ((req, res) => {
        const body = JSON.stringify({ target: name, host: req.headers.host });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      }),
  );
}

function balanced(targets: { target: string; weight?: number }[], upstream: Record<string, unknown> = {}, service: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    _format_version: '3.0',
    upstreams: [{ name: 'backend.internal', ...upstream, targets }],
    services: [{ name: 'svc', host: 'backend.internal', port: 80, routes: [{ name: 'r', paths: ['/'] }], ...service }],
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
after(() => agent.destroy());

/** GET through a shared keep-alive agent (many requests, few sockets). */
function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
  });
}

async function tally(url: string, n: number, concurrency = 20, headers?: (i: number) => Record<string, string>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const r = await get(url, headers?.(i));
        const key = r.status === 200 ? (JSON.parse(r.body) as { target: string }).target : `status ${r.status}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }),
  );
  return counts;
}

function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

test('weighted round-robin spreads 10,000 requests within 2% of the weights', async () => {
  const [a, b, c] = await Promise.all([named('a'), named('b'), named('c')]);
  const gw = await startGateway(
    balanced([
      { target: `127.0.0.1:${a.port}`, weight: 100 },
      { target: `127.0.0.1:${b.port}`, weight: 200 },
      { target: `127.0.0.1:${c.port}`, weight: 300 },
    ]),
  );
  const n = 10_000;
  const counts = await tally(`${gw.url}/x`, n);
  for (const [name, share] of [
    ['a', 1 / 6],
    ['b', 2 / 6],
    ['c', 3 / 6],
  ] as const) {
    const got = (counts.get(name) ?? 0) / n;
    assert.ok(Math.abs(got - share) < 0.02, `${name}: ${got} vs ${share} (${JSON.stringify([...counts])})`);
  }
});

test('the Host header upstream is the target host (or upstream.host_header), not the upstream name', async () => {
  const a = await named('a');
  const gw = await startGateway(balanced([{ target: `localhost:${a.port}` }]));
  const r = await send(`${gw.url}/h`);
  assert.equal(r.status, 200);
  assert.equal(r.json().host, `localhost:${a.port}`);
  gw.gateway.reload(balanced([{ target: `localhost:${a.port}` }], { host_header: 'api.example.com' }));
  assert.equal((await send(`${gw.url}/h`)).json().host, `api.example.com:${a.port}`);
  gw.gateway.reload(balanced([{ target: `localhost:${a.port}` }], {}, { routes: [{ name: 'r', paths: ['/'], preserve_host: true }] }));
  assert.equal((await send(`${gw.url}/h`, { headers: { host: 'client.example' } })).json().host, 'client.example');
});

test('no target, or only drained ones: 503 "failure to get a peer from the ring-balancer"', async () => {
  const a = await named('a');
  const gw = await startGateway(balanced([{ target: `127.0.0.1:${a.port}`, weight: 0 }]));
  const r = await send(`${gw.url}/`);
  assert.equal(r.status, 503);
  assert.equal(r.json().message, 'failure to get a peer from the ring-balancer');
  assert.equal(a.requests.length, 0);
  gw.gateway.reload(balanced([]));
  assert.equal((await send(`${gw.url}/`)).status, 503);
});

test('a refused connection is retried on another target; passive checks then take the dead target out', async () => {
  const a = await named('a');
  const dead = await closedPort();
  const gw = await startGateway(
    balanced(
      [
        { target: `127.0.0.1:${a.port}` },
        { target: `127.0.0.1:${dead}` },
      ],
      { healthchecks: { passive: { unhealthy: { tcp_failures: 1 } } } },
    ),
  );
  const counts = await tally(`${gw.url}/`, 50, 1);
  assert.deepEqual([...counts], [['a', 50]]);
  const failures = gw.logs.filter((l) => l.msg === 'upstream request failed');
  assert.equal(failures.length, 0, 'no request failed for the client');
  const tripped = gw.logs.filter((l) => typeof l.msg === 'string' && /unhealthy/i.test(String(l.msg)) && JSON.stringify(l).includes(String(dead)));
  assert.ok(tripped.length >= 1, 'the dead target was marked unhealthy');
});

test('retries go to a different target; with retries: 0 the failure reaches the client', async () => {
  const dead = await closedPort();
  const a = await named('a');
  // Round-robin would pick the dead target for every other request: retries must not pick it again.
  const gw = await startGateway(balanced([{ target: `127.0.0.1:${dead}` }, { target: `127.0.0.1:${a.port}` }], {}, { retries: 1 }));
  const counts = await tally(`${gw.url}/`, 20, 1);
  assert.deepEqual([...counts], [['a', 20]]);
  gw.gateway.reload(balanced([{ target: `127.0.0.1:${dead}` }, { target: `127.0.0.1:${a.port}` }], {}, { retries: 0 }));
  const again = await tally(`${gw.url}/`, 20, 1);
  assert.equal(again.get('status 502'), 10);
  assert.equal(again.get('a'), 10);
});

test('a POST is never retried once its body started streaming to a target', async () => {
  // Target "x" reads part of the body, then drops the connection; "y" would answer.
  const x = await startUpstream(
    (req) => {
      req.once('data', () => req.socket.destroy());
    },
    { streaming: true },
  );
  const y = await named('y');
  const gw = await startGateway(balanced([{ target: `127.0.0.1:${x.port}` }, { target: `127.0.0.1:${y.port}` }]));
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${gw.url}/upload`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.write('first chunk ');
    setTimeout(() => req.end('second chunk'), 200);
  });
  assert.equal(status, 502);
  assert.equal(x.requests.length, 1);
  assert.equal(y.requests.length, 0, 'not replayed on the other target');

  // Refused before anything was sent: a POST goes to the next target.
  const dead = await closedPort();
  gw.gateway.reload(balanced([{ target: `127.0.0.1:${dead}` }, { target: `127.0.0.1:${y.port}` }]));
  for (let i = 0; i < 4; i++) {
    const r = await send(`${gw.url}/upload`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 200);
  }
  assert.equal(y.requests.length, 4);
  assert.ok(y.requests.every((r) => r.body.toString() === 'payload'));
});

test('consistent-hashing: a key sticks to a target; a fourth target keeps more than 60% of keys in place', async () => {
  const servers = await Promise.all(['a', 'b', 'c', 'd'].map((n) => named(n)));
  const targets = servers.map((s) => ({ target: `127.0.0.1:${s.port}` }));
  const upstream = { algorithm: 'consistent-hashing', hash_on: 'header', hash_on_header: 'x-user' };
  const gw = await startGateway(balanced(targets.slice(0, 3), upstream));
  const keys = Array.from({ length: 600 }, (_, i) => `user-${i}`);
  const placement = async () => {
    const out = new Map<string, string>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < keys.length) {
          const k = keys[next++]!;
          const r = await get(`${gw.url}/`, { 'x-user': k });
          out.set(k, (JSON.parse(r.body) as { target: string }).target);
        }
      }),
    );
    return out;
  };
  const before = await placement();
  const again = await placement();
  assert.deepEqual([...again].sort(), [...before].sort(), 'same key, same target');
  const spread = new Set(before.values());
  assert.equal(spread.size, 3);
  gw.gateway.reload(balanced(targets, upstream));
  const after4 = await placement();
  const kept = keys.filter((k) => before.get(k) === after4.get(k)).length / keys.length;
  assert.ok(kept > 0.6, `kept ${kept}`);
  assert.ok([...after4.values()].includes('d'), 'the new target gets keys');
  // Moved keys only move to the new target.
  assert.ok(keys.every((k) => before.get(k) === after4.get(k) || after4.get(k) === 'd'));
});

test('consistent-hashing on a cookie: a client without one gets it, and then sticks', async () => {
  const servers = await Promise.all(['a', 'b', 'c'].map((n) => named(n)));
  const gw = await startGateway(
    balanced(
      servers.map((s) => ({ target: `127.0.0.1:${s.port}` })),
      { algorithm: 'consistent-hashing', hash_on: 'cookie', hash_on_cookie: 'gh_lb', hash_on_cookie_path: '/app' },
    ),
  );
  const first = await send(`${gw.url}/`);
  const cookie = String(first.headers['set-cookie']);
  assert.match(cookie, /^gh_lb=[0-9a-f-]{36}; Path=\/app$/);
  const value = cookie.split(';')[0]!;
  const target = first.json().target;
  for (let i = 0; i < 10; i++) {
    const r = await send(`${gw.url}/`, { headers: { cookie: `other=1; ${value}` } });
    assert.equal(r.json().target, target);
    assert.equal(r.headers['set-cookie'], undefined);
  }
});

test('least-connections sends new requests to the target with fewer in flight', async () => {
  const slow = await named('slow', (_req, res) => setTimeout(() => res.end(JSON.stringify({ target: 'slow' })), 300));
  const fast = await named('fast');
  const gw = await startGateway(balanced([{ target: `127.0.0.1:${slow.port}` }, { target: `127.0.0.1:${fast.port}` }], { algorithm: 'least-connections' }));
  const counts = await tally(`${gw.url}/`, 200, 10);
  assert.ok((counts.get('fast') ?? 0) > 150, JSON.stringify([...counts]));
});

test('latency prefers the target that answers faster', async () => {
  const slow = await named('slow', (_req, res) => setTimeout(() => res.end(JSON.stringify({ target: 'slow' })), 40));
  const fast = await named('fast');
  const gw = await startGateway(balanced([{ target: `127.0.0.1:${slow.port}` }, { target: `127.0.0.1:${fast.port}` }], { algorithm: 'latency' }));
  await tally(`${gw.url}/`, 20, 2);
  const counts = await tally(`${gw.url}/`, 200, 2);
  assert.ok((counts.get('fast') ?? 0) > 170, JSON.stringify([...counts]));
});

test('a target host name is resolved through DNS, re-resolved on its TTL, and every A record is a target', async () => {
  const dns = await TestDnsServer.start();
  after(() => dns.close());
  // Two servers on one port, on two loopback addresses.
  const one = await named('one');
  const two = http.createServer((req, res) => res.end(JSON.stringify({ target: 'two', host: req.headers.host })));
  await new Promise<void>((r) => two.listen(one.port, '127.0.0.2', () => r()));
  after(() => new Promise((r) => (two.closeAllConnections(), two.close(r))));
  dns.set('api.test', [{ ip: '127.0.0.1', ttl: 1 }]);
  const config = { ...balanced([{ target: `api.test:${one.port}` }]), _gatehouse: { dns_resolver: [dns.address] } };
  const gw = await startGateway(config);
  const r = await send(`${gw.url}/`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json(), { target: 'one', host: `api.test:${one.port}` });
  dns.set('api.test', [{ ip: '127.0.0.2', ttl: 1 }]);
  const deadline = Date.now() + 5000;
  let seen = 'one';
  while (seen !== 'two' && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100));
    seen = (await send(`${gw.url}/`)).json().target;
  }
  assert.equal(seen, 'two', 'traffic follows the new address after the TTL');
  dns.set('api.test', [
    { ip: '127.0.0.1', ttl: 1 },
    { ip: '127.0.0.2', ttl: 1 },
  ]);
  await new Promise((res) => setTimeout(res, 1500));
  const counts = await tally(`${gw.url}/`, 40, 1);
  assert.equal(counts.get('one'), 20);
  assert.equal(counts.get('two'), 20);
});

test('invalid upstreams and targets are config errors naming the field; the running config stays', async () => {
  const a = await named('a');
  const gw = await startGateway(balanced([{ target: `127.0.0.1:${a.port}` }]));
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ _format_version: '3.0', upstreams: [{ name: '10.0.0.1' }] }, /upstreams\[0\]\.name: Invalid name; no ip addresses allowed/],
    [{ _format_version: '3.0', upstreams: [{ name: 'u', hash_on: 'header' }] }, /upstreams\[0\]\.hash_on_header: required when hash_on is "header"/],
    [{ _format_version: '3.0', upstreams: [{ name: 'u', hash_on: 'cookie', hash_on_cookie: 'c', hash_fallback: 'ip' }] }, /upstreams\[0\]\.hash_fallback: must be "none"/],
    [{ _format_version: '3.0', upstreams: [{ name: 'u', algorithm: 'random' }] }, /upstreams\[0\]\.algorithm/],
    [{ _format_version: '3.0', upstreams: [{ name: 'u', targets: [{ target: 'a:1' }, { target: 'a:1' }] }] }, /upstreams\[0\]\.targets\[1\]\.target: UNIQUE violation/],
    [{ _format_version: '3.0', upstreams: [{ name: 'u', targets: [{ target: 'bad host!' }] }] }, /upstreams\[0\]\.targets\[0\]\.target: Invalid target/],
    [{ _format_version: '3.0', upstreams: [{ name: 'u', targets: [{ target: 'a:1', weight: 70000 }] }] }, /upstreams\[0\]\.targets\[0\]\.weight/],
    [{ _format_version: '3.0', targets: [{ target: 'a:1', upstream: 'nope' }] }, /targets\[0\]\.upstream: no upstream named "nope"/],
    [{ _format_version: '3.0', upstreams: [{ name: 'u', healthchecks: { active: { healthy: { successes: 300 } } } }] }, /upstreams\[0\]\.healthchecks\.active\.healthy\.successes/],
    [{ _format_version: '3.0', _gatehouse: { dns_resolver: ['dns.example:53'] } }, /_gatehouse\.dns_resolver\[0\]: must be "ip" or "ip:port"/],
  ];
  for (const [doc, message] of cases) {
    assert.throws(
      () => gw.gateway.reload(doc),
      (err: unknown) => err instanceof ConfigError && err.errors.some((e) => message.test(e)),
      String(message),
    );
  }
  assert.equal((await send(`${gw.url}/`)).json().target, 'a');
});

test('admin API: health of each target, set by hand, kept over reloads while the upstream is unchanged', async () => {
  const [a, b] = await Promise.all([named('a'), named('b')]);
  const node = await startTestNode(
    balanced([{ target: `127.0.0.1:${a.port}` }, { target: `127.0.0.1:${b.port}` }], { healthchecks: { passive: { unhealthy: { http_failures: 3 } } } }),
  );
  after(() => node.stop(0));
  let h = await node.call('GET', '/upstreams/backend.internal/health');
  assert.equal(h.status, 200);
  assert.equal(h.body.data.length, 2);
  assert.ok(typeof h.body.node_id === 'string');
  for (const t of h.body.data) {
    assert.equal(t.health, 'HEALTHY');
    assert.deepEqual(Object.keys(t.data).sort(), ['addresses', 'dns', 'host', 'nodeWeight', 'port', 'weight']);
    assert.equal(t.data.addresses[0].ip, '127.0.0.1');
    assert.ok(t.upstream.id);
  }
  assert.equal((await node.call('GET', '/upstreams/nope/health')).status, 404);

  const put = await node.call('PUT', `/upstreams/backend.internal/targets/127.0.0.1:${a.port}/unhealthy`);
  assert.equal(put.status, 204);
  const counts = await tally(`${node.proxyUrl}/`, 20, 1);
  assert.deepEqual([...counts], [['b', 20]]);
  h = await node.call('GET', '/upstreams/backend.internal/health');
  const ofA = h.body.data.find((t: { target: string }) => t.target === `127.0.0.1:${a.port}`);
  assert.equal(ofA.health, 'UNHEALTHY');
  assert.match(ofA.data.addresses[0].reason, /by hand/);

  // An unrelated change (a new route) reloads the config: the state stays.
  assert.equal((await node.call('POST', '/services/svc/routes', { name: 'other', paths: ['/other'] })).status, 201);
  h = await node.call('GET', '/upstreams/backend.internal/health');
  assert.equal(h.body.data.find((t: { target: string }) => t.target === `127.0.0.1:${a.port}`).health, 'UNHEALTHY');
  const bal = await node.call('GET', '/upstreams/backend.internal/health?balancer_health=1');
  assert.equal(bal.body.data.balancer_health, 'HEALTHY');
  assert.deepEqual(bal.body.data.details.weight, { total: 200, available: 100, unavailable: 100 });

  // Back by hand.
  assert.equal((await node.call('PUT', `/upstreams/backend.internal/targets/127.0.0.1:${a.port}/healthy`)).status, 204);
  const both = await tally(`${node.proxyUrl}/`, 20, 1);
  assert.equal(both.get('a'), 10);

  // A changed upstream starts fresh.
  assert.equal((await node.call('PUT', `/upstreams/backend.internal/targets/127.0.0.1:${a.port}/unhealthy`)).status, 204);
  assert.equal((await node.call('PATCH', '/upstreams/backend.internal', { algorithm: 'least-connections' })).status, 200);
  h = await node.call('GET', '/upstreams/backend.internal/health');
  assert.ok(h.body.data.every((t: { health: string }) => t.health === 'HEALTHY'));
  assert.equal((await node.call('PUT', `/upstreams/backend.internal/targets/10.9.9.9:1/healthy`)).status, 404);
});

test('with health checks off the admin API says HEALTHCHECKS_OFF; an upstream whose targets are all unhealthy answers 503', async () => {
  const a = await named('a');
  const node = await startTestNode(balanced([{ target: `127.0.0.1:${a.port}` }]));
  after(() => node.stop(0));
  const h = await node.call('GET', '/upstreams/backend.internal/health');
  assert.equal(h.body.data[0].health, 'HEALTHCHECKS_OFF');
  assert.equal((await node.call('PUT', `/upstreams/backend.internal/targets/127.0.0.1:${a.port}/unhealthy`)).status, 204);
  const r = await send(`${node.proxyUrl}/`);
  assert.equal(r.status, 503);
  assert.equal(r.json().message, 'failure to get a peer from the ring-balancer');
});

test('active checks take a failing target out and bring it back when it recovers', async () => {
  let failing = true;
  const flaky = await named('flaky', (req, res) => {
    if (req.url === '/health') {
      res.writeHead(failing ? 500 : 200);
      res.end();
      return;
    }
    res.end(JSON.stringify({ target: 'flaky' }));
  });
  const steady = await named('steady');
  const gw = await startGateway(
    balanced([{ target: `127.0.0.1:${flaky.port}` }, { target: `127.0.0.1:${steady.port}` }], {
      healthchecks: { active: { http_path: '/health', healthy: { interval: 0.1, successes: 2 }, unhealthy: { interval: 0.1, http_failures: 2 } } },
    }),
  );
  const waitFor = async (cond: () => Promise<boolean>) => {
    const deadline = Date.now() + 5000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await waitFor(async () => !(await tally(`${gw.url}/`, 10, 1)).has('flaky'));
  failing = false;
  await waitFor(async () => (await tally(`${gw.url}/`, 10, 1)).has('flaky'));
  assert.ok(flaky.requests.some((r) => r.url === '/health' && r.headers['user-agent']?.includes('gatehouse')));
});

test('consistent-hashing on query_arg, uri_capture and ip, with hash_fallback when the value is missing', async () => {
  const servers = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => named(n)));
  const targets = servers.map((s) => ({ target: `127.0.0.1:${s.port}` }));
  const sticky = async (url: string, headers: Record<string, string> = {}) => {
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) seen.add(JSON.parse((await get(url, headers)).body).target);
    return seen;
  };
  const gw = await startGateway({
    ...balanced(targets, { algorithm: 'consistent-hashing', hash_on: 'query_arg', hash_on_query_arg: 'tenant', hash_fallback: 'header', hash_fallback_header: 'x-user' }),
  });
  for (const tenant of ['t1', 't2', 't3']) assert.equal((await sticky(`${gw.url}/x?tenant=${tenant}&n=1`)).size, 1, `tenant ${tenant} sticks`);
  const spread = new Set<string>();
  for (let i = 0; i < 40; i++) spread.add(JSON.parse((await get(`${gw.url}/x?tenant=t${i}`)).body).target);
  assert.ok(spread.size >= 4, 'different keys spread');
  // No tenant: the fallback header decides.
  assert.equal((await sticky(`${gw.url}/x`, { 'x-user': 'u1' })).size, 1);
  // Neither: round-robin over all targets.
  assert.equal((await sticky(`${gw.url}/x`)).size, 5);

  gw.gateway.reload({
    ...balanced(targets, { algorithm: 'consistent-hashing', hash_on: 'uri_capture', hash_on_uri_capture: 'account' }),
    services: [{ name: 'svc', host: 'backend.internal', routes: [{ name: 'r', paths: ['~/accounts/(?<account>\\d+)'] }] }],
  });
  assert.equal((await sticky(`${gw.url}/accounts/42/orders`)).size, 1);
  gw.gateway.reload(balanced(targets, { algorithm: 'consistent-hashing', hash_on: 'ip' }));
  assert.equal((await sticky(`${gw.url}/any`)).size, 1, 'one client address, one target');
});

test('changing an upstream while a request is in flight: the request completes, later ones use the new targets', async () => {
  const slow = await named('slow', (_req, res) => setTimeout(() => res.end(JSON.stringify({ target: 'slow' })), 400));
  const other = await named('other');
  const gw = await startGateway(balanced([{ target: `127.0.0.1:${slow.port}` }]));
  const inFlight = send(`${gw.url}/`);
  await new Promise((r) => setTimeout(r, 100));
  gw.gateway.reload(balanced([{ target: `127.0.0.1:${other.port}` }]));
  const after = await send(`${gw.url}/`);
  assert.equal(after.json().target, 'other');
  const first = await inFlight;
  assert.equal(first.status, 200);
  assert.equal(first.json().target, 'slow');
});
