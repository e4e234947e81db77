import { createRequire } from 'node:module';
import type * as DnsModule from 'node:dns';
import net from 'node:net';

/**
 * Resolution of target host names, with the TTLs of the records (node:dns only). Each
 * HostResolver owns its c-ares `Resolver` (servers, timeout, tries): nothing is shared between
 * instances or kept at module level.
 */

export interface ResolvedAddress {
  ip: string;
  family: 4 | 6;
}

export interface ResolvedHost {
  /** Deduplicated, in a canonical order (IPv4 first, then by text), so lists compare as strings. */
  addresses: ResolvedAddress[];
  /** Seconds: the lowest TTL of the records; Infinity for an IP literal. */
  ttl: number;
}

export interface HostResolverOptions {
  /** DNS servers, "ip", "ip:port" or "[ipv6]:port"; empty or undefined: the system resolver (/etc/resolv.conf). */
  servers?: readonly string[];
  /** Per query attempt, in ms (default 2000). */
  timeoutMs?: number;
  /** Attempts per server before giving up (default 2). */
  tries?: number;
}

export interface WatchOptions {
  /** Lowest re-resolution interval in seconds, whatever the TTL (default 1). */
  minTtl?: number;
  /** Highest re-resolution interval in seconds (default 3600). */
  maxTtl?: number;
  /** Seconds before retrying after a failed resolution (default 5). */
  errorRetry?: number;
}

/**
 * TTL (seconds) given to addresses found by the `dns.lookup` fallback (hosts file, nsswitch),
 * which reports none: short enough that an edited hosts file is picked up soon.
 */
export const LOOKUP_FALLBACK_TTL = 30;

/** A host name that did not resolve; `code` is the DNS error code (ENOTFOUND, ENODATA, ETIMEOUT, ECONNREFUSED, ...). */
export class DnsError extends Error {
  readonly code: string;
  readonly hostname: string;
  constructor(hostname: string, code: string, options?: { cause?: unknown }) {
    super(`cannot resolve "${hostname}": ${code}`, options);
    this.name = 'DnsError';
    this.code = code;
    this.hostname = hostname;
  }
}

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA']);

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

function canonical(addresses: ResolvedAddress[]): ResolvedAddress[] {
  const seen = new Set<string>();
  const out: ResolvedAddress[] = [];
  for (const a of addresses) {
    if (seen.has(a.ip)) continue;
    seen.add(a.ip);
    out.push(a);
  }
  return out.sort((x, y) => x.family - y.family || (x.ip < y.ip ? -1 : x.ip > y.ip ? 1 : 0));
}

function sameAddresses(a: readonly ResolvedAddress[], b: readonly ResolvedAddress[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.ip !== b[i]!.ip) return false;
  return true;
}

export class HostResolver {
  private readonly resolver: DnsModule.promises.Resolver;
  private readonly dns: typeof DnsModule;
  private readonly customServers: boolean;

  /** Throws (at build time) when a server address is invalid. */
  constructor(options: HostResolverOptions = {}) {
    // node:dns is loaded by the first resolver: a config without host-name targets never needs it.
    this.dns = createRequire(import.meta.url)('node:dns') as typeof DnsModule;
    this.resolver = new this.dns.promises.Resolver({ timeout: options.timeoutMs ?? 2000, tries: options.tries ?? 2 });
    this.customServers = (options.servers?.length ?? 0) > 0;
    if (this.customServers) this.resolver.setServers(options.servers!.slice());
  }

  /**
   * An IP literal resolves to itself (ttl Infinity). A host name is asked for A and AAAA records
   * at once; either family alone is enough. With the system resolver (no `servers`), a name that
   * DNS cannot resolve, for whatever reason, is then looked up through `dns.lookup` (getaddrinfo:
   * hosts file, e.g. "localhost"), ttl LOOKUP_FALLBACK_TTL. Rejects with a DnsError when nothing
   * resolves: the resolver's code (ENOTFOUND for NXDOMAIN, ENODATA for no records, ETIMEOUT, ...).
   */
  async resolve(hostname: string): Promise<ResolvedHost> {
    const literal = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
    const family = net.isIP(literal);
    if (family === 4 || family === 6) return { addresses: [{ ip: literal, family }], ttl: Infinity };

    const [v4, v6] = await Promise.allSettled([this.resolver.resolve4(hostname, { ttl: true }), this.resolver.resolve6(hostname, { ttl: true })]);
    const addresses: ResolvedAddress[] = [];
    let ttl = Infinity;
    for (const [result, fam] of [[v4, 4], [v6, 6]] as const) {
      if (result.status !== 'fulfilled') continue;
      for (const r of result.value) {
        addresses.push({ ip: r.address, family: fam });
        if (r.ttl < ttl) ttl = r.ttl;
      }
    }
    if (addresses.length > 0) return { addresses: canonical(addresses), ttl };

    // Nothing found: the most telling error (a timeout or refusal says more than "not found").
    const errors = [v4, v6].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    const failure = errors.find((e) => !NOT_FOUND.has(codeOf(e))) ?? errors[0];
    const code = failure === undefined ? 'ENODATA' : codeOf(failure);

    if (!this.customServers) {
      try {
        const found = await this.dns.promises.lookup(hostname, { all: true });
        const list = found.filter((a) => a.family === 4 || a.family === 6).map((a) => ({ ip: a.address, family: a.family as 4 | 6 }));
        if (list.length > 0) return { addresses: canonical(list), ttl: LOOKUP_FALLBACK_TTL };
      } catch {
        // the resolver's error says more (ENODATA vs ENOTFOUND, a timeout)
      }
    }
    throw new DnsError(hostname, code, { cause: failure });
  }

  /**
   * Resolves `hostname` now and again when the TTL expires (clamped to [minTtl, maxTtl]); an IP
   * literal is resolved once. `onChange` gets the first result and then every result whose address
   * list differs from the previous one. A failed resolution calls `onError` and is retried after
   * `errorRetry` seconds; the previous addresses stay in use meanwhile (stale rather than none).
   * An exception thrown by `onChange` is passed to `onError`; one thrown by `onError` is dropped
   * (a timer callback has nobody to report to). Timers are unref'd. Returns the stop function.
   */
  watch(hostname: string, onChange: (r: ResolvedHost) => void, onError: (err: Error) => void, opts: WatchOptions = {}): () => void {
    const minTtl = opts.minTtl ?? 1;
    const maxTtl = opts.maxTtl ?? 3600;
    const errorRetry = opts.errorRetry ?? 5;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let previous: ResolvedAddress[] | undefined;

    const report = (err: unknown) => {
      try {
        onError(err instanceof Error ? err : new Error(String(err)));
      } catch {
        // nothing to report to
      }
    };
    const schedule = (seconds: number) => {
      if (stopped || !Number.isFinite(seconds)) return;
      timer = setTimeout(run, seconds * 1000);
      timer.unref();
    };
    const run = () => {
      timer = undefined;
      this.resolve(hostname).then(
        (result) => {
          if (stopped) return;
          if (previous === undefined || !sameAddresses(previous, result.addresses)) {
            previous = result.addresses;
            try {
              onChange(result);
            } catch (err) {
              report(err);
            }
          }
          schedule(Number.isFinite(result.ttl) ? Math.min(maxTtl, Math.max(minTtl, result.ttl)) : Infinity);
        },
        (err: unknown) => {
          if (stopped) return;
          report(err);
          schedule(errorRetry);
        },
      );
    };
    run();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    };
  }
}
