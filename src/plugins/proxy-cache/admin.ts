import { isUtf8 } from 'node:buffer';
import type { CacheRegistry } from '../../cache/registry.js';
import type { CacheObject, CacheStore } from '../../cache/types.js';
import type { AdminAnswer, AdminRequest } from '../types.js';

/**
 * Kong's proxy-cache admin endpoints (kong/plugins/proxy-cache/api.lua), over every proxy-cache
 * store of the gateway:
 *   DELETE /proxy-cache                          flush all, 204
 *   GET    /proxy-cache/{key}                    200 with the object, or 404 (empty body)
 *   DELETE /proxy-cache/{key}                    204, or 404 (empty body)
 *   GET    /proxy-cache/{plugin_id}/caches/{key} and DELETE: the same, in one plugin's store
 */
export async function answerAdmin(request: AdminRequest, registry: CacheRegistry): Promise<AdminAnswer | undefined> {
  const parts = request.path.split('/');
  if (parts[1] !== 'proxy-cache' || parts[0] !== '') return undefined;
  const method = request.method;
  try {
    if (parts.length === 2 || (parts.length === 3 && parts[2] === '')) {
      if (method !== 'DELETE') return notAllowed();
      for (const store of registry.stores()) await store.flush();
      return { status: 204 };
    }
    if (parts.length === 3) return await onKey(method, registry.stores(), decode(parts[2]!));
    if (parts.length === 5 && parts[3] === 'caches') {
      if (method !== 'GET' && method !== 'DELETE') return notAllowed();
      const pluginId = decode(parts[2]!);
      const owner = registry.all().find((o) => o.id() === pluginId);
      if (!owner) return { status: 404 };
      return await onKey(method, [owner.store], decode(parts[4]!));
    }
  } catch (err) {
    return { status: 500, body: { message: (err as Error).message } };
  }
  return undefined;
}

async function onKey(method: string, stores: CacheStore[], key: string): Promise<AdminAnswer> {
  if (method === 'GET') {
    for (const store of stores) {
      const found = await store.get(key);
      if (found) return { status: 200, body: describe(found) };
    }
    return { status: 404 };
  }
  if (method === 'DELETE') {
    let deleted = false;
    for (const store of stores) if (await store.delete(key)) deleted = true;
    return deleted ? { status: 204 } : { status: 404 };
  }
  return notAllowed();
}

function notAllowed(): AdminAnswer {
  return { status: 405, body: { message: 'Method not allowed' } };
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Kong's shape (status, headers, body, body_len, timestamp, ttl, version), plus Gatehouse's fields. */
function describe(obj: CacheObject): Record<string, unknown> {
  if (obj.kind === 'vary') return { vary: obj.names, timestamp: Math.floor(obj.storedAt / 1000), version: obj.version };
  const utf8 = isUtf8(obj.body);
  return {
    status: obj.status,
    headers: obj.headers,
    body: utf8 ? obj.body.toString('utf8') : obj.body.toString('base64'),
    ...(utf8 ? {} : { body_encoding: 'base64' }),
    body_len: obj.body.length,
    timestamp: Math.floor(obj.storedAt / 1000),
    ttl: obj.ttl,
    version: obj.version,
    initial_age: obj.initialAge,
    stale_while_revalidate: obj.staleWhileRevalidate,
    stale_if_error: obj.staleIfError,
    vary: obj.vary,
  };
}
