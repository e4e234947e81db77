import { createRequire } from 'node:module';

const requireFromHere = createRequire(import.meta.url);

/**
 * Loads a dependency when first needed rather than at start. Idle memory is a target
 * (docs/performance.md): ioredis, undici and jose cost about 50 MB together and most configs use
 * none of them. Node's module cache makes later calls a map lookup. Works for ESM-only packages
 * too (require(esm), Node 20.19+).
 */
export function load<T>(id: string): T {
  return requireFromHere(id) as T;
}
