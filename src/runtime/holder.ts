import type { Snapshot } from '../config/snapshot.js';

/**
 * Holds the live snapshot. A request acquires the snapshot current when it arrives and releases
 * it when its response is done; a swapped-out snapshot is disposed once its last request ends.
 */
export class SnapshotHolder {
  private live: Snapshot;
  private readonly inflight = new Map<Snapshot, number>();
  private readonly retired = new Set<Snapshot>();
  private readonly onDisposed: (old: Snapshot) => void;

  constructor(initial: Snapshot, onDisposed: (old: Snapshot) => void) {
    this.live = initial;
    this.onDisposed = onDisposed;
  }

  get current(): Snapshot {
    return this.live;
  }

  acquire(): Snapshot {
    const s = this.live;
    this.inflight.set(s, (this.inflight.get(s) ?? 0) + 1);
    return s;
  }

  release(s: Snapshot): void {
    const n = (this.inflight.get(s) ?? 1) - 1;
    if (n > 0) {
      this.inflight.set(s, n);
      return;
    }
    this.inflight.delete(s);
    if (this.retired.delete(s)) this.dispose(s);
  }

  /** Makes `next` live; the old snapshot is disposed when its in-flight requests finish. */
  swap(next: Snapshot): Snapshot {
    const old = this.live;
    this.live = next;
    if (this.inflight.has(old)) this.retired.add(old);
    else this.dispose(old);
    return old;
  }

  /** Requests in flight on any snapshot. */
  get activeRequests(): number {
    let n = 0;
    for (const v of this.inflight.values()) n += v;
    return n;
  }

  private dispose(s: Snapshot): void {
    this.onDisposed(s);
  }
}
