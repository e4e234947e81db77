/**
 * The declarative document as the admin API edits it: plain JSON, never mutated in place. A change
 * is a list of small operations applied copy-on-write, so the previous document stays intact (for
 * rollback and for in-flight readers) and unchanged entities keep their object identity. Workers
 * apply the same operations to their own copy instead of receiving the whole document again.
 */

export type ConfigDocument = Record<string, unknown>;
export type DocPath = readonly (string | number)[];

export type DocOp =
  /** Sets a key or array index (an index equal to the length appends). */
  | { op: 'set'; path: DocPath; value: unknown }
  /** Deletes a key, or removes an array element (later elements shift down). */
  | { op: 'remove'; path: DocPath };

function copyOf(container: unknown): Record<string, unknown> | unknown[] {
  if (Array.isArray(container)) return container.slice();
  if (container && typeof container === 'object') return { ...(container as Record<string, unknown>) };
  throw new Error('document path goes through a scalar');
}

/** Returns a new document with `op` applied; containers along the path are copied, nothing else. */
export function applyOp(doc: ConfigDocument, op: DocOp): ConfigDocument {
  if (!op.path.length) throw new Error('empty document path');
  const root = copyOf(doc) as ConfigDocument;
  let node: Record<string | number, unknown> = root as Record<string | number, unknown>;
  for (let i = 0; i < op.path.length - 1; i++) {
    const key = op.path[i]!;
    let child = node[key];
    // Setting below a missing list or mapping creates it (e.g. the first top-level route).
    if (child === undefined && op.op === 'set') child = typeof op.path[i + 1] === 'number' ? [] : {};
    const copied = copyOf(child);
    node[key] = copied;
    node = copied as Record<string | number, unknown>;
  }
  const last = op.path[op.path.length - 1]!;
  if (op.op === 'set') {
    node[last] = op.value;
  } else if (Array.isArray(node)) {
    (node as unknown[]).splice(Number(last), 1);
  } else {
    delete node[last];
  }
  return root;
}

export function applyOps(doc: ConfigDocument, ops: readonly DocOp[]): ConfigDocument {
  let out = doc;
  for (const op of ops) out = applyOp(out, op);
  return out;
}

export function getAt(doc: unknown, path: DocPath): unknown {
  let node = doc;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

/** "services[3].routes[1]" -> ["services", 3, "routes", 1] (the paths normalizeConfig reports). */
export function parseAt(at: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const m of at.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

/** ["services", 3, "routes", 1] -> "services[3].routes[1]" */
export function formatAt(path: DocPath): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${k}` : k;
  return out;
}

/** Removal operations for `paths`, ordered so that each index is still valid when its turn comes. */
export function removals(paths: DocPath[]): DocOp[] {
  const sorted = [...paths].sort((a, b) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const x = a[i]!;
      const y = b[i]!;
      if (x === y) continue;
      if (typeof x === 'number' && typeof y === 'number') return y - x;
      return String(y).localeCompare(String(x));
    }
    return b.length - a.length;
  });
  // A path below another removed path goes with its parent.
  const kept = sorted.filter((p, i) => !sorted.some((q, j) => j !== i && q.length < p.length && q.every((k, n) => p[n] === k)));
  return kept.map((path) => ({ op: 'remove', path }));
}
