import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { startUpstream, startGateway, send, type Upstream, type TestGateway } from './helpers/harness.js';
import { PLUGINS } from '../src/plugins/registry.js';
import { definePlugin } from '../src/plugins/types.js';
import { setConsumer } from '../src/pipeline/consumer.js';
import { normalizeConfig } from '../src/config/normalize.js';
import { ConfigError } from '../src/lib/errors.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** A stand-in auth plugin: the consumer named by X-Test-User, with its first key-auth credential. */
const headerAuth = definePlugin({
  name: 'header-auth',
  priority: 1250,
  schema: Type.Object({}, { additionalProperties: false }),
  create: (_config, deps) => ({
    access: (ex) => {
      const name = ex.req.headers['x-test-user'];
      const consumer = typeof name === 'string' ? deps.consumers.find(name) : undefined;
      if (!consumer) return { status: 401, body: { message: 'Unauthorized' }, reason: 'no user' };
      const credential = deps.consumers.credentials('keyauth_credentials').find((c) => c.consumer.id === consumer.id);
      setConsumer(ex, consumer, credential, credential?.id);
    },
  }),
});
const plugins = new Map([...PLUGINS, ['header-auth', headerAuth]]);

test('consumers: identity headers set by auth, client copies removed, consumer-scoped plugins take over', async () => {
  const up: Upstream = await startUpstream();
  cleanup.push(up.close);
  const gw: TestGateway = await startGateway(
    {
      _format_version: '3.0',
      services: [{ name: 's', url: up.url, routes: [{ name: 'r', paths: ['/'], plugins: [{ name: 'header-auth' }] }] }],
      consumers: [
        { username: 'alice', custom_id: 'A-1', keyauth_credentials: [{ key: 'alice-key' }] },
        {
          username: 'mallory',
          plugins: [{ name: 'request-termination', config: { status_code: 403, message: 'blocked for you' } }],
        },
      ],
      plugins: [{ name: 'request-termination', consumer: 'alice', route: 'r', config: { status_code: 418, trigger: 'x-teapot' } }],
    },
    { plugins },
  );
  cleanup.push(gw.close);

  const ok = await send(`${gw.url}/`, { headers: { 'x-test-user': 'alice', 'x-consumer-id': 'forged', 'x-anonymous-consumer': 'true', connection: 'x-consumer-username' } });
  assert.equal(ok.status, 200);
  const h = ok.json().headers;
  assert.match(h['x-consumer-id'], /^[0-9a-f-]{36}$/);
  assert.notEqual(h['x-consumer-id'], 'forged');
  assert.equal(h['x-consumer-username'], 'alice');
  assert.equal(h['x-consumer-custom-id'], 'A-1');
  assert.match(h['x-credential-identifier'], /^[0-9a-f-]{36}$/);
  assert.equal(h['x-anonymous-consumer'], undefined);

  const teapot = await send(`${gw.url}/`, { headers: { 'x-test-user': 'alice', 'x-teapot': '1' } });
  assert.equal(teapot.status, 418, 'consumer+route plugin runs for alice');
  const blocked = await send(`${gw.url}/`, { headers: { 'x-test-user': 'mallory' } });
  assert.equal(blocked.status, 403);
  assert.equal(blocked.json().message, 'blocked for you');

  const anonymousHeaders = await send(`${gw.url}/`, { headers: { 'x-test-user': 'nobody', 'x-consumer-id': 'forged' } });
  assert.equal(anonymousHeaders.status, 401);
  assert.equal(up.requests.filter((r) => r.headers['x-consumer-id'] === 'forged').length, 0);
});

test('credentials: top-level lists refer to consumers; keys are unique; missing consumers are named', () => {
  const errors = (doc: unknown) => {
    try {
      normalizeConfig(doc, PLUGINS);
      return [];
    } catch (err) {
      return (err as ConfigError).errors;
    }
  };
  const normal = normalizeConfig(
    { _format_version: '3.0', consumers: [{ username: 'bob' }], keyauth_credentials: [{ consumer: 'bob', key: 'k1' }], acls: [{ consumer: { username: 'bob' }, group: 'admins' }] },
    PLUGINS,
  );
  assert.equal(normal.credentials.length, 2);
  assert.deepEqual(errors({ _format_version: '3.0', keyauth_credentials: [{ consumer: 'ghost', key: 'k' }] }), ['keyauth_credentials[0].consumer: no consumer named "ghost"']);
  const dup = errors({ _format_version: '3.0', consumers: [{ username: 'a', keyauth_credentials: [{ key: 'same' }] }, { username: 'b', keyauth_credentials: [{ key: 'same' }] }] });
  assert.equal(dup.length, 1);
  assert.match(dup[0]!, /^consumers\[1\]\.keyauth_credentials\[0\]\.key: UNIQUE violation: "<key>"/);
  assert.ok(!dup[0]!.includes('same'), 'a key is never echoed in an error');
  assert.deepEqual(errors({ _format_version: '3.0', consumers: [{ username: 'c', jwt_secrets: [{ key: 'iss', algorithm: 'RS256' }] }] }), ['consumers[0].jwt_secrets[0].rsa_public_key: required for algorithm RS256']);
});
