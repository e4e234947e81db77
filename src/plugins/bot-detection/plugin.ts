import { errorReply } from '../../pipeline/reply.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { BOT_RULES } from './rules.js';
import { compileUserAgentRegex } from './regex.js';
import type { BotDetectionConfig } from './schema.js';

/** Decisions per User-Agent, like Kong's per-plugin LRU: the built-in list is long, User-Agents repeat. */
const CACHE_SIZE = 1000;

export function create(config: BotDetectionConfig, _deps: PluginDeps): PluginInstance {
  const allow = config.allow.map(compileUserAgentRegex);
  const deny = config.deny.map(compileUserAgentRegex);
  const bots = BOT_RULES.map((r) => new RegExp(r));
  const cache = new Map<string, boolean>();

  function allowed(ua: string): boolean {
    const hit = cache.get(ua);
    if (hit !== undefined) return hit;
    let ok: boolean;
    if (allow.some((re) => re.test(ua))) ok = true;
    else ok = !deny.some((re) => re.test(ua)) && !bots.some((re) => re.test(ua));
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(ua, ok);
    return ok;
  }

  return {
    access(ex) {
      const values = ex.req.headersDistinct['user-agent'];
      if (!values) return undefined;
      if (values.length > 1) return errorReply(ex, 400, 'Only one User-Agent header allowed', 'bot-detection: several User-Agent headers');
      if (allowed(values[0]!)) return undefined;
      return errorReply(ex, 403, undefined, 'bot-detection: bot User-Agent');
    },
  };
}
