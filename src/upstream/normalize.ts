import { isIP } from 'node:net';
import type { TargetConfig, UpstreamConfig } from './schema.js';
import { refKey } from '../lib/ref-key.js';

/** A target after validation: host and port split, Kong's default port filled in. */
export interface NormalTarget {
  id: string;
  at: string;
  /** "host:port" as Kong shows it ("[v6]:port" for IPv6). */
  target: string;
  host: string;
  port: number;
  weight: number;
  entity: TargetConfig;
}

export interface NormalUpstream {
  id: string;
  at: string;
  name: string;
  entity: UpstreamConfig;
  targets: NormalTarget[];
}

/** Kong's default target port (kong/db/dao/targets.lua). */
export const DEFAULT_TARGET_PORT = 8000;

const HOSTNAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/i;

/** "host", "host:port", "ip", "ip:port", "[v6]" or "[v6]:port", or an error message. */
export function parseTarget(value: string): { host: string; port: number; target: string } | string {
  let host: string;
  let port: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (v6) [, host, port] = v6 as unknown as [string, string, string | undefined];
  else if (isIP(value) === 6) host = value;
  else {
    const m = /^([^:]+)(?::(\d+))?$/.exec(value);
    if (!m) return 'Invalid target; not a valid hostname or ip address';
    [, host, port] = m as unknown as [string, string, string | undefined];
  }
  const family = isIP(host);
  if (v6 && family !== 6) return 'Invalid target; not a valid hostname or ip address';
  if (!family && !HOSTNAME.test(host)) return 'Invalid target; not a valid hostname or ip address';
  const n = port === undefined ? DEFAULT_TARGET_PORT : Number(port);
  if (!Number.isInteger(n) || n < 1 || n > 65535) return 'Invalid target; port must be between 1 and 65535';
  const lower = family ? host : host.toLowerCase();
  return { host: lower, port: n, target: `${family === 6 ? `[${lower}]` : lower}:${n}` };
}


const NEEDS: Record<string, keyof UpstreamConfig | undefined> = { header: 'hash_on_header', cookie: 'hash_on_cookie', query_arg: 'hash_on_query_arg', uri_capture: 'hash_on_uri_capture' };
const NEEDS_FALLBACK: Record<string, keyof UpstreamConfig | undefined> = {
  header: 'hash_fallback_header',
  cookie: 'hash_on_cookie',
  query_arg: 'hash_fallback_query_arg',
  uri_capture: 'hash_fallback_uri_capture',
};

/**
 * Checks upstreams and targets (nested and top-level) and returns them with their targets;
 * problems are reported through `err` by path, as the rest of the normalizer does.
 */
export function checkUpstreams(
  upstreams: readonly UpstreamConfig[],
  targets: readonly TargetConfig[],
  err: (at: string, message: string) => void,
  claimId: (table: string, at: string, id: string | undefined, key: string | undefined) => string,
): NormalUpstream[] {
  const out: NormalUpstream[] = [];
  const byKey = new Map<string, NormalUpstream>();
  upstreams.forEach((u, i) => {
    const at = `upstreams[${i}]`;
    const name = u.name.toLowerCase();
    if (isIP(u.name) || isIP(u.name.replace(/^\[|\]$/g, ''))) err(`${at}.name`, 'Invalid name; no ip addresses allowed');
    else if (/:\d*$/.test(u.name)) err(`${at}.name`, 'Invalid name; no port allowed');
    else if (!HOSTNAME.test(u.name)) err(`${at}.name`, 'Invalid name; must be a valid hostname');
    if (byKey.has(name)) err(`${at}.name`, `UNIQUE violation: "${u.name}" is already used`);
    const id = claimId('upstreams', at, u.id, name);
    for (const [field, value] of [
      ['hash_on', u.hash_on],
      ['hash_fallback', u.hash_fallback],
    ] as const) {
      const need = (field === 'hash_on' ? NEEDS : NEEDS_FALLBACK)[value];
      if (need && u[need] === undefined) err(`${at}.${need}`, `required when ${field} is "${value}"`);
    }
    if ((u.hash_on === 'none' || u.hash_on === 'cookie') && u.hash_fallback !== 'none') err(`${at}.hash_fallback`, `must be "none" when hash_on is "${u.hash_on}"`);
    if (u.hash_on !== 'none' && u.hash_on === u.hash_fallback) {
      const same =
        (u.hash_on === 'header' && u.hash_on_header?.toLowerCase() === u.hash_fallback_header?.toLowerCase()) ||
        (u.hash_on === 'query_arg' && u.hash_on_query_arg === u.hash_fallback_query_arg) ||
        (u.hash_on === 'uri_capture' && u.hash_on_uri_capture === u.hash_fallback_uri_capture) ||
        !['header', 'query_arg', 'uri_capture'].includes(u.hash_on);
      if (same) err(`${at}.hash_fallback`, 'must be different from hash_on');
    }
    const entry: NormalUpstream = { id, at, name, entity: u, targets: [] };
    byKey.set(name, entry);
    byKey.set(id, entry);
    out.push(entry);
    u.targets?.forEach((t, j) => addTarget(entry, t as TargetConfig, `${at}.targets[${j}]`));
  });
  targets.forEach((t, i) => {
    const at = `targets[${i}]`;
    const ref = refKey(t.upstream);
    if (ref === undefined) return err(`${at}.upstream`, 'required field missing');
    const entry = byKey.get(ref) ?? byKey.get(ref.toLowerCase());
    if (!entry) return err(`${at}.upstream`, `no upstream named "${ref}"`);
    addTarget(entry, t, at);
  });

  function addTarget(u: NormalUpstream, t: TargetConfig, at: string): void {
    const parsed = parseTarget(t.target);
    if (typeof parsed === 'string') return err(`${at}.target`, parsed);
    const dup = u.targets.find((x) => x.target === parsed.target);
    if (dup) return err(`${at}.target`, `UNIQUE violation: "${parsed.target}" is already a target of upstream "${u.name}" (${dup.at})`);
    const id = claimId('targets', at, t.id, `${u.id}:${parsed.target}`);
    u.targets.push({ id, at, target: parsed.target, host: parsed.host, port: parsed.port, weight: t.weight, entity: t });
  }
  return out;
}
