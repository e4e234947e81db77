import type { AdminAnswer, AdminRequest } from '../plugins/types.js';
import type { Snapshot } from '../config/snapshot.js';
import type { ConfigManager } from './manager.js';
import type { RouteQuery } from './explain.js';

/** What the admin API controls: one gateway, or the workers of a node through the primary. */
export interface AdminTarget {
  info(): Record<string, unknown>;
  status(): Promise<Record<string, unknown>>;
  exportConfig(): unknown;
  /** Validates and applies a whole config; rejects with ConfigError when invalid (nothing applied). */
  applyConfig(document: unknown): Promise<void>;
  /** Offers a request the core does not handle to the plugins (see PluginInstance.admin). */
  pluginAdmin(request: AdminRequest): Promise<AdminAnswer | undefined>;
  /** The document behind entity CRUD; without it only the endpoints above exist. */
  manager?: ConfigManager;
  /** GET /debug/route: asks a gateway's router (in a worker when there are several). */
  explainRoute?(query: RouteQuery): Promise<Record<string, unknown>>;
  /** GET /cluster/nodes (cluster mode). */
  clusterNodes?(): Promise<Record<string, unknown>[]>;
}

/** Asks each plugin instance of a snapshot in turn; the first answer wins. */
export async function askPlugins(snapshot: Snapshot, request: AdminRequest): Promise<AdminAnswer | undefined> {
  // Upstream health (GET .../health, PUT .../healthy|unhealthy) is kept by the gateway, like plugin state.
  if (request.path.startsWith('/upstreams/')) {
    for (const upstream of snapshot.upstreams.values()) {
      const answer = upstream.admin(request);
      if (answer) return answer;
    }
  }
  const seen = new Set<unknown>();
  const instances = [...snapshot.globalPlugins.all, ...[...snapshot.routes.values()].flatMap((r) => r.plugins.all)];
  for (const p of instances) {
    if (seen.has(p.instance) || !p.instance.admin) continue;
    seen.add(p.instance);
    const answer = await p.instance.admin(request);
    if (answer) return answer;
  }
  return undefined;
}
