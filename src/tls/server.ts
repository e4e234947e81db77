import type { TlsOptions, SecureContextOptions } from 'node:tls';
import type { Logger } from '../observability/logger.js';
import { contextOptions, policyOptions, type TlsContexts } from './contexts.js';

/** What the HTTPS listener needs from the gateway: the live snapshot's certificates. */
export interface TlsBinding {
  contexts(): TlsContexts;
  /**
   * Options of the server's own context: its certificate is for clients without SNI (no
   * SNICallback then); its versions and ciphers apply to every handshake.
   */
  defaultOptions(contexts: TlsContexts): SecureContextOptions;
}

export function tlsBinding(contexts: () => TlsContexts): TlsBinding {
  return {
    contexts,
    defaultOptions: (c) => (c.fallback ? contextOptions(c.fallback.certificate, c.policy, c.clientCertificates) : policyOptions(c.policy)),
  };
}

/**
 * TLS options of the HTTPS listener: the live snapshot's versions and ciphers, the certificate by
 * SNI from the live snapshot. ALPN (h2, http/1.1) is node:http2's, from `allowHTTP1`.
 */
export function secureServerOptions(tls: TlsBinding, logger: Logger): TlsOptions {
  return {
    ...policyOptions(tls.contexts().policy),
    // Client certificates, when asked for (server.requestCert follows the live config), are
    // never a reason to refuse the handshake: routes without mtls-auth must keep working, and
    // mtls-auth verifies against its own CAs and answers 401 itself.
    requestCert: false,
    rejectUnauthorized: false,
    SNICallback: (servername, cb) => {
      const context = tls.contexts().contextFor(servername);
      if (context) return cb(null, context);
      logger.warn({ type: 'tls', servername }, 'TLS handshake refused: no certificate is configured');
      cb(new Error('no certificate configured'));
    },
  };
}
