import { MemoryLruStore } from './memory-store.js';
import type { CacheStore } from './types.js';

interface MemoryDictionary {
  store: MemoryLruStore;
  /** Live owners and the size each asked for: the store is as large as the largest. */
  owners: Map<object, { maxBytes: number; maxBodySize: number }>;
}

/** A cache user (a proxy-cache plugin instance) as the admin API sees it. */
export interface CacheOwner {
  store: CacheStore;
  /** The plugin entity id, once known. */
  id(): string | undefined;
}

/**
 * The caches of one gateway: memory dictionaries shared by every plugin instance that names them
 * (so they survive config reloads and one byte budget bounds them), and every live owner, so that
 * one admin request can reach all of them.
 */
export class CacheRegistry {
  private readonly dictionaries = new Map<string, MemoryDictionary>();
  private readonly owners = new Set<CacheOwner>();

  /** The memory store named `name`, created on first use; release it with releaseMemory. */
  acquireMemory(name: string, owner: object, options: { maxBytes: number; maxBodySize: number; now: () => number }): MemoryLruStore {
    let dict = this.dictionaries.get(name);
    if (!dict) {
      dict = { store: new MemoryLruStore(options), owners: new Map() };
      this.dictionaries.set(name, dict);
    }
    dict.owners.set(owner, { maxBytes: options.maxBytes, maxBodySize: options.maxBodySize });
    this.resize(dict);
    return dict.store;
  }

  releaseMemory(name: string, owner: object): void {
    const dict = this.dictionaries.get(name);
    if (!dict || !dict.owners.delete(owner)) return;
    if (dict.owners.size === 0) {
      dict.store.flush();
      this.dictionaries.delete(name);
    } else this.resize(dict);
  }

  private resize(dict: MemoryDictionary): void {
    let maxBytes = 0;
    let maxBodySize = 0;
    for (const o of dict.owners.values()) {
      maxBytes = Math.max(maxBytes, o.maxBytes);
      maxBodySize = Math.max(maxBodySize, o.maxBodySize);
    }
    dict.store.resize(maxBytes, maxBodySize);
  }

  register(owner: CacheOwner): void {
    this.owners.add(owner);
  }

  unregister(owner: CacheOwner): void {
    this.owners.delete(owner);
  }

  /** Every live owner (several may share a store). */
  all(): CacheOwner[] {
    return [...this.owners];
  }

  /** Distinct stores of the live owners (`id` tells namespaces apart for stores outside the process). */
  stores(): CacheStore[] {
    const seen = new Set<unknown>();
    const out: CacheStore[] = [];
    for (const o of this.owners) {
      const identity = (o.store as { id?: string }).id ?? o.store;
      if (seen.has(identity)) continue;
      seen.add(identity);
      out.push(o.store);
    }
    return out;
  }

  memory(name: string): MemoryLruStore | undefined {
    return this.dictionaries.get(name)?.store;
  }
}
