import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateAgainst } from '../../config/validate.js';
import { startGateway, startUpstream, send, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { acl } from './index.js';

function validate(input: Record<string, unknown>): string[] {
  const config = structuredClone(input);
  const errors = validateAgainst(acl.schema, config, 'config');
  if (errors.length) return errors;
  const problem = acl.check!(config as never);
  return problem ? [problem] : [];
}

describe('acl: schema', () => {
  it('exactly one of allow and deny (empty lists count as absent); priority 950', () => {
    assert.deepEqual(validate({ allow: ['a'] }), []);
    assert.deepEqual(validate({ deny: ['a'], allow: [] }), []);
    assert.deepEqual(validate({}), ["config: at least one of these fields must be non-empty: 'config.allow', 'config.deny'"]);
    assert.deepEqual(validate({ allow: [] }), ["config: at least one of these fields must be non-empty: 'config.allow', 'config.deny'"]);
    assert.deepEqual(validate({ allow: ['a'], deny: ['b'] }), ["config: only one of these fields must be non-empty: 'config.allow', 'config.deny'"]);
    const config: Record<string, unknown> = { allow: ['a'] };
    validateAgainst(acl.schema, config, 'config');
    assert.deepEqual(config, { allow: ['a'], hide_groups_header: false, always_use_authenticated_groups: false });
    assert.equal(acl.priority, 950);
  });
});

describe('acl: through the gateway (after key-auth)', () => {
  let up: Upstream;
  let gw: TestGateway;
  const route = (name: string, aclConfig: Record<string, unknown>, keyAuth: Record<string, unknown> | false = {}) => ({
    name,
    paths: [`/${name}`],
    plugins: [...(keyAuth ? [{ name: 'key-auth', config: keyAuth }] : []), { name: 'acl', config: aclConfig }],
  });

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 'svc',
          url: up.url,
          routes: [
            route('allow', { allow: ['admins'] }),
            route('deny', { deny: ['banned'] }),
            route('hidden', { allow: ['admins'], hide_groups_header: true }),
            route('alone', { allow: ['admins'] }, false),
            route('anon', { allow: ['admins'] }, { anonymous: 'guest' }),
            route('anondeny', { deny: ['banned'] }, { anonymous: 'guest' }),
            route('visitor', { allow: ['admins'] }, { anonymous: 'visitor' }),
          ],
        },
      ],
      consumers: [
        { username: 'alice', keyauth_credentials: [{ key: 'alice-key' }], acls: [{ group: 'users' }, { group: 'admins' }] },
        { username: 'mallory', keyauth_credentials: [{ key: 'mallory-key' }], acls: [{ group: 'banned' }, { group: 'users' }] },
        { username: 'nogroups', keyauth_credentials: [{ key: 'nogroups-key' }] },
        { username: 'guest' },
        { username: 'visitor' },
      ],
      acls: [{ consumer: 'guest', group: 'Admins' }],
    });
  });

  after(async () => {
    await gw?.close();
    await up?.close();
  });

  const lastUpstream = () => up.requests[up.requests.length - 1]!;
  const get = (path: string, key?: string, headers: Record<string, string> = {}) => send(`${gw.url}/${path}`, { headers: key ? { apikey: key, ...headers } : headers });

  it('allow: a member passes with X-Consumer-Groups listing all its groups; others get 403', async () => {
    const ok = await get('allow', 'alice-key', { 'x-consumer-groups': 'forged' });
    assert.equal(ok.status, 200);
    assert.equal(lastUpstream().headers['x-consumer-groups'], 'users, admins');
    const denied = await get('allow', 'mallory-key');
    assert.equal(denied.status, 403);
    assert.equal(denied.json().message, 'You cannot consume this service');
    assert.equal(typeof denied.json().request_id, 'string');
    assert.equal((await get('allow', 'nogroups-key')).status, 403, 'no groups, with a credential: 403');
  });

  it('deny: members of a listed group get 403; a consumer without groups passes with an empty header', async () => {
    assert.equal((await get('deny', 'mallory-key')).status, 403);
    assert.equal((await get('deny', 'alice-key')).status, 200);
    assert.equal(lastUpstream().headers['x-consumer-groups'], 'users, admins');
    assert.equal((await get('deny', 'nogroups-key')).status, 200);
    assert.equal(lastUpstream().headers['x-consumer-groups'], '', 'Kong sends " ", which the upstream reads as empty');
  });

  it('hide_groups_header', async () => {
    assert.equal((await get('hidden', 'alice-key', { 'x-consumer-groups': 'forged' })).status, 200);
    assert.equal(lastUpstream().headers['x-consumer-groups'], undefined);
  });

  it('no consumer: 401 Unauthorized', async () => {
    const res = await get('alone');
    assert.equal(res.status, 401);
    assert.equal(res.json().message, 'Unauthorized');
  });

  it('anonymous consumers: groups compared exactly; no groups at all for an allow list is 401 (no credential)', async () => {
    const anon = await get('anon');
    assert.equal(anon.status, 403, 'guest is in "Admins", not "admins"');
    const visitor = await get('visitor');
    assert.equal(visitor.status, 401, 'an anonymous consumer without any group (no credential): 401');
    assert.equal((await get('anon', 'alice-key')).status, 200);
    assert.equal((await get('anondeny')).status, 200);
    assert.equal(lastUpstream().headers['x-consumer-groups'], 'Admins');
    assert.equal(lastUpstream().headers['x-anonymous-consumer'], 'true');
  });
});
