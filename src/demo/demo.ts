import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { runNode, parseListen } from '../main.js';

/** Tiny JSON services the demo config routes to. */
const SERVICES: { name: string; port: number; answer: (path: string) => unknown }[] = [
  { name: 'users-v1', port: 9101, answer: (p) => ({ service: 'users', version: 1, path: p, users: [{ id: 1, name: 'Ada' }] }) },
  { name: 'users-v2', port: 9102, answer: (p) => ({ service: 'users', version: 2, path: p, data: [{ id: 1, full_name: 'Ada Lovelace' }] }) },
  { name: 'orders-a', port: 9103, answer: (p) => ({ service: 'orders', instance: 'a', path: p, orders: [{ id: 42, total: 9.5 }] }) },
  { name: 'products', port: 9104, answer: (p) => ({ service: 'products', path: p, products: [{ sku: 'ABC-1', name: 'Widget' }] }) },
  { name: 'orders-b', port: 9105, answer: (p) => ({ service: 'orders', instance: 'b', path: p, orders: [{ id: 42, total: 9.5 }] }) },
];

function startService(s: (typeof SERVICES)[number]): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const body = JSON.stringify({ ...(s.answer(req.url ?? '/') as object), received_headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`demo service ${s.name} cannot listen on 127.0.0.1:${s.port}: ${err.message}`)));
    server.listen(s.port, '127.0.0.1', () => resolve(server));
  });
}

export async function runDemo(): Promise<void> {
  const servers = await Promise.all(SERVICES.map(startService));
  process.once('exit', () => servers.forEach((s) => s.close()));
  const proxy = parseListen(process.env.GATEHOUSE_PROXY_LISTEN ?? '0.0.0.0:8000', 'proxy listen');
  const admin = parseListen(process.env.GATEHOUSE_ADMIN_LISTEN ?? '127.0.0.1:8001', 'admin listen');
  await runNode({
    configPath: fileURLToPath(new URL('../../../examples/demo.yaml', import.meta.url)),
    proxyListen: proxy,
    adminListen: admin,
    workers: 1,
    graceMs: 5000,
  });
  const base = `http://localhost:${proxy.port}`;
  console.log(`
Gatehouse demo is running: proxy ${base}, admin http://127.0.0.1:${admin.port}
Demo services: ${SERVICES.map((s) => `${s.name}=127.0.0.1:${s.port}`).join(', ')}

Try:
  curl -i ${base}/v1/users                 # versioned route -> legacy users service (path kept)
  curl -i ${base}/v2/users/7               # versioned route -> new service, path rewritten to /api/users/7
  curl -i ${base}/orders                   # correlation-id added and echoed back; balanced over two instances (a, b)
  curl -s http://127.0.0.1:${admin.port}/upstreams/orders.internal/health   # each instance's health
  curl -i -X DELETE ${base}/orders         # method not routed -> 404 "no Route matched with those values"
  curl -i ${base}/products/ABC-123         # regex route; the SKU capture is sent upstream as X-Product-SKU
  curl -i ${base}/maintenance              # request-termination: 503 from the gateway
  curl -s http://127.0.0.1:${admin.port}/status   # admin API
Stop with Ctrl-C.
`);
}
