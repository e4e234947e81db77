import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { ConfigError } from '../lib/errors.js';
import type { NormalCertificate } from './certificates.js';
import { DEFAULT_TLS_POLICY, type TlsPolicy } from './policy.js';

/** Versions and ciphers of a context, with or without a certificate. */
export function policyOptions(policy: TlsPolicy): SecureContextOptions {
  return { minVersion: policy.minVersion, maxVersion: policy.maxVersion, ciphers: policy.ciphers };
}

/** Whether the listener asks clients for a certificate, and which CA names it lists in that request. */
export interface ClientCertificateRequest {
  request: boolean;
  /** PEM CA certificates whose subject names are sent (Kong's send_ca_dn); empty: none. */
  caNames: readonly string[];
}

export const NO_CLIENT_CERTIFICATES: ClientCertificateRequest = Object.freeze({ request: false, caNames: Object.freeze([]) });

/**
 * Context options of one certificate (RSA and ECDSA pairs side by side when `cert_alt` is set).
 * With CA names, node lists them in its certificate request; they are not what client
 * certificates are verified against (mtls-auth verifies against its own CAs).
 */
export function contextOptions(c: NormalCertificate, policy: TlsPolicy, client: ClientCertificateRequest = NO_CLIENT_CERTIFICATES): SecureContextOptions {
  return {
    ...policyOptions(policy),
    cert: c.certAlt ? [c.cert, c.certAlt] : c.cert,
    key: c.keyAlt ? [c.key, c.keyAlt] : c.key,
    ...(client.caNames.length ? { ca: [...client.caNames] } : {}),
  };
}

interface Entry {
  certificate: NormalCertificate;
  context: SecureContext;
}

/**
 * The certificates of one snapshot as ready SecureContexts, looked up per handshake by SNI:
 * exact names first, then "*.rest" (one label), then "prefix.*"; the first certificate is the
 * default for clients without SNI or with an unknown one.
 */
export class TlsContexts {
  private readonly exact = new Map<string, Entry>();
  private readonly prefixWildcards = new Map<string, Entry>();
  private readonly suffixWildcards = new Map<string, Entry>();
  /** The default certificate, undefined when the config has none. */
  readonly fallback: Entry | undefined;
  readonly size: number;
  /** Identity of the certificate set and policy: a reload with the same key reuses these contexts. */
  readonly key: string;
  /**
   * Versions and ciphers, set on every context. The server's default context is the one that
   * counts: OpenSSL fixes the version range and cipher list when a connection starts, and an SNI
   * switch to a certificate's context changes only the certificate.
   */
  readonly policy: TlsPolicy;

  /** Client certificates the listener asks for (SNI contexts carry the CA names too: node switches to them). */
  readonly clientCertificates: ClientCertificateRequest;

  static keyOf(certificates: readonly NormalCertificate[], policy: TlsPolicy, client: ClientCertificateRequest = NO_CLIENT_CERTIFICATES): string {
    return JSON.stringify([policy.minVersion, policy.maxVersion, policy.ciphers, certificates.map((c) => [c.cert, c.key, c.certAlt, c.keyAlt, c.snis]), client.request, client.caNames]);
  }

  constructor(certificates: readonly NormalCertificate[], policy: TlsPolicy = DEFAULT_TLS_POLICY, client: ClientCertificateRequest = NO_CLIENT_CERTIFICATES) {
    this.key = TlsContexts.keyOf(certificates, policy, client);
    this.policy = policy;
    this.clientCertificates = client;
    const errors: string[] = [];
    const entries: Entry[] = [];
    for (const certificate of certificates) {
      try {
        entries.push({ certificate, context: createSecureContext(contextOptions(certificate, policy, client)) });
      } catch (err) {
        errors.push(`${certificate.at}: ${(err as Error).message}`);
      }
    }
    if (errors.length) throw new ConfigError(errors);
    for (const entry of entries) {
      for (const name of entry.certificate.snis) {
        if (name.startsWith('*.')) this.prefixWildcards.set(name.slice(2), entry);
        else if (name.endsWith('.*')) this.suffixWildcards.set(name.slice(0, -2), entry);
        else this.exact.set(name, entry);
      }
    }
    this.fallback = entries[0];
    this.size = entries.length;
  }

  /** The entry for a server name, or undefined (the caller falls back to the default). */
  match(servername: string): Entry | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const hit = this.exact.get(name);
    if (hit) return hit;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wild = this.prefixWildcards.get(name.slice(dot + 1));
      if (wild) return wild;
    }
    const last = name.lastIndexOf('.');
    return last > 0 ? this.suffixWildcards.get(name.slice(0, last)) : undefined;
  }

  /** The context for a handshake: by SNI, else the default; undefined when there is no certificate. */
  contextFor(servername: string | undefined): SecureContext | undefined {
    return ((servername ? this.match(servername) : undefined) ?? this.fallback)?.context;
  }
}

export const NO_CERTIFICATES = new TlsContexts([]);
