import type { Exchange, Outcome } from '../../pipeline/exchange.js';
import { errorReply } from '../../pipeline/reply.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { isAuthenticated } from '../auth-common/anonymous.js';
import type { AclConfig } from './schema.js';

const FORBIDDEN = 'You cannot consume this service';

export function create(config: AclConfig, deps: PluginDeps): PluginInstance {
  // The schema allows only one non-empty list; were both set, deny would win (as in Kong's handler).
  const deny = config.deny !== undefined && config.deny.length > 0;
  const listed = new Set(deny ? config.deny : (config.allow ?? []));

  /** true: blocked; otherwise the groups header value. */
  function decide(groups: readonly string[]): true | string {
    const inGroup = groups.some((g) => listed.has(g));
    if (deny ? inGroup : !inGroup) return true;
    // The PDK sends an empty header value as a single space.
    return groups.length ? groups.join(', ') : ' ';
  }

  function access(ex: Exchange): Outcome {
    const consumer = ex.consumer;
    const authenticated = isAuthenticated(ex);
    let header: 'x-consumer-groups' | 'x-authenticated-groups' = 'x-authenticated-groups';
    let verdict: true | string;
    if (!consumer) {
      const groups = ex.authenticatedGroups;
      if (!groups) {
        if (authenticated) return errorReply(ex, 403, FORBIDDEN, 'acl: no groups');
        return errorReply(ex, 401, undefined, 'acl: no consumer');
      }
      verdict = decide(groups);
    } else {
      // Authenticated groups override an anonymous consumer's groups (and a real one's with always_use_authenticated_groups).
      const groups = !authenticated || config.always_use_authenticated_groups ? ex.authenticatedGroups : undefined;
      if (groups) {
        verdict = decide(groups);
      } else {
        header = 'x-consumer-groups';
        const own = deps.consumers.groups(consumer.id);
        if (own.length === 0 && !deny) {
          if (authenticated) return errorReply(ex, 403, FORBIDDEN, 'acl: consumer has no groups');
          return errorReply(ex, 401, undefined, 'acl: consumer has no groups');
        }
        verdict = decide(own);
      }
    }
    if (verdict === true) return errorReply(ex, 403, FORBIDDEN, 'acl: group not allowed');
    if (!config.hide_groups_header) ex.upstreamHeaders[header] = verdict;
    return undefined;
  }

  return { access };
}
