/**
 * State that plugins keep for the life of a gateway rather than a snapshot (e.g. proxy-cache's
 * memory stores, which survive reloads). One per Gateway, passed to plugins as `deps.scope`:
 * never module state, so two gateways in one process never share it.
 */
export class GatewayScope {
  private readonly slots = new Map<string, unknown>();

  /** The value under `key`, created on first use. */
  get<T>(key: string, create: () => T): T {
    if (this.slots.has(key)) return this.slots.get(key) as T;
    const value = create();
    this.slots.set(key, value);
    return value;
  }

  /** Closes values that can be closed (called when the gateway stops). */
  async close(): Promise<void> {
    const values = [...this.slots.values()];
    this.slots.clear();
    await Promise.all(values.map(async (v) => (v as { close?: () => unknown }).close?.()));
  }
}
