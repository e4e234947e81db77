import { MemoryLimitStore } from './limit-algorithms.js';
import type { LimitRequest, LimitStore, RawLimitResult } from './limit-types.js';

/*
 * Node-local counters for the `local` rate-limiting policy.
 *
 * One process: a MemoryLimitStore in the gateway, counted synchronously on the request path.
 * Several workers (node:cluster): the counters live in the primary, so a limit is exact for the
 * whole node. A worker's IpcLimitClient collects the requests of one event-loop turn into one
 * message; the primary counts each with its MemoryLimitStore (synchronously, in arrival order, so
 * nothing can interleave) and answers the batch in one message; each request has its own promise.
 */

export const LIMITS_REQUEST = 'gatehouse:limits';
export const LIMITS_REPLY = 'gatehouse:limits:reply';

export interface LimitsRequestMessage {
  type: typeof LIMITS_REQUEST;
  batch: [seq: number, request: LimitRequest][];
}

export interface LimitsReplyMessage {
  type: typeof LIMITS_REPLY;
  results: [seq: number, blocked: 0 | 1, values: number[]][];
}

export function isLimitsRequest(m: unknown): m is LimitsRequestMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === LIMITS_REQUEST && Array.isArray((m as { batch?: unknown }).batch);
}

/** Primary side: counts a worker's batch and builds the reply. */
export function answerLimits(store: MemoryLimitStore, m: LimitsRequestMessage): LimitsReplyMessage {
  const results: LimitsReplyMessage['results'] = [];
  for (const [seq, request] of m.batch) {
    try {
      const r = store.consume(request);
      results.push([seq, r.blocked, r.values]);
    } catch {
      // A malformed request gets no answer; the worker's timeout turns it into a store failure.
    }
  }
  return { type: LIMITS_REPLY, results };
}

export class LimitStoreUnavailableError extends Error {
  readonly code = 'LIMITS_UNAVAILABLE';
}

interface Pending {
  resolve: (r: RawLimitResult) => void;
  reject: (e: Error) => void;
}

/** Worker side: the primary's counters, one message per event-loop turn, one promise per request. */
export class IpcLimitClient implements LimitStore {
  private readonly send: (m: LimitsRequestMessage) => void;
  private readonly timeoutMs: number;
  private readonly pending = new Map<number, Pending>();
  private queue: LimitsRequestMessage['batch'] = [];
  private flushScheduled = false;
  private seq = 0;
  private closed = false;

  constructor(send: (m: LimitsRequestMessage) => void, timeoutMs = 1000) {
    this.send = send;
    this.timeoutMs = timeoutMs;
  }

  consume(request: LimitRequest): Promise<RawLimitResult> {
    if (this.closed) return Promise.reject(new LimitStoreUnavailableError('the node-local counter store is closed'));
    const seq = ++this.seq;
    this.queue.push([seq, request]);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return new Promise((resolve, reject) => this.pending.set(seq, { resolve, reject }));
  }

  /** Feeds a message from the primary; true when it was a counters reply. */
  receive(m: unknown): boolean {
    if (typeof m !== 'object' || m === null || (m as { type?: unknown }).type !== LIMITS_REPLY) return false;
    for (const [seq, blocked, values] of (m as LimitsReplyMessage).results) {
      const p = this.pending.get(seq);
      if (!p) continue;
      this.pending.delete(seq);
      p.resolve({ blocked, values });
    }
    return true;
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) p.reject(new LimitStoreUnavailableError('the node-local counter store is closed'));
    this.pending.clear();
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (!batch.length) return;
    try {
      this.send({ type: LIMITS_REQUEST, batch });
    } catch (err) {
      this.fail(batch, new LimitStoreUnavailableError(`cannot reach the node's primary process: ${(err as Error).message}`));
      return;
    }
    const timer = setTimeout(() => this.fail(batch, new LimitStoreUnavailableError(`the node's primary process did not answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    timer.unref();
  }

  private fail(batch: LimitsRequestMessage['batch'], err: Error): void {
    for (const [seq] of batch) {
      const p = this.pending.get(seq);
      if (!p) continue;
      this.pending.delete(seq);
      p.reject(err);
    }
  }
}
