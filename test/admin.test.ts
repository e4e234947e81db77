import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { startUpstream, startGateway, send, oneRoute } from './helpers/harness.js';
import { PLUGINS } from '../src/plugins/registry.js';
import { definePlugin } from '../src/plugins/types.js';
import { askPlugins, createAdminServer, listenAdmin, type AdminTarget } from '../src/admin/server.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** A plugin that counts requests and exposes the count on the admin API. */
const counting = definePlugin({
  name: 'counting',
  priority: 10,
  schema: Type.Object({}, { additionalProperties: false }),
  create: () => {
    let count = 0;
    return {
      access: () => void count++,
      admin: (r) => {
        if (r.path !== '/counting') return undefined;
        if (r.method === 'DELETE') {
          count = 0;
          return { status: 204 };
        }
        return { status: 200, body: { count, echo: r.query.get('echo') } };
      },
    };
  },
});

test('admin API: status, config export and replace, and plugin-owned endpoints', async () => {
  const up = await startUpstream();
  cleanup.push(up.close);
  const config = { ...oneRoute(up.url), plugins: [{ name: 'counting' }] };
  const gw = await startGateway(config, { plugins: new Map([...PLUGINS, ['counting', counting]]) });
  cleanup.push(gw.close);
  let current: unknown = config;
  const target: AdminTarget = {
    info: () => ({ version: gw.gateway.version }),
    status: async () => ({ configuration_version: gw.gateway.snapshot.version }),
    exportConfig: () => current,
    applyConfig: async (doc) => {
      gw.gateway.reload(doc);
      current = doc;
    },
    pluginAdmin: (r) => askPlugins(gw.gateway.snapshot, r),
  };
  const server = createAdminServer(target, gw.gateway.logger);
  const address = await listenAdmin(server, { host: '127.0.0.1', port: 0 });
  cleanup.push(() => new Promise((r) => server.close(() => r())));
  const admin = `http://127.0.0.1:${address.port}`;

  await send(`${gw.url}/a`);
  await send(`${gw.url}/b`);
  assert.deepEqual((await send(`${admin}/counting?echo=hi`)).json(), { count: 2, echo: 'hi' });
  assert.equal((await send(`${admin}/counting`, { method: 'DELETE' })).status, 204);
  assert.equal((await send(`${admin}/counting`)).json().count, 0);
  assert.equal((await send(`${admin}/nothing-here`)).status, 404);
  assert.equal((await send(`${admin}/status`, { method: 'DELETE' })).status, 405);

  assert.deepEqual((await send(`${admin}/config`)).json().config, config);
  const json = { 'content-type': 'application/json' };
  const bad = await send(`${admin}/config`, { method: 'POST', headers: json, body: '{"_format_version":"3.0","services":[{"url":"x"}]}' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json().code, 14);
  assert.deepEqual(bad.json().errors, ['services[0].url: invalid URL']);
  assert.equal((await send(`${admin}/config`, { method: 'POST', body: '' })).json().message, 'expected a declarative configuration');
  const yaml = `_format_version: "3.0"\nservices:\n- url: ${up.url}/v2\n  routes:\n  - paths: [/]\n`;
  assert.equal((await send(`${admin}/config`, { method: 'POST', headers: json, body: JSON.stringify({ config: yaml }) })).status, 201);
  assert.equal((await send(`${gw.url}/x`)).json().url, '/v2/x');
});
