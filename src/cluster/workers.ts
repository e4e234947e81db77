import type { Worker } from 'node:cluster';
import type { Logger } from '../observability/logger.js';
import type { Gateway } from '../runtime/gateway.js';
import type { Snapshot } from '../config/snapshot.js';
import { ConfigError } from '../lib/errors.js';
import { applyOps, type ConfigDocument, type DocOp } from '../admin/doc.js';
import type { Applier, ConfigState, Prepared } from '../admin/manager.js';

/**
 * Config changes between the primary of a node and its workers (node:cluster IPC), as a two-phase
 * commit: every worker validates and compiles the change (`prepare`); only when all succeeded do
 * they all swap (`commit`), otherwise all drop it (`abort`). A change travels as the operations
 * from the previous version when the worker has that version, else as the whole document.
 */

export interface WorkerReply {
  type: string;
  id?: number;
  errors?: string[];
  need?: 'document';
  [key: string]: unknown;
}

interface Pending {
  left: number;
  replies: Map<Worker, WorkerReply>;
  done: (replies: Map<Worker, WorkerReply>) => void;
  timer: NodeJS.Timeout;
}

/** The primary's side: the live workers and request/reply over IPC. */
export class WorkerPool implements Applier {
  /** Workers that have loaded a config and serve requests. */
  readonly ready = new Set<Worker>();
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** Feeds a worker's message in; true when it was a reply to ask(). */
  receive(w: Worker, m: WorkerReply): boolean {
    if (m.id === undefined) return false;
    const p = this.pending.get(m.id);
    if (!p || !p.replies.has(w) || p.replies.get(w) !== undefined) return false;
    p.replies.set(w, m);
    if (--p.left === 0) this.finish(m.id);
    return true;
  }

  /** A worker went away: whatever it was asked is answered without it. */
  forget(w: Worker): void {
    this.ready.delete(w);
    for (const [id, p] of this.pending) {
      if (p.replies.has(w) && p.replies.get(w) === undefined) {
        p.replies.delete(w);
        if (--p.left === 0) this.finish(id);
      }
    }
  }

  private finish(id: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    const out = new Map<Worker, WorkerReply>();
    for (const [w, r] of p.replies) if (r) out.set(w, r);
    p.done(out);
  }

  /** Sends `msg` to `targets` (default: the ready workers) and collects their replies. */
  ask(msg: Record<string, unknown>, targets: Iterable<Worker> = this.ready, timeoutMs = 30_000): Promise<Map<Worker, WorkerReply>> {
    return new Promise((resolve) => {
      const live = [...targets].filter((w) => w.isConnected());
      if (!live.length) return resolve(new Map());
      const id = this.nextId++;
      const replies = new Map<Worker, WorkerReply>(live.map((w) => [w, undefined as unknown as WorkerReply]));
      const timer = setTimeout(() => {
        this.logger.error({ type: msg.type }, 'workers did not answer in time');
        this.finish(id);
      }, timeoutMs);
      timer.unref();
      this.pending.set(id, { left: live.length, replies, done: resolve, timer });
      for (const w of live) {
        try {
          w.send({ ...msg, id });
        } catch {
          this.forget(w);
        }
      }
    });
  }

  async prepare(next: ConfigState, delta: { ops: readonly DocOp[]; base: number } | undefined, fresh = false): Promise<Prepared> {
    const targets = [...this.ready];
    const message = delta ? { type: 'prepare', version: next.version, base: delta.base, ops: delta.ops, fresh } : { type: 'prepare', version: next.version, document: next.doc, fresh };
    let replies = await this.ask(message, targets);
    // Workers that do not hold the base version get the whole document.
    const behind = [...replies].filter(([, r]) => r.need === 'document').map(([w]) => w);
    if (behind.length) {
      this.logger.info({ workers: behind.length, version: next.version }, 'workers without the base version get the whole document');
      const again = await this.ask({ type: 'prepare', version: next.version, document: next.doc, fresh }, behind);
      replies = new Map([...replies, ...again]);
    }
    const errors = [...new Set([...replies.values()].flatMap((r) => r.errors ?? []))];
    const prepared = [...replies].filter(([, r]) => !r.errors?.length && !r.need).map(([w]) => w);
    if (errors.length || prepared.length < replies.size) {
      await this.ask({ type: 'abort', version: next.version }, prepared);
      throw new ConfigError(errors.length ? errors : ['a worker could not prepare the configuration']);
    }
    return {
      commit: async () => {
        await this.ask({ type: 'commit', version: next.version }, prepared);
      },
      abort: async () => {
        await this.ask({ type: 'abort', version: next.version }, prepared);
      },
    };
  }
}

/** The worker's side: holds the document it serves and the prepared next snapshot. */
export class WorkerConfig {
  private doc: ConfigDocument;
  private version: number;
  private pending: { version: number; doc: ConfigDocument; snapshot: Snapshot } | undefined;
  private readonly gateway: Gateway;

  constructor(gateway: Gateway, doc: ConfigDocument, version: number) {
    this.gateway = gateway;
    this.doc = doc;
    this.version = version;
  }

  /** Handles prepare / commit / abort; returns the reply, or undefined for other messages. */
  handle(m: { type: string; id: number; version?: number; base?: number; ops?: DocOp[]; document?: ConfigDocument; fresh?: boolean }): WorkerReply | undefined {
    switch (m.type) {
      case 'prepare': {
        this.drop();
        let doc: ConfigDocument;
        if (m.document) doc = m.document;
        else if (m.ops && m.base === this.version) doc = applyOps(this.doc, m.ops);
        else return { type: 'prepared', id: m.id, need: 'document' };
        try {
          const snapshot = this.gateway.prepare(doc, !m.fresh);
          this.pending = { version: m.version!, doc, snapshot };
          return { type: 'prepared', id: m.id };
        } catch (err) {
          return { type: 'prepared', id: m.id, errors: err instanceof ConfigError ? err.errors : [(err as Error).message] };
        }
      }
      case 'commit': {
        const p = this.pending;
        if (p && p.version === m.version) {
          this.pending = undefined;
          this.gateway.commit(p.snapshot);
          this.doc = p.doc;
          this.version = p.version;
        }
        return { type: 'committed', id: m.id, version: this.version };
      }
      case 'abort':
        if (this.pending?.version === m.version) this.drop();
        return { type: 'aborted', id: m.id };
      default:
        return undefined;
    }
  }

  get currentVersion(): number {
    return this.version;
  }

  private drop(): void {
    if (!this.pending) return;
    this.gateway.discard(this.pending.snapshot);
    this.pending = undefined;
  }
}
