import { CACHE_FORMAT_VERSION, type CacheObject } from './types.js';

/**
 * Binary form of a cache object for stores outside the process (Redis): a 7-byte header
 * (magic "GC", format version, kind, metadata length), the metadata as JSON, then the body bytes
 * untouched (no base64: bodies are often most of the bytes).
 */
const MAGIC0 = 0x47; // G
const MAGIC1 = 0x43; // C
const KIND_RESPONSE = 1;
const KIND_VARY = 2;
const HEADER = 7;

export function encode(value: CacheObject): Buffer {
  if (value.kind === 'vary') {
    const meta = Buffer.from(JSON.stringify({ names: value.names, generation: value.generation, storedAt: value.storedAt }));
    return Buffer.concat([header(KIND_VARY, meta.length), meta]);
  }
  const { kind: _k, version: _v, body, ...rest } = value;
  const meta = Buffer.from(JSON.stringify(rest));
  return Buffer.concat([header(KIND_RESPONSE, meta.length), meta, body]);
}

function header(kind: number, metaLength: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER);
  h[0] = MAGIC0;
  h[1] = MAGIC1;
  h[2] = CACHE_FORMAT_VERSION;
  h[3] = kind;
  // Metadata length in bytes 4..6 (24 bits): headers never come near 16 MiB.
  h.writeUIntBE(metaLength, 4, 3);
  return h;
}

/** The object, or undefined when the bytes are not a cache object of this format version. */
export function decode(raw: Buffer | null | undefined): CacheObject | undefined {
  if (!raw || raw.length < HEADER || raw[0] !== MAGIC0 || raw[1] !== MAGIC1 || raw[2] !== CACHE_FORMAT_VERSION) return undefined;
  const kind = raw[3];
  const metaLength = raw.readUIntBE(4, 3);
  if (HEADER + metaLength > raw.length) return undefined;
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(raw.subarray(HEADER, HEADER + metaLength).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (kind === KIND_VARY) {
    return { kind: 'vary', version: CACHE_FORMAT_VERSION, names: meta.names as string[], generation: meta.generation as string, storedAt: meta.storedAt as number };
  }
  if (kind !== KIND_RESPONSE) return undefined;
  return { ...(meta as object), kind: 'response', version: CACHE_FORMAT_VERSION, body: raw.subarray(HEADER + metaLength) } as CacheObject;
}
