import { createHash } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import type { PluginDefinition } from '../plugins/types.js';
import { ConfigError } from '../lib/errors.js';
import { formatAt, parseAt, type ConfigDocument, type DocOp, type DocPath } from './doc.js';
import { ChangeContext } from './entities.js';
import { indexOf } from './doc-index.js';
import { pinDocument } from './pin.js';
import { AdminError, CODES, schemaViolation, setNested } from './errors.js';
import type { MetaMap, ViewContext } from './views.js';

/** One version of the configuration as the admin API holds it. Never mutated. */
export interface ConfigState {
  /** The declarative document, ids pinned (see pinDocument). */
  readonly doc: ConfigDocument;
  /** Timestamps of entities whose schema has no place for them (plugins). */
  readonly meta: MetaMap;
  /** Increases with every applied change; in cluster mode, the version stored in Redis. */
  readonly version: number;
  /** sha256 of the document POST /config last received (Kong's ?check_hash). */
  readonly sourceHash?: string | undefined;
  /** When the whole document was loaded (entities without timestamps show it, as in Kong DB-less). */
  readonly loadedAt?: number | undefined;
}

/** A validated, compiled config that is not live yet. */
export interface Prepared {
  commit(): Promise<void> | void;
  abort(): Promise<void> | void;
}

/** Where configs go live: one gateway, or every worker of a node. */
export interface Applier {
  /**
   * Validates the whole document and compiles it everywhere, without making it live. `delta` is
   * the change from version `base` when it is one (workers replay it instead of receiving the
   * whole document). `fresh`: build everything anew, plugin instances included (a whole config
   * replaced: as a restart would load it); otherwise what did not change is carried over.
   * Rejects with ConfigError, and then nothing is kept anywhere.
   */
  prepare(next: ConfigState, delta: { ops: readonly DocOp[]; base: number } | undefined, fresh?: boolean): Promise<Prepared>;
}

/** Durable storage of the config: the file (one node) or Redis (cluster). */
export interface ConfigBackend {
  /** Gets `next` ready to be published (written but not visible). */
  stage(next: ConfigState, base: ConfigState): Promise<Staged>;
}

export interface Staged {
  /** Makes it the stored config; throws ConflictError when the store moved past `base` (cluster). */
  publish(): Promise<void>;
  discard(): Promise<void>;
}

/** Another writer changed the stored config first: catch up, then retry the change. */
export class ConflictError extends Error {
  constructor(message = 'the stored configuration changed meanwhile') {
    super(message);
    this.name = 'ConflictError';
  }
}

export interface ManagerOptions {
  state: ConfigState;
  applier: Applier;
  backend?: ConfigBackend | undefined;
  plugins: ReadonlyMap<string, PluginDefinition<any>>;
  logger: Logger;
  readOnly?: boolean;
  /** Cluster: fetches the newest stored state after a conflict. */
  latest?: () => Promise<ConfigState | undefined>;
  /** After a state went live (file backup in cluster mode, heartbeats). */
  onApplied?: (state: ConfigState, origin: 'local' | 'remote') => void;
}

const MAX_ATTEMPTS = 20;

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function hashDocument(doc: unknown): string {
  return createHash('sha256').update(JSON.stringify(doc)).digest('hex');
}

export function splitError(e: string): { where: string; message: string } {
  const i = e.indexOf(': ');
  return i < 0 ? { where: '', message: e } : { where: e.slice(0, i), message: e.slice(i + 2) };
}

/**
 * Whole-config validation errors as Kong's schema violation for the entity being changed: errors
 * under its path become its fields (`fields.config.minute`), errors elsewhere (the change broke
 * another entity) go to `@entity` with their full path. `errors` keeps every full path.
 */
export function entityValidationError(errors: string[], subject: DocPath | undefined): AdminError {
  const prefix = subject ? formatAt(subject) : undefined;
  const fields: Record<string, unknown> = {};
  const entityLevel: string[] = [];
  const pairs: string[] = [];
  for (const e of errors) {
    const { where, message } = splitError(e);
    if (prefix !== undefined && where === prefix) {
      entityLevel.push(message);
      pairs.push(message);
    } else if (prefix !== undefined && where.startsWith(`${prefix}.`)) {
      const rel = where.slice(prefix.length + 1);
      setNested(fields, parseAt(rel), message);
      pairs.push(`${rel}: ${message}`);
    } else {
      entityLevel.push(e);
      pairs.push(e);
    }
  }
  if (entityLevel.length) fields['@entity'] = entityLevel;
  return schemaViolation(fields, pairs, errors);
}

/** Entity lists of the declarative format and the entity_type Kong reports for each. */
const ENTITY_TYPES: Record<string, string> = {
  services: 'service',
  routes: 'route',
  plugins: 'plugin',
  consumers: 'consumer',
  upstreams: 'upstream',
  targets: 'target',
  certificates: 'certificate',
  ca_certificates: 'ca_certificate',
  snis: 'sni',
  keyauth_credentials: 'keyauth_credential',
  basicauth_credentials: 'basicauth_credential',
  jwt_secrets: 'jwt_secret',
  hmacauth_credentials: 'hmacauth_credential',
  acls: 'acl',
};

interface FlatError {
  entity_type?: string;
  entity_id?: unknown;
  entity_name?: unknown;
  entity_tags?: unknown;
  entity?: unknown;
  errors: { type: 'field' | 'entity'; field?: string; message: string }[];
}

/**
 * Kong's `?flatten_errors=1` list: one item per entity with errors, found by walking each error's
 * path through the submitted document to the innermost entity it names.
 */
export function flattenErrors(errors: string[], doc: unknown): FlatError[] {
  const byEntity = new Map<unknown, FlatError>();
  const out: FlatError[] = [];
  for (const e of errors) {
    const { where, message } = splitError(e);
    const path = where && where !== '(root)' ? parseAt(where) : [];
    let node: unknown = doc;
    let entity: Record<string, unknown> | undefined;
    let type: string | undefined;
    let rest: (string | number)[] = path;
    for (let i = 0; i < path.length && node && typeof node === 'object'; i++) {
      const key = path[i]!;
      node = (node as Record<string | number, unknown>)[key];
      if (typeof key === 'number' && typeof path[i - 1] === 'string' && ENTITY_TYPES[path[i - 1] as string] && node && typeof node === 'object') {
        entity = node as Record<string, unknown>;
        type = ENTITY_TYPES[path[i - 1] as string];
        rest = path.slice(i + 1);
      }
    }
    let item = byEntity.get(entity ?? doc);
    if (!item) {
      item = entity
        ? { entity_type: type, entity_id: entity.id, entity_name: entity.name ?? entity.username, entity_tags: entity.tags, entity, errors: [] }
        : { errors: [] };
      byEntity.set(entity ?? doc, item);
      out.push(item);
    }
    const field = rest.map((k) => String(k)).join('.');
    item.errors.push(field ? { type: 'field', field, message } : { type: 'entity', message });
  }
  return out;
}

/** POST /config's error: code 14, every bad field by its full path (Kong's shape, plus `errors`). */
export function declarativeError(errors: string[], flatten?: { doc: unknown }): AdminError {
  const fields: Record<string, unknown> = {};
  for (const e of errors) {
    const { where, message } = splitError(e);
    if (!where || where === '(root)') {
      const list = (fields['@entity'] as string[] | undefined) ?? [];
      list.push(message);
      fields['@entity'] = list;
    } else setNested(fields, parseAt(where), message);
  }
  return new AdminError(400, {
    code: CODES.INVALID_DECLARATIVE_CONFIGURATION,
    name: 'invalid declarative configuration',
    message: `declarative config is invalid: ${errors.join('; ')}`,
    fields,
    errors,
    ...(flatten ? { flattened_errors: flattenErrors(errors, flatten.doc) } : {}),
  });
}

/**
 * The configuration the admin API edits, and the one place changes go through: a change is
 * applied to the current document, the whole result is validated and compiled everywhere (the
 * same code as a file load), stored, then swapped in. One change at a time.
 */
export class ConfigManager {
  readonly plugins: ReadonlyMap<string, PluginDefinition<any>>;
  readonly readOnly: boolean;
  readonly loadedAt = nowSeconds();
  private current: ConfigState;
  private readonly options: ManagerOptions;
  private queue: Promise<unknown> = Promise.resolve();
  private pending = 0;

  constructor(options: ManagerOptions) {
    this.options = options;
    this.current = options.state;
    this.plugins = options.plugins;
    this.readOnly = options.readOnly ?? false;
  }

  get state(): ConfigState {
    return this.current;
  }

  /** Changes waiting for their turn (and the one running). */
  get busy(): number {
    return this.pending;
  }

  viewContext(state: { doc: ConfigDocument; meta: MetaMap; loadedAt?: number | undefined } = this.current): ViewContext {
    return { index: indexOf(state.doc), meta: state.meta, plugins: this.plugins, loadedAt: state.loadedAt ?? this.loadedAt };
  }

  /** Runs `fn` when no other change runs (changes are applied one after the other). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.pending++;
    const run = this.queue.then(fn, fn);
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run.finally(() => this.pending--);
  }

  /**
   * Applies `change` to the current document and the result everywhere. `change` may run more than
   * once (cluster: after another node's write it is re-run on the newer document), so it must only
   * work through its context. Its return value (the entity's view) is returned.
   */
  update<T>(change: (ctx: ChangeContext) => T): Promise<T> {
    return this.exclusive(async () => {
      for (let attempt = 1; ; attempt++) {
        const base = this.current;
        const ctx = new ChangeContext(base.doc, base.meta, nowSeconds());
        const result = change(ctx);
        if (!ctx.changed) return result;
        const next: ConfigState = { doc: ctx.doc, meta: ctx.meta, version: base.version + 1, loadedAt: base.loadedAt };
        try {
          await this.commitState(next, base, { ops: ctx.ops, base: base.version });
          return result;
        } catch (err) {
          if (err instanceof ConflictError && attempt < MAX_ATTEMPTS) {
            await this.catchUpLocked();
            continue;
          }
          if (err instanceof ConfigError) throw entityValidationError(err.errors, ctx.subject);
          throw err;
        }
      }
    });
  }

  /**
   * Replaces the whole configuration (POST /config, a file reload). Throws ConfigError when
   * invalid. `store: false` when the input comes from the store itself (the file it would be
   * written back to).
   */
  replace(input: unknown, sourceHash?: string, store = true): Promise<ConfigState> {
    return this.exclusive(async () => {
      for (let attempt = 1; ; attempt++) {
        const base = this.current;
        const now = nowSeconds();
        const pinned = pinDocument(input, this.plugins, now, base.meta);
        const next: ConfigState = { doc: pinned.doc, meta: pinned.meta, version: base.version + 1, sourceHash, loadedAt: now };
        try {
          await this.commitState(next, base, undefined, store, true);
          return next;
        } catch (err) {
          if (err instanceof ConflictError && attempt < MAX_ATTEMPTS) {
            await this.catchUpLocked();
            continue;
          }
          throw err;
        }
      }
    });
  }

  /** A newer stored state (another node's change): validated, compiled and swapped in, not stored again. */
  adopt(state: ConfigState, force = false): Promise<boolean> {
    return this.exclusive(() => this.adoptLocked(state, force));
  }

  private async adoptLocked(state: ConfigState, force = false): Promise<boolean> {
    if (!force && state.version <= this.current.version) return false;
    const prepared = await this.options.applier.prepare(state, undefined);
    await prepared.commit();
    this.current = state;
    this.options.onApplied?.(state, 'remote');
    return true;
  }

  private async catchUpLocked(): Promise<void> {
    const latest = await this.options.latest?.();
    if (!latest) return;
    try {
      await this.adoptLocked(latest);
    } catch (err) {
      // The stored config does not validate here (e.g. a plugin this node lacks): keep ours.
      this.options.logger.error({ err: err instanceof ConfigError ? err.errors : err, version: latest.version }, 'stored configuration refused; the running one stays');
      this.current = { ...this.current, version: latest.version };
    }
  }

  private async commitState(next: ConfigState, base: ConfigState, delta: { ops: readonly DocOp[]; base: number } | undefined, store = true, fresh = false): Promise<void> {
    const backend = store ? this.options.backend : undefined;
    // Writing the file (started first: its I/O runs while this thread compiles) overlaps with
    // validation and compilation (here, or in the workers).
    const stagedPromise = backend ? backend.stage(next, base) : Promise.resolve(undefined);
    const [staged, prepared] = await Promise.allSettled([stagedPromise, this.options.applier.prepare(next, delta, fresh)]);
    if (prepared.status === 'rejected') {
      if (staged.status === 'fulfilled') await staged.value?.discard();
      throw prepared.reason;
    }
    if (staged.status === 'rejected') {
      await prepared.value.abort();
      throw staged.reason;
    }
    try {
      await staged.value?.publish();
    } catch (err) {
      await prepared.value.abort();
      throw err;
    }
    await prepared.value.commit();
    this.current = next;
    this.options.onApplied?.(next, 'local');
  }
}
