import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { ListenAddress } from '../listeners/http-listener.js';

export interface AdminSecurity {
  /** When set, every request must carry it (Kong-Admin-Token or Authorization: Bearer). */
  token: string | undefined;
  /** The admin listen address (the Host header is checked against it). */
  listen: ListenAddress | undefined;
}

export interface Refusal {
  status: number;
  message: string;
  headers?: Record<string, string>;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || h.startsWith('127.') || h === '::ffff:127.0.0.1';
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  const a = digest(presented ?? '');
  const ok = timingSafeEqual(a, digest(expected));
  return ok && presented !== undefined;
}

function presentedToken(req: IncomingMessage): string | undefined {
  const header = req.headers['kong-admin-token'];
  if (typeof header === 'string') return header;
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
    if (m) return m[1];
  }
  return undefined;
}

function hostOnly(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(1, hostHeader.indexOf(']')).toLowerCase();
  const colon = hostHeader.lastIndexOf(':');
  return (colon >= 0 ? hostHeader.slice(0, colon) : hostHeader).toLowerCase();
}

/**
 * DNS rebinding: a page on attacker.example whose name is made to resolve to 127.0.0.1 reaches
 * the admin port with `Host: attacker.example`. Without a token only names that cannot be
 * rebound are accepted: localhost, IP literals and the configured listen host.
 */
function hostAllowed(req: IncomingMessage, security: AdminSecurity): boolean {
  const header = req.headers.host;
  if (!header) return false;
  const host = hostOnly(header);
  if (host === 'localhost' || host.endsWith('.localhost') || isIP(host)) return true;
  return security.listen !== undefined && host === security.listen.host.toLowerCase();
}

const WRITE_TYPES = /^(application\/(json|yaml|x-yaml|[\w.+-]+\+json)|text\/(yaml|x-yaml))\s*(;|$)/i;
const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A browser's cross-site request: its Origin (or Sec-Fetch-Site) says it comes from another site. */
function crossSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site') return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  if (origin === 'null') return true;
  try {
    const o = new URL(origin);
    return o.host.toLowerCase() !== String(req.headers.host ?? '').toLowerCase() && !isLoopback(o.hostname);
  } catch {
    return true;
  }
}

/**
 * The admin API's checks before anything else runs: Host (DNS rebinding), the token (401), and
 * for state-changing requests the browser rules: no cross-site origin, and a body only as JSON or
 * YAML (a cross-site HTML form can only send form or text types; JSON makes the browser ask first).
 */
export function checkAdminRequest(req: IncomingMessage, security: AdminSecurity, hasBody: boolean): Refusal | undefined {
  if (!security.token && !hostAllowed(req, security)) {
    return { status: 403, message: 'Host not allowed: the admin API answers only to localhost, IP addresses and its listen address (DNS rebinding protection)' };
  }
  if (security.token && !tokenMatches(presentedToken(req), security.token)) {
    return { status: 401, message: 'Unauthorized', headers: { 'www-authenticate': 'Bearer realm="gatehouse-admin"' } };
  }
  const method = req.method ?? 'GET';
  if (method === 'OPTIONS') return { status: 405, message: 'Method not allowed' };
  if (STATE_CHANGING.has(method)) {
    if (crossSite(req)) return { status: 403, message: 'Cross-site requests cannot change the configuration' };
    if (hasBody && !WRITE_TYPES.test(String(req.headers['content-type'] ?? ''))) {
      return { status: 415, message: 'Unsupported media type: send the body as application/json or application/yaml (form posts are refused: a browser can send them from any site)' };
    }
  }
  return undefined;
}
