import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { send } from '../../../test/helpers/harness.js';
import { askPlugins, createAdminServer, listenAdmin, type AdminTarget } from '../../admin/server.js';
import { startCacheGateway, startSwitchableUpstream, type CacheGateway } from './test-support.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** Two routes with their own proxy-cache plugin, one of them in another memory dictionary. */
async function setup(): Promise<{ gw: CacheGateway; admin: string }> {
  const up = await startSwitchableUpstream();
  cleanup.push(up.close);
  const gw = await startCacheGateway({
    _format_version: '3.0',
    services: [
      {
        name: 's',
        url: up.url,
        routes: [
          { name: 'one', paths: ['/one'], plugins: [{ name: 'proxy-cache', config: { strategy: 'memory' } }] },
          { name: 'two', paths: ['/two'], plugins: [{ name: 'proxy-cache', config: { strategy: 'memory', memory: { dictionary_name: 'other' } } }] },
        ],
      },
    ],
  });
  cleanup.push(gw.close);
  const target: AdminTarget = {
    info: () => ({}),
    status: async () => ({}),
    exportConfig: () => ({}),
    applyConfig: async () => undefined,
    pluginAdmin: (r) => askPlugins(gw.gateway.snapshot, r),
  };
  const server = createAdminServer(target, gw.gateway.logger);
  const address = await listenAdmin(server, { host: '127.0.0.1', port: 0 });
  cleanup.push(() => new Promise((r) => server.close(() => r())));
  return { gw, admin: `http://127.0.0.1:${address.port}` };
}

describe('proxy-cache: admin API (Kong status codes)', () => {
  it('GET /proxy-cache/{key}: 200 with the cached object, 404 with an empty body', async () => {
    const { gw, admin } = await setup();
    const miss = await send(`${gw.url}/one`);
    const key = String(miss.headers['x-cache-key']);
    const found = await send(`${admin}/proxy-cache/${key}`);
    assert.equal(found.status, 200);
    const object = found.json();
    assert.equal(object.status, 200);
    assert.equal(object.body, miss.body);
    assert.equal(object.body_len, Buffer.byteLength(miss.body));
    assert.equal(object.headers['content-type'], 'application/json');
    assert.equal(object.ttl, 300);
    assert.equal(object.version, 1);
    assert.equal(typeof object.timestamp, 'number');
    const missing = await send(`${admin}/proxy-cache/${'0'.repeat(64)}`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body, '');
  });

  it('DELETE /proxy-cache/{key}: 204, then 404; the next request is a Miss', async () => {
    const { gw, admin } = await setup();
    const key = String((await send(`${gw.url}/two`)).headers['x-cache-key']);
    assert.equal((await send(`${gw.url}/two`)).headers['x-cache-status'], 'Hit');
    const deleted = await send(`${admin}/proxy-cache/${key}`, { method: 'DELETE' });
    assert.equal(deleted.status, 204);
    assert.equal(deleted.body, '');
    const again = await send(`${admin}/proxy-cache/${key}`, { method: 'DELETE' });
    assert.equal(again.status, 404);
    assert.equal(again.body, '');
    assert.equal((await send(`${gw.url}/two`)).headers['x-cache-status'], 'Miss');
  });

  it('DELETE /proxy-cache flushes every proxy-cache store (204)', async () => {
    const { gw, admin } = await setup();
    await send(`${gw.url}/one`);
    await send(`${gw.url}/two`);
    const flushed = await send(`${admin}/proxy-cache`, { method: 'DELETE' });
    assert.equal(flushed.status, 204);
    assert.equal((await send(`${gw.url}/one`)).headers['x-cache-status'], 'Miss');
    assert.equal((await send(`${gw.url}/two`)).headers['x-cache-status'], 'Miss');
    assert.equal((await send(`${admin}/proxy-cache`, { method: 'GET' })).status, 405);
  });

  it('GET and DELETE /proxy-cache/{plugin_id}/caches/{key}: one plugin\'s store', async () => {
    const { gw, admin } = await setup();
    const key = String((await send(`${gw.url}/one`)).headers['x-cache-key']);
    const routes = [...gw.gateway.snapshot.routes.values()];
    const idOf = (name: string) => routes.find((r) => r.name === name)!.plugins.all.find((p) => p.name === 'proxy-cache')!.id;
    await send(`${gw.url}/two`);
    assert.equal((await send(`${admin}/proxy-cache/${idOf('one')}/caches/${key}`)).status, 200);
    assert.equal((await send(`${admin}/proxy-cache/${idOf('two')}/caches/${key}`)).status, 404, 'another dictionary');
    assert.equal((await send(`${admin}/proxy-cache/00000000-0000-0000-0000-000000000000/caches/${key}`)).status, 404);
    assert.equal((await send(`${admin}/proxy-cache/${idOf('one')}/caches/${key}`, { method: 'DELETE' })).status, 204);
    assert.equal((await send(`${admin}/proxy-cache/${idOf('one')}/caches/${key}`)).status, 404);
  });
});
