import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Agent } from 'undici';
import { load } from '../../lib/lazy.js';
import type { Logger } from '../../observability/logger.js';
import { keyProblem } from '../auth-common/key-types.js';

/** One usable verification key from the set. */
export interface KeyEntry {
  kid: string | undefined;
  /** The JWK's `alg`, when it names one: then the key verifies only that algorithm. */
  alg: string | undefined;
  key: KeyObject;
}

export interface KeySetOptions {
  jwksUri: string | undefined;
  discoveryUri: string | undefined;
  timeoutMs: number;
  cacheTtlMs: number;
  cooldownMs: number;
  logger: Logger;
  /** Clock in ms (tests). */
  now?: () => number;
}

/** Largest discovery document or key set read (a JWKS is a few KB). */
const MAX_BYTES = 512 * 1024;
const MAX_KEYS = 100;

/** Why a lookup found no key: the set could not be loaded at all, or it has no key for the token. */
export type Resolution = { kind: 'keys'; keys: KeyEntry[] } | { kind: 'unavailable' };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A URL for the log: no user info, no query (either may carry a secret). */
function redact(url: string): string {
  return url.replace(/^(https?:\/\/)[^@/]*@/i, '$1').replace(/[?#].*$/, '');
}

/**
 * An identity provider's keys for one plugin instance (one snapshot): nothing is module state.
 *
 * - Keys are indexed by `kid`; a `kid` is only ever a map key, never part of a URL or path.
 * - A `kid` that is not in the set triggers a fetch only if the previous fetch started at least
 *   `cooldownMs` ago, and concurrent requests share one fetch: a flood of unknown `kid`s costs at
 *   most one fetch per cooldown.
 * - After `cacheTtlMs` the set is refreshed in the background; known keys keep working meanwhile
 *   and when the refresh fails.
 * - Every fetch (discovery document and JWKS together) is bounded by `timeoutMs`.
 */
export class KeySet {
  private readonly options: KeySetOptions;
  private readonly now: () => number;
  private readonly agent: Agent;
  private readonly disposed = new AbortController();
  private byKid = new Map<string, KeyEntry[]>();
  private all: KeyEntry[] = [];
  private loaded = false;
  private loadedAt = -Infinity;
  private lastAttempt = -Infinity;
  private inflight: Promise<void> | undefined;
  private jwksUri: string | undefined;
  /** The discovery document's issuer, once loaded. */
  issuer: string | undefined;
  /** Fetches started (for tests and logs). */
  fetches = 0;

  constructor(options: KeySetOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.jwksUri = options.jwksUri;
    const { Agent } = load<typeof import('undici')>('undici');
    this.agent = new Agent({ connect: { timeout: options.timeoutMs }, keepAliveTimeout: 10_000, connections: 4 });
  }

  /** Candidate keys for a token header's `kid` (undefined: every key), fetching when allowed. */
  async resolve(kid: string | undefined): Promise<Resolution> {
    let keys = this.lookup(kid);
    const now = this.now();
    if (keys.length) {
      if (now - this.loadedAt >= this.options.cacheTtlMs && this.mayFetch(now)) void this.refresh();
      return { kind: 'keys', keys };
    }
    if (this.inflight) await this.inflight;
    else if (this.mayFetch(now)) await this.refresh();
    keys = this.lookup(kid);
    if (keys.length) return { kind: 'keys', keys };
    return this.loaded ? { kind: 'keys', keys: [] } : { kind: 'unavailable' };
  }

  /** True once a key set has been loaded (the discovery issuer is known). */
  get ready(): boolean {
    return this.loaded;
  }

  dispose(): Promise<void> {
    this.disposed.abort();
    return this.agent.close();
  }

  private lookup(kid: string | undefined): KeyEntry[] {
    if (kid === undefined) return this.all;
    return this.byKid.get(kid) ?? [];
  }

  private mayFetch(now: number): boolean {
    return !this.inflight && !this.disposed.signal.aborted && now - this.lastAttempt >= this.options.cooldownMs;
  }

  /** One fetch at a time; never rejects. */
  private refresh(): Promise<void> {
    this.inflight ??= (async () => {
      this.lastAttempt = this.now();
      this.fetches++;
      const signal = AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), this.disposed.signal]);
      try {
        if (this.jwksUri === undefined) await this.discover(signal);
        const doc = await this.fetchJson(this.jwksUri!, signal);
        this.install(doc);
      } catch (err) {
        if (!this.disposed.signal.aborted) {
          this.options.logger.warn(
            { plugin: 'jwks', url: redact(this.jwksUri ?? this.options.discoveryUri ?? ''), err: { message: (err as Error).message, code: (err as { code?: string }).code } },
            'fetching the key set failed',
          );
        }
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }

  private async discover(signal: AbortSignal): Promise<void> {
    const doc = await this.fetchJson(this.options.discoveryUri!, signal);
    if (!isObject(doc) || typeof doc.jwks_uri !== 'string' || !/^https?:\/\//i.test(doc.jwks_uri)) throw new Error('discovery document has no http(s) jwks_uri');
    if (doc.issuer !== undefined && typeof doc.issuer !== 'string') throw new Error('discovery document has an invalid issuer');
    this.jwksUri = doc.jwks_uri;
    this.issuer = doc.issuer as string | undefined;
  }

  private async fetchJson(url: string, signal: AbortSignal): Promise<unknown> {
    const res = await load<typeof import('undici')>('undici').request(url, {
      method: 'GET',
      headers: { accept: 'application/json' },
      dispatcher: this.agent,
      signal,
      headersTimeout: this.options.timeoutMs,
      bodyTimeout: this.options.timeoutMs,
    });
    if (res.statusCode !== 200) {
      res.body.destroy();
      throw new Error(`HTTP ${res.statusCode}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_BYTES) {
        res.body.destroy();
        throw new Error(`response larger than ${MAX_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }

  /** Replaces the keys with the usable public signing keys of a JWKS document. */
  private install(doc: unknown): void {
    if (!isObject(doc) || !Array.isArray(doc.keys)) throw new Error('not a JWK set (no "keys" array)');
    const byKid = new Map<string, KeyEntry[]>();
    const all: KeyEntry[] = [];
    for (const jwk of doc.keys.slice(0, MAX_KEYS)) {
      const entry = toEntry(jwk);
      if (!entry) continue;
      all.push(entry);
      if (entry.kid !== undefined) {
        const list = byKid.get(entry.kid);
        if (list) list.push(entry);
        else byKid.set(entry.kid, [entry]);
      }
    }
    this.byKid = byKid;
    this.all = all;
    this.loaded = true;
    this.loadedAt = this.now();
  }
}

/** A public signature key, or undefined for anything else (symmetric, private, encryption-only, malformed). */
function toEntry(jwk: unknown): KeyEntry | undefined {
  if (!isObject(jwk)) return undefined;
  if (jwk.kty === 'oct' || jwk.d !== undefined) return undefined;
  if (jwk.use !== undefined && jwk.use !== 'sig') return undefined;
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return undefined;
  if (jwk.kid !== undefined && typeof jwk.kid !== 'string') return undefined;
  if (jwk.alg !== undefined && typeof jwk.alg !== 'string') return undefined;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as never, format: 'jwk' });
  } catch {
    return undefined;
  }
  if (key.type !== 'public') return undefined;
  const alg = jwk.alg as string | undefined;
  if (alg !== undefined && keyProblem(alg, key)) return undefined;
  return { kid: jwk.kid as string | undefined, alg, key };
}
