import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { validateAgainst } from '../../config/validate.js';
import { startGateway, startUpstream, send, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { requestSizeLimiting } from './index.js';

/** Sends a chunked body (no Content-Length) chunk by chunk; resolves with the answer, whatever happens to the upload. */
function sendChunked(url: string, chunks: Buffer[], headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked', ...headers } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', (err) => reject(err));
    let i = 0;
    const next = () => {
      if (req.destroyed) return;
      if (i === chunks.length) {
        req.end();
        return;
      }
      req.write(chunks[i++]);
      setTimeout(next, 5);
    };
    next();
  });
}

describe('request-size-limiting: schema', () => {
  it('Kong defaults: 128 megabytes', () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validateAgainst(requestSizeLimiting.schema, config, 'config'), []);
    assert.deepEqual(config, { allowed_payload_size: 128, size_unit: 'megabytes', require_content_length: false });
    assert.deepEqual(validateAgainst(requestSizeLimiting.schema, { size_unit: 'gigabytes' }, 'config'), ['config.size_unit: must be one of: megabytes, kilobytes, bytes']);
    assert.equal(requestSizeLimiting.priority, 951);
  });
});

describe('request-size-limiting: through the gateway', () => {
  let up: Upstream;
  let gw: TestGateway;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      _format_version: '3.0',
      services: [
        {
          name: 's',
          url: up.url,
          routes: [
            { name: 'kb', paths: ['/kb'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 1, size_unit: 'kilobytes' } }] },
            { name: 'bytes', paths: ['/bytes'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 10, size_unit: 'bytes' } }] },
            { name: 'strict', paths: ['/strict'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 10, size_unit: 'bytes', require_content_length: true } }] },
            { name: 'stream', paths: ['/stream'], plugins: [{ name: 'request-size-limiting', config: { allowed_payload_size: 64, size_unit: 'kilobytes' } }] },
          ],
        },
      ],
    });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it('Content-Length over the limit: 413 (417 with Expect: 100-continue); at the limit passes', async () => {
    const calls = up.requests.length;
    const over = await send(`${gw.url}/kb`, { method: 'POST', body: Buffer.alloc(1025) });
    assert.equal(over.status, 413);
    assert.equal(over.json().message, 'Request size limit exceeded');
    assert.equal(up.requests.length, calls);
    assert.equal((await send(`${gw.url}/kb`, { method: 'POST', body: Buffer.alloc(1024) })).status, 200);
    const expect = await send(`${gw.url}/bytes`, { method: 'POST', headers: { expect: '100-continue' }, body: 'x'.repeat(11) });
    assert.equal(expect.status, 417);
    assert.equal(expect.json().message, 'Request size limit exceeded');
  });

  it('require_content_length: 411 without it, unless Transfer-Encoding is chunked', async () => {
    const missing = await send(`${gw.url}/strict`);
    assert.equal(missing.status, 411);
    assert.equal(missing.json().message, 'A valid Content-Length header is required');
    assert.equal((await send(`${gw.url}/strict`, { method: 'POST', body: 'short' })).status, 200);
    assert.equal((await sendChunked(`${gw.url}/strict`, [Buffer.from('tiny')])).status, 200);
  });

  it('a chunked body under the limit streams through whole', async () => {
    const chunks = Array.from({ length: 8 }, (_, i) => Buffer.alloc(4096, 97 + i));
    const res = await sendChunked(`${gw.url}/stream`, chunks);
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body).body, Buffer.concat(chunks).toString());
  });

  it('a chunked body over the limit is cut while streaming with 413, and the upstream never gets it whole', async () => {
    const calls = up.requests.length;
    const chunks = Array.from({ length: 40 }, () => Buffer.alloc(4096, 120));
    const res = await sendChunked(`${gw.url}/stream`, chunks);
    assert.equal(res.status, 413);
    assert.equal(JSON.parse(res.body).message, 'Request size limit exceeded');
    assert.equal(res.headers.connection, 'close');
    await new Promise((r) => setTimeout(r, 100));
    const forwarded = up.requests.slice(calls);
    assert.ok(forwarded.every((r) => r.body.length <= 64 * 1024), 'no more than the limit was forwarded');
    assert.ok((await send(`${gw.url}/kb`)).status === 200, 'the gateway keeps serving');
  });
});
