/**
 * The key an entity reference names: "name-or-id", or `{id}` / `{name}` / `{username}` (Kong's
 * declarative forms). Undefined when it names nothing usable.
 */
export function refKey(ref: unknown): string | undefined {
  if (typeof ref === 'string') return ref;
  if (ref && typeof ref === 'object' && !Array.isArray(ref)) {
    const r = ref as { id?: unknown; name?: unknown; username?: unknown };
    const v = r.id ?? r.name ?? r.username;
    return typeof v === 'string' ? v : undefined;
  }
  return undefined;
}
