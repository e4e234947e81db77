import type { Entity } from './doc-index.js';
import { invalidOffset, invalidOptions, invalidSize } from './errors.js';

export const DEFAULT_SIZE = 100;
export const MAX_SIZE = 1000;

export interface Page {
  data: Entity[];
  next: string | null;
  offset: string | undefined;
}

/** `tags=a,b` (all of them) or `tags=a/b` (any of them), as Kong. */
function tagFilter(tags: string | null): ((e: Entity) => boolean) | undefined {
  if (tags === null) return undefined;
  const and = tags.includes(',');
  const or = tags.includes('/');
  if ((and && or) || !tags || /[^\w.~\-,/\x80-\uffff]/.test(tags)) throw invalidOptions({ tags: 'invalid filter syntax' });
  const wanted = tags.split(and ? ',' : '/').filter(Boolean);
  return (e) => {
    const own = Array.isArray(e.raw.tags) ? (e.raw.tags as unknown[]) : [];
    return or ? wanted.some((t) => own.includes(t)) : wanted.every((t) => own.includes(t));
  };
}

const encode = (id: string) => Buffer.from(id, 'utf8').toString('base64url');

/**
 * One page of a list, in id order. The offset is the last id of the page (opaque), so a page
 * boundary survives entities being added or removed between two requests.
 */
export function paginate(sorted: readonly Entity[], query: URLSearchParams, basePath: string): Page {
  const sizeParam = query.get('size');
  let size = DEFAULT_SIZE;
  if (sizeParam !== null) {
    size = Number(sizeParam);
    if (!/^\d+$/.test(sizeParam) || size < 1 || size > MAX_SIZE) throw invalidSize(MAX_SIZE);
  }
  const offsetParam = query.get('offset');
  let after: string | undefined;
  if (offsetParam !== null) {
    const decoded = /^[A-Za-z0-9_-]+$/.test(offsetParam) ? Buffer.from(offsetParam, 'base64url').toString('utf8') : '';
    if (!decoded || encode(decoded) !== offsetParam) throw invalidOffset(offsetParam);
    after = decoded;
  }
  const keep = tagFilter(query.get('tags'));
  let start = 0;
  if (after !== undefined) {
    // First id after the offset (binary search; the list is sorted by id).
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]!.id <= after) lo = mid + 1;
      else hi = mid;
    }
    start = lo;
  }
  const data: Entity[] = [];
  let i = start;
  for (; i < sorted.length && data.length < size; i++) if (!keep || keep(sorted[i]!)) data.push(sorted[i]!);
  let more = false;
  for (let j = i; j < sorted.length; j++) {
    if (!keep || keep(sorted[j]!)) {
      more = true;
      break;
    }
  }
  if (!more || !data.length) return { data, next: null, offset: undefined };
  const offset = encode(data[data.length - 1]!.id);
  let next = `${basePath}?offset=${encodeURIComponent(offset)}`;
  if (query.get('tags') !== null) next += `&tags=${encodeURIComponent(query.get('tags')!)}`;
  if (sizeParam !== null) next += `&size=${size}`;
  return { data, next, offset };
}
