import type { CompiledRoute } from '../config/snapshot.js';
import type { RouteConfig } from '../config/schema.js';
import { toJsRegexSource } from '../config/normalize.js';

/** What the router needs to know about a request. */
export interface RouteRequest {
  method: string;
  /** Lower case, without port. */
  host: string;
  /** Port of the Host header ("" when none). */
  port: string;
  /** Normalised path. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** TLS server name, when the request came over TLS. */
  sni: string | undefined;
}

export interface RouteMatch {
  route: CompiledRoute;
  /** The part of the path the route's path matched (prefix, or the regex's whole match); "" for pathless routes. */
  matchedPath: string;
  /** The route path that matched, as configured ("/x" or "~regex"). */
  routePath: string | undefined;
  captures: Record<string, string> | undefined;
}

interface HeaderRule {
  name: string;
  exact: Set<string>;
  regexes: RegExp[];
}

/** One (route, path) pair: a route with several paths gives several entries, each with its own priority. */
interface Entry {
  route: CompiledRoute;
  /** 0 = best. Assigned after sorting all entries by Kong's precedence. */
  rank: number;
  methods: Set<string> | undefined;
  headers: HeaderRule[] | undefined;
  snis: Set<string> | undefined;
  hosts: string[] | undefined;
  wildcardHosts: RegExp[] | undefined;
  prefix: string | undefined;
  regex: RegExp | undefined;
  routePath: string | undefined;
}

class Bucket {
  /** Routes without paths, best first. */
  pathless: Entry[] = [];
  /** Regex paths, best first. */
  regex: Entry[] = [];
  /** Prefix string -> entries, best first. */
  prefixes = new Map<string, Entry[]>();
  /** Distinct prefix lengths, longest first. */
  prefixLengths: number[] = [];

  add(e: Entry): void {
    if (e.regex) this.regex.push(e);
    else if (e.prefix !== undefined) {
      let list = this.prefixes.get(e.prefix);
      if (!list) this.prefixes.set(e.prefix, (list = []));
      list.push(e);
    } else this.pathless.push(e);
  }

  seal(): void {
    const byRank = (a: Entry, b: Entry) => a.rank - b.rank;
    this.pathless.sort(byRank);
    this.regex.sort(byRank);
    for (const list of this.prefixes.values()) list.sort(byRank);
    this.prefixLengths = [...new Set([...this.prefixes.keys()].map((p) => p.length))].sort((a, b) => b - a);
  }
}

/** Kong's precedence (traditional_compatible router), most significant first. */
function sortKey(route: RouteConfig, path: string | undefined): number[] {
  const weight = [route.methods?.length, route.hosts?.length, path !== undefined ? 1 : 0, route.headers && Object.keys(route.headers).length, route.snis?.length].filter(Boolean).length;
  const plainHostsOnly = route.hosts?.length && route.hosts.every((h) => !h.includes('*')) ? 1 : 0;
  const headerCount = route.headers ? Object.keys(route.headers).length : 0;
  const isRegex = path?.startsWith('~') ? 1 : 0;
  const uriLength = path === undefined ? 0 : isRegex ? path.length - 1 : path.length;
  return [weight, plainHostsOnly, headerCount, isRegex, route.regex_priority, uriLength];
}

function wildcardToRegex(host: string): RegExp {
  const escaped = host.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace('*', '.+');
  return new RegExp(`^${escaped}$`);
}

/**
 * The compiled route table: built once per config, then only read. Requests are narrowed by host
 * (exact map, then wildcards, then host-less routes) and by path (a map of prefixes probed at
 * each configured prefix length, and the regex list), so cost grows with the path length and the
 * number of candidates, not with the number of routes.
 */
export class Router {
  private readonly exactHosts = new Map<string, Bucket>();
  private readonly wildcards: { pattern: RegExp; bucket: Bucket }[] = [];
  private readonly hostless = new Bucket();
  readonly size: number;

  constructor(routes: { route: CompiledRoute; config: RouteConfig; order: number }[]) {
    const drafts: { entry: Entry; key: number[]; order: number; sub: number }[] = [];
    for (const { route, config, order } of routes) {
      const paths: (string | undefined)[] = config.paths?.length ? config.paths : [undefined];
      paths.forEach((path, sub) => {
        const hosts = config.hosts?.filter((h) => !h.includes('*')).map((h) => h.toLowerCase());
        const wild = config.hosts?.filter((h) => h.includes('*')).map((h) => wildcardToRegex(h.toLowerCase()));
        const entry: Entry = {
          route,
          rank: 0,
          methods: config.methods?.length ? new Set(config.methods) : undefined,
          headers: config.headers
            ? Object.entries(config.headers).map(([name, values]) => ({
                name: name.toLowerCase(),
                exact: new Set(values.filter((v) => !v.startsWith('~*')).map((v) => v.toLowerCase())),
                regexes: values.filter((v) => v.startsWith('~*')).map((v) => new RegExp(toJsRegexSource(v.slice(2)), 'i')),
              }))
            : undefined,
          snis: config.snis?.length ? new Set(config.snis.map((s) => s.toLowerCase())) : undefined,
          hosts: hosts?.length ? hosts : undefined,
          wildcardHosts: wild?.length ? wild : undefined,
          prefix: path !== undefined && !path.startsWith('~') ? path : undefined,
          regex: path?.startsWith('~') ? new RegExp(`^(?:${toJsRegexSource(path.slice(1))})`) : undefined,
          routePath: path,
        };
        drafts.push({ entry, key: sortKey(config, path), order, sub });
      });
    }
    drafts.sort((a, b) => {
      for (let i = 0; i < a.key.length; i++) {
        const d = b.key[i]! - a.key[i]!;
        if (d !== 0) return d;
      }
      return a.order - b.order || a.sub - b.sub;
    });
    drafts.forEach((d, rank) => {
      const e = d.entry;
      e.rank = rank;
      if (!e.hosts && !e.wildcardHosts) this.hostless.add(e);
      for (const h of e.hosts ?? []) {
        let b = this.exactHosts.get(h);
        if (!b) this.exactHosts.set(h, (b = new Bucket()));
        b.add(e);
      }
      for (const w of e.wildcardHosts ?? []) {
        let slot = this.wildcards.find((x) => x.pattern.source === w.source);
        if (!slot) this.wildcards.push((slot = { pattern: w, bucket: new Bucket() }));
        slot.bucket.add(e);
      }
    });
    this.hostless.seal();
    for (const b of this.exactHosts.values()) b.seal();
    for (const w of this.wildcards) w.bucket.seal();
    this.size = routes.length;
  }

  match(req: RouteRequest): RouteMatch | undefined {
    let best: Entry | undefined;
    let bestPath = '';
    let bestCaptures: Record<string, string> | undefined;
    const consider = (bucket: Bucket | undefined) => {
      if (!bucket) return;
      for (const e of bucket.pathless) {
        if (best && e.rank >= best.rank) break;
        if (this.conditions(e, req)) {
          best = e;
          bestPath = '';
          bestCaptures = undefined;
          break;
        }
      }
      const path = req.path;
      for (const len of bucket.prefixLengths) {
        if (len > path.length) continue;
        const list = bucket.prefixes.get(len === path.length ? path : path.slice(0, len));
        if (!list) continue;
        for (const e of list) {
          if (best && e.rank >= best.rank) break;
          if (this.conditions(e, req)) {
            best = e;
            bestPath = e.prefix!;
            bestCaptures = undefined;
            break;
          }
        }
      }
      for (const e of bucket.regex) {
        if (best && e.rank >= best.rank) break;
        const m = e.regex!.exec(path);
        if (m && this.conditions(e, req)) {
          best = e;
          bestPath = m[0];
          bestCaptures = captureMap(m);
          break;
        }
      }
    };
    if (req.host) {
      consider(this.exactHosts.get(req.host));
      if (req.port) consider(this.exactHosts.get(`${req.host}:${req.port}`));
      for (const w of this.wildcards) {
        if (w.pattern.test(req.host) || (req.port !== '' && w.pattern.test(`${req.host}:${req.port}`))) consider(w.bucket);
      }
    }
    consider(this.hostless);
    if (!best) return undefined;
    const chosen: Entry = best;
    return { route: chosen.route, matchedPath: bestPath, routePath: chosen.routePath, captures: bestCaptures };
  }

  private conditions(e: Entry, req: RouteRequest): boolean {
    if (e.methods && !e.methods.has(req.method)) return false;
    if (e.snis && (req.sni === undefined || !e.snis.has(req.sni))) return false;
    if (e.headers) {
      for (const rule of e.headers) {
        const value = req.headers[rule.name];
        if (value === undefined) return false;
        if (!(Array.isArray(value) ? value.some((v) => headerValueMatches(rule, v)) : headerValueMatches(rule, value))) return false;
      }
    }
    return true;
  }
}

function headerValueMatches(rule: HeaderRule, value: string): boolean {
  if (rule.exact.has(value.toLowerCase())) return true;
  for (const r of rule.regexes) if (r.test(value)) return true;
  return false;
}

function captureMap(m: RegExpExecArray): Record<string, string> | undefined {
  if (m.length === 1 && !m.groups) return undefined;
  const out: Record<string, string> = {};
  for (let i = 1; i < m.length; i++) if (m[i] !== undefined) out[i] = m[i]!;
  if (m.groups) for (const [k, v] of Object.entries(m.groups)) if (v !== undefined) out[k] = v;
  return out;
}
