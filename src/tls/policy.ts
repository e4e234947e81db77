import { createSecureContext, type SecureVersion } from 'node:tls';

/** TLS versions and the TLS 1.2 cipher list of the HTTPS listener (`_gatehouse.ssl_protocols`, `ssl_ciphers`). */
export interface TlsPolicy {
  readonly minVersion: SecureVersion;
  readonly maxVersion: SecureVersion;
  readonly ciphers: string;
}

export const DEFAULT_SSL_PROTOCOLS = 'TLSv1.2 TLSv1.3';

/**
 * Mozilla's "intermediate" TLS 1.2 list without its DHE suites (Gatehouse configures no DH
 * parameters, so OpenSSL could never pick them): ECDHE key exchange with AEAD ciphers only.
 * TLS 1.3 suites are OpenSSL's defaults (all AEAD), as in Kong.
 */
export const DEFAULT_SSL_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const DEFAULT_TLS_POLICY: TlsPolicy = Object.freeze({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', ciphers: DEFAULT_SSL_CIPHERS });

/** In order: a set of allowed versions is always one range, which is all OpenSSL can express. */
const VERSIONS: readonly SecureVersion[] = ['TLSv1.2', 'TLSv1.3'];
/** Names Kong's ssl_protocols accepts that Gatehouse refuses (RFC 8996 deprecates TLS 1.0 and 1.1). */
const REFUSED = new Set(['SSLv2', 'SSLv3', 'TLSv1', 'TLSv1.0', 'TLSv1.1']);

/**
 * Checks `ssl_protocols` and `ssl_ciphers` and returns the policy, or undefined after reporting
 * each problem against its field. The cipher string is tried on a real SecureContext, so what
 * passes here is what OpenSSL accepts when the certificates' contexts are built.
 */
export function checkTlsPolicy(settings: { ssl_protocols: string; ssl_ciphers: string }, err: (at: string, message: string) => void): TlsPolicy | undefined {
  const tokens = settings.ssl_protocols.split(/[\s,]+/).filter(Boolean);
  const chosen = new Set<SecureVersion>();
  let ok = true;
  for (const token of tokens) {
    const version = VERSIONS.find((v) => v === token);
    if (version) chosen.add(version);
    else {
      ok = false;
      err('_gatehouse.ssl_protocols', REFUSED.has(token) ? `${token} is not supported (TLS 1.0 and 1.1 are deprecated, RFC 8996); allowed: TLSv1.2, TLSv1.3` : `unknown protocol "${token}"; allowed: TLSv1.2, TLSv1.3`);
    }
  }
  if (ok && chosen.size === 0) {
    ok = false;
    err('_gatehouse.ssl_protocols', 'names no protocol; allowed: TLSv1.2, TLSv1.3');
  }
  const ordered = VERSIONS.filter((v) => chosen.has(v));
  const minVersion = ordered[0] ?? 'TLSv1.2';
  const maxVersion = ordered[ordered.length - 1] ?? 'TLSv1.3';

  const ciphers = settings.ssl_ciphers.trim();
  // Node sends names starting with TLS_ to the TLS 1.3 list; the rest is the TLS 1.2 list.
  const tls12 = ciphers.split(':').filter((c) => c && !c.startsWith('TLS_'));
  if (tls12.length === 0 && minVersion === 'TLSv1.2') {
    err('_gatehouse.ssl_ciphers', 'names no TLS 1.2 cipher, but ssl_protocols allows TLSv1.2');
    return undefined;
  }
  // The default list is known good; trying it would build a context (~1 MB) on every config load.
  if (ciphers === DEFAULT_SSL_CIPHERS) return ok ? Object.freeze({ minVersion, maxVersion, ciphers }) : undefined;
  try {
    createSecureContext({ ciphers, minVersion, maxVersion });
  } catch (e) {
    err('_gatehouse.ssl_ciphers', `OpenSSL refuses the cipher list (${(e as Error).message})`);
    return undefined;
  }
  return ok ? Object.freeze({ minVersion, maxVersion, ciphers }) : undefined;
}
