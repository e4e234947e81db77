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

/** One (route, path) entry as Router.explain sees it: what did not match, empty when everything did. */
export interface RouteCandidate {
  route: CompiledRoute;
  /** The route path of this entry ("/x" or "~regex"), undefined for a pathless route. */
  routePath: string | undefined;
  /** Position in Kong's precedence order (0 = considered first). */
  rank: number;
  mismatches: string[];
}

export interface RouteExplanation {
  /** What match() answers. */
  match: RouteMatch | undefined;
  /** Every entry, in precedence order. */
  candidates: RouteCandidate[];
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
  wildcardHosts: string[] | undefined;
  prefix: string | undefined;
  regex: RegExp | undefined;
  /** Literal start of the regex's matches (see literalPrefix). */
  regexLiteral: string;
  routePath: string | undefined;
}

/** Entries keyed by a literal prefix, probed at each distinct prefix length, longest first. */
class PrefixIndex {
  private readonly map = new Map<string, Entry[]>();
  lengths: number[] = [];

  add(prefix: string, e: Entry): void {
    let list = this.map.get(prefix);
    if (!list) this.map.set(prefix, (list = []));
    list.push(e);
  }

  seal(): void {
    for (const list of this.map.values()) list.sort(byRank);
    this.lengths = [...new Set([...this.map.keys()].map((p) => p.length))].sort((a, b) => b - a);
  }

  /** Entry lists whose key is a prefix of `path`. */
  get(path: string, len: number): Entry[] | undefined {
    return this.map.get(len === path.length ? path : path.slice(0, len));
  }

  /** Every entry (for Router.explain). */
  *entries(): Iterable<Entry> {
    for (const list of this.map.values()) yield* list;
  }
}

const byRank = (a: Entry, b: Entry) => a.rank - b.rank;

class Bucket {
  /** Routes without paths, best first. */
  pathless: Entry[] = [];
  /** Prefix paths by prefix. */
  prefixes = new PrefixIndex();
  /** Regex paths by the literal text every match must start with ("" when unknown). */
  regexes = new PrefixIndex();

  add(e: Entry): void {
    if (e.regex) this.regexes.add(e.regexLiteral, e);
    else if (e.prefix !== undefined) this.prefixes.add(e.prefix, e);
    else this.pathless.push(e);
  }

  seal(): void {
    this.pathless.sort(byRank);
    this.prefixes.seal();
    this.regexes.seal();
  }
}

/**
 * The literal text a regex path's matches must start with, so most requests skip most regexes:
 * "/users/(?<id>\d+)" -> "/users/". Conservative: any alternation or unusual start gives "".
 */
export function literalPrefix(source: string): string {
  if (source.includes('|')) return '';
  let out = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      const next = source[i + 1];
      if (next !== undefined && /[/.\-_~]/.test(next)) {
        out += next;
        i++;
        continue;
      }
      break;
    }
    if ('^$.|?*+()[]{}'.includes(c)) {
      // A quantifier applies to the previous character, which is then optional or repeated.
      if (c === '?' || c === '*' || c === '{') out = out.slice(0, -1);
      break;
    }
    out += c;
  }
  return out;
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

/**
 * The compiled route table: built once per config, then only read. Requests are narrowed by host
 * (exact map, then wildcards, then host-less routes) and by path (a map of prefixes probed at
 * each configured prefix length, and the regex list), so cost grows with the path length and the
 * number of candidates, not with the number of routes.
 */
export class Router {
  private readonly exactHosts = new Map<string, Bucket>();
  /** "*.example.com" under "example.com"; "api.*" under "api". */
  private readonly leadingWildcards = new Map<string, Bucket>();
  private readonly trailingWildcards = new Map<string, Bucket>();
  private readonly hostless = new Bucket();
  readonly size: number;

  constructor(routes: { route: CompiledRoute; config: RouteConfig; order: number }[]) {
    const drafts: { entry: Entry; key: number[]; order: number; sub: number }[] = [];
    for (const { route, config, order } of routes) {
      const paths: (string | undefined)[] = config.paths?.length ? config.paths : [undefined];
      paths.forEach((path, sub) => {
        const hosts = config.hosts?.filter((h) => !h.includes('*')).map((h) => h.toLowerCase());
        const wild = config.hosts?.filter((h) => h.includes('*')).map((h) => h.toLowerCase());
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
          regexLiteral: path?.startsWith('~') ? literalPrefix(toJsRegexSource(path.slice(1))) : '',
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
        const leading = w.startsWith('*.');
        const map = leading ? this.leadingWildcards : this.trailingWildcards;
        const key = leading ? w.slice(2) : w.slice(0, w.lastIndexOf('.*'));
        let b = map.get(key);
        if (!b) map.set(key, (b = new Bucket()));
        b.add(e);
      }
    });
    this.hostless.seal();
    for (const b of this.exactHosts.values()) b.seal();
    for (const b of this.leadingWildcards.values()) b.seal();
    for (const b of this.trailingWildcards.values()) b.seal();
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
      const prefixes = bucket.prefixes;
      for (const len of prefixes.lengths) {
        if (len > path.length) continue;
        const list = prefixes.get(path, len);
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
      const regexes = bucket.regexes;
      for (const len of regexes.lengths) {
        if (len > path.length) continue;
        const list = regexes.get(path, len);
        if (!list) continue;
        for (const e of list) {
          if (best && e.rank >= best.rank) break;
          const m = e.regex!.exec(path);
          if (m && this.conditions(e, req)) {
            best = e;
            bestPath = m[0];
            bestCaptures = captureMap(m);
            break;
          }
        }
      }
    };
    if (req.host) {
      consider(this.exactHosts.get(req.host));
      if (req.port) consider(this.exactHosts.get(`${req.host}:${req.port}`));
      if (this.leadingWildcards.size || this.trailingWildcards.size) this.considerWildcards(req, consider);
    }
    consider(this.hostless);
    if (!best) return undefined;
    const chosen: Entry = best;
    return { route: chosen.route, matchedPath: bestPath, routePath: chosen.routePath, captures: bestCaptures };
  }

  /**
   * For the admin route debugger, never on the request path: every entry in precedence order with
   * the conditions it failed. The answer itself comes from match(), so the two cannot disagree.
   */
  explain(req: RouteRequest): RouteExplanation {
    const seen = new Set<Entry>();
    const buckets = [this.hostless, ...this.exactHosts.values(), ...this.leadingWildcards.values(), ...this.trailingWildcards.values()];
    for (const b of buckets) {
      for (const e of b.pathless) seen.add(e);
      for (const e of b.prefixes.entries()) seen.add(e);
      for (const e of b.regexes.entries()) seen.add(e);
    }
    const hosts = req.port ? [req.host, `${req.host}:${req.port}`] : [req.host];
    const candidates = [...seen].sort(byRank).map((e) => {
      const mismatches: string[] = [];
      if (e.hosts || e.wildcardHosts) {
        const exact = e.hosts?.some((h) => hosts.includes(h)) ?? false;
        const wild = e.wildcardHosts?.some((w) =>
          hosts.some((h) => (w.startsWith('*.') ? h.endsWith(w.slice(1)) && h.length > w.length - 1 : h.startsWith(w.slice(0, w.lastIndexOf('.*') + 1)) && h.length > w.lastIndexOf('.*') + 1)),
        );
        if (!exact && !wild) mismatches.push(`host "${req.host}" is not one of ${JSON.stringify([...(e.hosts ?? []), ...(e.wildcardHosts ?? [])])}`);
      }
      if (e.prefix !== undefined && !req.path.startsWith(e.prefix)) mismatches.push(`path "${req.path}" does not start with "${e.prefix}"`);
      if (e.regex && !e.regex.test(req.path)) mismatches.push(`path "${req.path}" does not match ${e.routePath}`);
      if (e.methods && !e.methods.has(req.method)) mismatches.push(`method ${req.method} is not one of ${JSON.stringify([...e.methods])}`);
      if (e.snis && (req.sni === undefined || !e.snis.has(req.sni))) mismatches.push(req.sni === undefined ? 'snis: the request has no TLS server name' : `sni "${req.sni}" is not one of ${JSON.stringify([...e.snis])}`);
      for (const rule of e.headers ?? []) {
        const value = req.headers[rule.name];
        if (value === undefined) mismatches.push(`header ${rule.name} is missing`);
        else if (!(Array.isArray(value) ? value.some((v) => headerValueMatches(rule, v)) : headerValueMatches(rule, value))) mismatches.push(`header ${rule.name} has no accepted value`);
      }
      return { route: e.route, routePath: e.routePath, rank: e.rank, mismatches };
    });
    return { match: this.match(req), candidates };
  }

  /** Wildcard buckets for the host: "*.b.c" and "*.c" for "a.b.c" (a "*" spans one or more labels), "a.*" and "a.b.*". */
  private considerWildcards(req: RouteRequest, consider: (b: Bucket | undefined) => void): void {
    const hosts = req.port ? [req.host, `${req.host}:${req.port}`] : [req.host];
    for (const host of hosts) {
      for (let dot = host.indexOf('.'); dot > 0; dot = host.indexOf('.', dot + 1)) {
        consider(this.leadingWildcards.get(host.slice(dot + 1)));
        consider(this.trailingWildcards.get(host.slice(0, dot)));
      }
    }
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
