import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateAgainst } from '../../config/validate.js';
import { startGateway, startUpstream, send, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { ipRestriction } from './index.js';
import type { IpRestrictionConfig } from './schema.js';

function validate(input: Record<string, unknown>): string[] {
  const config = structuredClone(input);
  const errors = validateAgainst(ipRestriction.schema, config, 'config');
  if (errors.length) return errors;
  const problem = ipRestriction.check!(config as IpRestrictionConfig);
  return problem ? [problem] : [];
}

describe('ip-restriction: schema', () => {
  it('needs allow or deny, with valid IPs and CIDRs', () => {
    assert.deepEqual(validate({}), ["config: at least one of these fields must be non-empty: 'config.allow', 'config.deny'"]);
    assert.deepEqual(validate({ allow: ['10.0.0.0/8', '2001:db8::/32', '::1', '192.168.1.1'] }), []);
    assert.deepEqual(validate({ deny: ['10.0.0.0/33'] }), ['config.deny[0]: invalid CIDR prefix length: 10.0.0.0/33']);
    assert.deepEqual(validate({ allow: ['1.2.3.4', 'example.com'] }), ['config.allow[1]: invalid IP address or CIDR: example.com']);
    assert.equal(ipRestriction.priority, 990);
  });
});

describe('ip-restriction: through the gateway', () => {
  let up: Upstream;
  let direct: TestGateway;
  let proxied: TestGateway;
  const route = (name: string, config: Record<string, unknown>) => ({ name, paths: [`/${name}`], plugins: [{ name: 'ip-restriction', config }] });

  before(async () => {
    up = await startUpstream();
    const services = [
      {
        name: 's',
        url: up.url,
        routes: [
          route('deny-me', { deny: ['127.0.0.1'] }),
          route('allow-ten', { allow: ['10.0.0.0/8'] }),
          route('allow-loopback', { allow: ['127.0.0.0/8'], deny: ['127.0.0.2'] }),
          route('custom', { deny: ['127.0.0.0/8'], status: 401, message: 'go away' }),
          route('v6', { allow: ['2001:db8::/32'], deny: ['2001:db8::bad'] }),
        ],
      },
    ];
    direct = await startGateway({ _format_version: '3.0', services });
    proxied = await startGateway({ _format_version: '3.0', _gatehouse: { trusted_ips: ['127.0.0.1'] }, services });
  });

  after(async () => {
    await direct?.close();
    await proxied?.close();
    await up?.close();
  });

  it("deny: 403 with Kong's message, naming the client IP", async () => {
    const res = await send(`${direct.url}/deny-me`);
    assert.equal(res.status, 403);
    assert.equal(res.json().message, 'IP address not allowed: 127.0.0.1');
    assert.ok(res.json().request_id);
  });

  it('a spoofed X-Forwarded-For from an untrusted peer changes nothing', async () => {
    assert.equal((await send(`${direct.url}/deny-me`, { headers: { 'x-forwarded-for': '10.9.9.9' } })).status, 403);
    const res = await send(`${direct.url}/allow-ten`, { headers: { 'x-forwarded-for': '10.1.2.3' } });
    assert.equal(res.status, 403);
    assert.equal(res.json().message, 'IP address not allowed: 127.0.0.1');
  });

  it('allow lists pass matching clients; deny wins over allow; custom status and message', async () => {
    assert.equal((await send(`${direct.url}/allow-loopback`)).status, 200);
    const custom = await send(`${direct.url}/custom`);
    assert.equal(custom.status, 401);
    assert.equal(custom.json().message, 'go away');
  });

  it('behind a trusted proxy the real client IP (IPv4 or IPv6) is checked', async () => {
    assert.equal((await send(`${proxied.url}/allow-ten`, { headers: { 'x-forwarded-for': '10.1.2.3' } })).status, 200);
    assert.equal((await send(`${proxied.url}/deny-me`, { headers: { 'x-forwarded-for': '10.1.2.3' } })).status, 200);
    assert.equal((await send(`${proxied.url}/v6`, { headers: { 'x-forwarded-for': '2001:db8::5' } })).status, 200);
    const bad = await send(`${proxied.url}/v6`, { headers: { 'x-forwarded-for': '2001:db8::bad' } });
    assert.equal(bad.status, 403);
    assert.equal(bad.json().message, 'IP address not allowed: 2001:db8::bad');
    assert.equal((await send(`${proxied.url}/v6`, { headers: { 'x-forwarded-for': '2001:db9::1' } })).status, 403);
    assert.equal((await send(`${proxied.url}/v6`)).status, 403, 'no header: the peer 127.0.0.1 is not in the v6 allow list');
  });
});
