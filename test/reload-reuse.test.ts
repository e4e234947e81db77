import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { startUpstream, startGateway, send } from './helpers/harness.js';
import { PLUGINS } from '../src/plugins/registry.js';
import { definePlugin } from '../src/plugins/types.js';
import { applyOp, type ConfigDocument } from '../src/admin/doc.js';
import { pinDocument } from '../src/admin/pin.js';
import { parse as parseYaml } from 'yaml';
import { toYaml } from '../src/admin/persist.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** A plugin that counts its instances and disposals; reads the consumers when told to. */
function probe() {
  const stats = { created: 0, disposed: 0 };
  const def = definePlugin({
    name: 'probe',
    priority: 5,
    schema: Type.Object({ tag: Type.String({ default: 'a' }), readConsumers: Type.Boolean({ default: false }) }, { additionalProperties: false }),
    create: (config, deps) => {
      stats.created++;
      const size = config.readConsumers ? deps.consumers.size : -1;
      return {
        response: (ex) => {
          ex.responseHeaders['x-probe'] = `${config.tag}:${size}`;
        },
        dispose: () => {
          stats.disposed++;
        },
      };
    },
  });
  return { def, stats };
}

test('a reload carries over what did not change: plugin instances, compiled routes and services', async () => {
  const up = await startUpstream();
  cleanup.push(up.close);
  const { def, stats } = probe();
  const plugins = new Map([...PLUGINS, ['probe', def]]);
  let doc = pinDocument(
    {
      _format_version: '3.0',
      _gatehouse: { access_log: false },
      services: [{ name: 's', url: up.url, routes: [{ name: 'a', paths: ['/a'] }, { name: 'b', paths: ['/b'] }] }],
      plugins: [{ name: 'probe', config: { tag: 'one' } }, { name: 'probe', route: 'b', config: { tag: 'reader', readConsumers: true } }],
      consumers: [{ username: 'c1' }],
    },
    plugins,
    0,
  ).doc;
  const gw = await startGateway(doc, { plugins });
  cleanup.push(gw.close);
  const g = gw.gateway;
  assert.equal(stats.created, 2);
  const first = g.snapshot;
  const routeA = [...first.routes.values()].find((r) => r.name === 'a')!;
  const routeB = [...first.routes.values()].find((r) => r.name === 'b')!;

  // A new route: the other routes, the service and both plugin instances are carried over.
  doc = applyOp(doc, { op: 'set', path: ['routes', 0], value: { id: '00000000-0000-4000-8000-000000000001', name: 'c', paths: ['/c'], service: { name: 's' } } });
  g.commit(g.prepare(doc));
  const second = g.snapshot;
  assert.equal(stats.created, 2, 'no plugin instance was created again');
  assert.equal(stats.disposed, 0, 'and none disposed');
  assert.equal(second.routes.get(routeA.id), routeA, 'an unchanged route is the same compiled object');
  assert.equal(second.routes.get(routeB.id), routeB);
  assert.equal(second.services.get(routeA.service!.id), routeA.service);
  assert.equal((await send(`${gw.url}/c`)).headers['x-probe'], 'one:-1');
  assert.equal((await send(`${gw.url}/b`)).headers['x-probe'], 'reader:1');

  // A changed route is compiled again; the others still are not.
  doc = applyOp(doc, { op: 'set', path: ['services', 0, 'routes', 0, 'paths'], value: ['/a2'] });
  g.commit(g.prepare(doc));
  assert.notEqual(g.snapshot.routes.get(routeA.id), routeA);
  assert.equal(g.snapshot.routes.get(routeB.id), routeB);
  assert.equal((await send(`${gw.url}/a2`)).status, 200);

  // A consumer change rebuilds the instance that read the consumers, not the other one.
  doc = applyOp(doc, { op: 'set', path: ['consumers', 1], value: { id: '00000000-0000-4000-8000-000000000002', username: 'c2' } });
  g.commit(g.prepare(doc));
  assert.equal(stats.created, 3);
  assert.equal(stats.disposed, 1, 'the old reader is disposed once its snapshot retired');
  assert.equal((await send(`${gw.url}/b`)).headers['x-probe'], 'reader:2');
  assert.equal((await send(`${gw.url}/a2`)).headers['x-probe'], 'one:-1');

  // A plugin config change: a new instance; the old one goes with the snapshot that used it.
  doc = applyOp(doc, { op: 'set', path: ['plugins', 0, 'config'], value: { tag: 'two' } });
  g.commit(g.prepare(doc));
  assert.equal(stats.created, 4);
  assert.equal(stats.disposed, 2);
  assert.equal((await send(`${gw.url}/a2`)).headers['x-probe'], 'two:-1');

  // The same content in new objects (a file reload): routes are compiled again, plugins are kept.
  g.commit(g.prepare(structuredClone(doc)));
  assert.equal(stats.created, 4);
  assert.notEqual(g.snapshot.routes.get(routeB.id), routeB);

  // reload() builds everything anew (as a restart would), plugin instances included.
  g.reload(doc);
  assert.equal(stats.created, 6);
  assert.equal(stats.disposed, 4);

  // Removing a plugin disposes it; stopping disposes the rest.
  doc = applyOp(doc, { op: 'remove', path: ['plugins', 1] });
  g.commit(g.prepare(doc));
  assert.equal(stats.disposed, 5);
  await gw.close();
  assert.equal(stats.disposed, 6, 'every instance disposed exactly once');
  assert.equal(stats.created, 6);
});

test('an instance in use by an in-flight request outlives the swap and is disposed after it', async () => {
  let release: (() => void) | undefined;
  const up = await startUpstream((req, res) => {
    if (req.url === '/slow') release = () => res.end('slow');
    else res.end('fast');
  });
  cleanup.push(up.close);
  const { def, stats } = probe();
  const plugins = new Map([...PLUGINS, ['probe', def]]);
  let doc = pinDocument({ _format_version: '3.0', services: [{ name: 's', url: up.url, routes: [{ name: 'r', paths: ['/'] }] }], plugins: [{ name: 'probe' }] }, plugins, 0).doc as ConfigDocument;
  const gw = await startGateway(doc, { plugins });
  cleanup.push(gw.close);
  const slow = send(`${gw.url}/slow`);
  while (!release) await new Promise((r) => setTimeout(r, 10));
  doc = applyOp(doc, { op: 'set', path: ['plugins', 0, 'config'], value: { tag: 'b' } });
  gw.gateway.commit(gw.gateway.prepare(doc));
  assert.equal(stats.disposed, 0, 'the old instance still serves the in-flight request');
  release();
  assert.equal((await slow).headers['x-probe'], 'a:-1');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(stats.disposed, 1);
  assert.equal((await send(`${gw.url}/x`)).headers['x-probe'], 'b:-1');
});

test('the YAML written back reads back to the same document', () => {
  const doc = {
    _format_version: '3.0',
    _comment: 'a: b # not a comment',
    services: [
      {
        id: '0e7f0b1c-0000-4000-8000-000000000000',
        name: 'yes',
        url: 'http://h:1/p',
        tags: ['on', '1', '0x10', '', ' spaced ', 'multi\nline', '~', 'null', '-x', '#x', '@x', "it's", 'ünï'],
        routes: [{ paths: ['~/v(?<n>\\d+)$', '/a b'], headers: { 'x-y': ['1'], 'true': ['a:b', 'c: d'] }, regex_priority: -3, strip_path: false }],
        plugins: [],
        nested: [[1, [2, { a: null }]], {}],
      },
    ],
    empty: {},
    number: 1.5,
  };
  assert.deepEqual(parseYaml(toYaml(doc, 'header')), doc);
});
