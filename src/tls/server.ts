import type { TlsOptions, SecureContextOptions } from 'node:tls';
import type { Logger } from '../observability/logger.js';
import { contextOptions, MIN_TLS_VERSION, type TlsContexts } from './contexts.js';

/** What the HTTPS listener needs from the gateway: the live snapshot's certificates. */
export interface TlsBinding {
  contexts(): TlsContexts;
  /** Options of the server's own context, used when a client sends no SNI (no SNICallback then). */
  defaultOptions(contexts: TlsContexts): SecureContextOptions;
}

export function tlsBinding(contexts: () => TlsContexts): TlsBinding {
  return {
    contexts,
    defaultOptions: (c) => (c.fallback ? contextOptions(c.fallback.certificate, c.clientCertificates) : { minVersion: MIN_TLS_VERSION }),
  };
}

/** TLS options of the HTTPS listener: TLS 1.2+, ALPN http/1.1, the certificate by SNI from the live snapshot. */
export function secureServerOptions(tls: TlsBinding, logger: Logger): TlsOptions {
  return {
    minVersion: MIN_TLS_VERSION,
    ALPNProtocols: ['http/1.1'],
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
