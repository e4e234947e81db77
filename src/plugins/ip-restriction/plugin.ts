import { errorReply } from '../../pipeline/reply.js';
import { IpMatcher } from '../../lib/ip-matcher.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import type { IpRestrictionConfig } from './schema.js';

export function create(config: IpRestrictionConfig, _deps: PluginDeps): PluginInstance {
  const deny = new IpMatcher(config.deny ?? []);
  const allow = new IpMatcher(config.allow ?? []);
  const status = config.status ?? 403;
  return {
    access(ex) {
      // ex.clientIp is the address after trusted-proxy processing: a forged X-Forwarded-For from an untrusted peer is ignored there.
      const ip = ex.clientIp;
      const denied = deny.has(ip);
      if (!denied && (allow.empty || allow.has(ip))) return undefined;
      return errorReply(ex, status, config.message ?? `IP address not allowed: ${ip}`, `ip-restriction: ${denied ? 'denied' : 'not allowed'} ${ip}`);
    },
  };
}
