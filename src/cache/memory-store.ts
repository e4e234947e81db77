import type { CacheObject, CacheStats, CacheStore } from './types.js';

interface Slot {
  value: CacheObject;
  size: number;
  /** Milliseconds since the epoch; 0: no expiry. */
  expiresAt: number;
}

/** Fixed cost counted per object on top of its body and header bytes (map slot, object shapes). */
const OVERHEAD = 256;

/** Approximate bytes an object holds, so that the budget bounds real memory rather than an entry count. */
export function sizeOf(value: CacheObject): number {
  if (value.kind === 'vary') return OVERHEAD + value.names.join(',').length + value.generation.length;
  let size = OVERHEAD + value.body.length + value.varyValues.length;
  for (const name in value.headers) {
    const v = value.headers[name]!;
    size += name.length + (typeof v === 'string' ? v.length : v.reduce((n, s) => n + s.length + 2, 0));
  }
  return size;
}

/**
 * An in-process LRU bounded by bytes: inserting past the budget evicts the least recently used
 * objects. Objects past their retention are dropped when read or evicted. One per dictionary per
 * worker process (workers do not share memory).
 */
export class MemoryLruStore implements CacheStore {
  readonly kind = 'memory' as const;
  // A Map iterates in insertion order: re-inserting on read keeps the least recently used first.
  private readonly slots = new Map<string, Slot>();
  private bytes = 0;
  private evictions = 0;
  private maxBytes: number;
  maxBodySize: number;
  private readonly now: () => number;

  constructor(options: { maxBytes: number; maxBodySize: number; now?: () => number }) {
    this.maxBytes = options.maxBytes;
    this.maxBodySize = options.maxBodySize;
    this.now = options.now ?? Date.now;
  }

  get(key: string): CacheObject | undefined {
    const slot = this.slots.get(key);
    if (!slot) return undefined;
    if (slot.expiresAt !== 0 && slot.expiresAt < this.now()) {
      this.remove(key, slot);
      return undefined;
    }
    this.slots.delete(key);
    this.slots.set(key, slot);
    return slot.value;
  }

  set(key: string, value: CacheObject, retentionMs: number): void {
    const old = this.slots.get(key);
    if (old) this.remove(key, old);
    const size = sizeOf(value);
    if (size > this.maxBytes || (value.kind === 'response' && value.body.length > this.maxBodySize)) return;
    this.slots.set(key, { value, size, expiresAt: retentionMs > 0 ? this.now() + retentionMs : 0 });
    this.bytes += size;
    this.shrink();
  }

  delete(key: string): boolean {
    const slot = this.slots.get(key);
    if (!slot) return false;
    this.remove(key, slot);
    return slot.expiresAt === 0 || slot.expiresAt > this.now();
  }

  flush(): void {
    this.slots.clear();
    this.bytes = 0;
  }

  /** Changes the byte budget (evicting at once when it shrinks). */
  resize(maxBytes: number, maxBodySize: number): void {
    this.maxBytes = maxBytes;
    this.maxBodySize = maxBodySize;
    this.shrink();
  }

  get stats(): CacheStats {
    return { entries: this.slots.size, bytes: this.bytes, evictions: this.evictions };
  }

  get budget(): number {
    return this.maxBytes;
  }

  private shrink(): void {
    if (this.bytes <= this.maxBytes) return;
    for (const [key, slot] of this.slots) {
      this.remove(key, slot);
      this.evictions++;
      if (this.bytes <= this.maxBytes) return;
    }
  }

  private remove(key: string, slot: Slot): void {
    this.slots.delete(key);
    this.bytes -= slot.size;
  }
}
