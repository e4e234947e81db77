import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateAgainst } from '../../config/validate.js';
import { startGateway, startUpstream, send, type TestGateway, type Upstream } from '../../../test/helpers/harness.js';
import { botDetection } from './index.js';
import type { BotDetectionConfig } from './schema.js';

const BROWSERS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1',
  'curl/8.5.0',
  'python-requests/2.31.0',
  'PostmanRuntime/7.37.0',
];
const BOTS = [
  'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
  'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
  'Twitterbot/1.0',
  'Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)',
  'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
  'Scrapy/2.11.0 (+https://scrapy.org)',
  'Go-http-client/1.1',
  'Apache-HttpClient/4.5.14 (Java/17.0.2)',
  'okhttp/4.12.0',
  'axios/1.6.8',
  'reqwest/0.11',
  'aws-cli/2.15.0 Python/3.11.6',
  'Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)',
];

describe('bot-detection: schema', () => {
  it('defaults and regex validation', () => {
    const config: Record<string, unknown> = {};
    assert.deepEqual(validateAgainst(botDetection.schema, config, 'config'), []);
    assert.deepEqual(config, { allow: [], deny: [] });
    assert.equal(botDetection.check!({ allow: ['('], deny: [] } as BotDetectionConfig), 'config.allow[0]: not a valid regex: (');
    assert.equal(botDetection.priority, 2500);
  });
});

describe('bot-detection: through the gateway', () => {
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
            { name: 'default', paths: ['/default'], plugins: [{ name: 'bot-detection' }] },
            { name: 'lists', paths: ['/lists'], plugins: [{ name: 'bot-detection', config: { allow: ['^Go-http-client/', 'Googlebot'], deny: ['^curl/', '(?i)evil'] } }] },
          ],
        },
      ],
    });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  it('browsers and common tools pass; known bots and default HTTP-library agents get 403', async () => {
    for (const ua of BROWSERS) assert.equal((await send(`${gw.url}/default`, { headers: { 'user-agent': ua } })).status, 200, ua);
    for (const ua of BOTS) {
      const res = await send(`${gw.url}/default`, { headers: { 'user-agent': ua } });
      assert.equal(res.status, 403, ua);
      assert.equal(res.json().message, 'Forbidden');
    }
  });

  it('no User-Agent passes; two User-Agent headers get 400', async () => {
    assert.equal((await send(`${gw.url}/default`)).status, 200);
    const two = await send(`${gw.url}/default`, { headers: { 'user-agent': ['a', 'b'] } });
    assert.equal(two.status, 400);
    assert.equal(two.json().message, 'Only one User-Agent header allowed');
  });

  it('allow is checked first, then deny, then the built-in rules', async () => {
    assert.equal((await send(`${gw.url}/lists`, { headers: { 'user-agent': 'Go-http-client/1.1' } })).status, 200);
    assert.equal((await send(`${gw.url}/lists`, { headers: { 'user-agent': 'Mozilla/5.0 (compatible; Googlebot/2.1)' } })).status, 200);
    assert.equal((await send(`${gw.url}/lists`, { headers: { 'user-agent': 'curl/8.5.0' } })).status, 403);
    assert.equal((await send(`${gw.url}/lists`, { headers: { 'user-agent': 'The EVIL client' } })).status, 403);
    assert.equal((await send(`${gw.url}/lists`, { headers: { 'user-agent': 'okhttp/4.12.0' } })).status, 403);
    assert.equal((await send(`${gw.url}/lists`, { headers: { 'user-agent': BROWSERS[0]! } })).status, 200);
  });
});
