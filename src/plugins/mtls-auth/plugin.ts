import type { TLSSocket } from 'node:tls';
import type { Consumer, Credential } from '../../config/consumers.js';
import type { Exchange, HeaderMap, Outcome } from '../../pipeline/exchange.js';
import { setConsumer } from '../../pipeline/consumer.js';
import { errorReply } from '../../pipeline/reply.js';
import { declarativeId } from '../../lib/uuid.js';
import { certInfo, commonName, peerCertificates, subjectAltNames, subjectDn, verifyChain, type CertInfo } from '../../tls/x509.js';
import type { PluginDeps, PluginInstance } from '../types.js';
import { Anonymous, EXTERNAL_CREDENTIAL, type ExternalCredential } from '../auth-common/anonymous.js';
import { headerValue } from '../auth-common/request.js';
import type { MtlsAuthConfig } from './schema.js';

const NO_CERTIFICATE = 'No required TLS certificate was sent';
const FAILED = 'TLS certificate failed verification';

/** What a connection's client certificate amounts to for one plugin instance. */
type Verdict =
  | { kind: 'none'; checkedAt: number }
  | { kind: 'invalid'; checkedAt: number; reason: string }
  | {
      kind: 'valid';
      checkedAt: number;
      notAfter: number;
      /** RFC 4514 subject. */
      dn: string;
      /** The same, ready as a header value. */
      subject: string;
      /** sha256 of the DER, lower-case hex. */
      fingerprint: string;
      cn: string | undefined;
      /** Names tried against consumers: DNS and email SANs, then the CN. */
      names: readonly string[];
      /** The consumer lookup, done on the first request of the connection. */
      match: Match | undefined;
    };

type Match = { consumer: Consumer; credential: Credential; identifier: string } | { consumer: undefined; missingDefault: boolean };

/**
 * Intermediates of chains verified earlier, by leaf digest: a resumed TLS session brings back the
 * client's certificate but not the intermediates it sent in the full handshake. Kept for the
 * gateway's life (deps.scope), bounded; they are only candidates, trust still comes from a plugin's CAs.
 */
class IntermediateMemory {
  private readonly byLeaf = new Map<string, readonly CertInfo[]>();
  constructor(private readonly limit: number) {}

  get(leaf: string): readonly CertInfo[] {
    return this.byLeaf.get(leaf) ?? [];
  }

  remember(leaf: string, intermediates: readonly CertInfo[]): void {
    if (!intermediates.length || this.byLeaf.has(leaf)) return;
    if (this.byLeaf.size >= this.limit) this.byLeaf.delete(this.byLeaf.keys().next().value!);
    this.byLeaf.set(leaf, intermediates);
  }
}

export function create(config: MtlsAuthConfig, deps: PluginDeps): PluginInstance {
  const anonymous = new Anonymous('mtls-auth', config.anonymous, deps);
  const now = deps.now ?? Date.now;
  const trusted = config.ca_certificates.map((id, i) => {
    const ca = deps.caCertificates?.get(id);
    if (!ca) throw new Error(`ca_certificates[${i}]: no ca_certificate with id "${id}"`);
    return ca.info;
  });
  const consumers = config.skip_consumer_lookup ? undefined : deps.consumers;
  const defaultConsumer = config.default_consumer === undefined ? undefined : deps.consumers.find(config.default_consumer);
  if (config.default_consumer !== undefined && !defaultConsumer) {
    deps.logger.warn({ plugin: 'mtls-auth' }, `default consumer ${config.default_consumer} is configured but doesn't exist`);
  }
  const memory = deps.scope.get('mtls-auth:intermediates', () => new IntermediateMemory(10_000));
  const ttl = config.cache_ttl * 1000;
  // Per connection: the certificate of a connection never changes, so it is verified once (per
  // cache_ttl). Keyed weakly by the socket: nothing outlives the connection.
  const verdicts = new WeakMap<object, Verdict>();

  function verify(socket: TLSSocket, at: number): Verdict {
    let presented: CertInfo[];
    try {
      const der = peerCertificates(socket);
      if (!der) return { kind: 'none', checkedAt: at };
      presented = der.map((d) => certInfo(d));
    } catch (err) {
      return { kind: 'invalid', checkedAt: at, reason: `unreadable certificate (${(err as Error).message})` };
    }
    const leaf = presented[0]!;
    const sent = presented.slice(1);
    const result = verifyChain(leaf, [...sent, ...memory.get(leaf.digest)], trusted, { allowPartialChain: config.allow_partial_chain, now: at, purpose: 'clientAuth' });
    if (!result.ok) {
      deps.logger.info({ plugin: 'mtls-auth', reason: result.reason, fingerprint: leaf.digest, client_ip: socket.remoteAddress }, 'client certificate refused');
      return { kind: 'invalid', checkedAt: at, reason: result.reason };
    }
    const trustedDigests = new Set(trusted.map((t) => t.digest));
    memory.remember(leaf.digest, result.chain.slice(1).filter((c) => !trustedDigests.has(c.digest)));
    const cn = commonName(leaf.x509);
    const names = subjectAltNames(leaf.x509);
    if (cn !== undefined) names.push(cn);
    const dn = subjectDn(leaf.x509);
    return { kind: 'valid', checkedAt: at, notAfter: leaf.notAfter, dn, subject: headerValue(dn), fingerprint: leaf.digest, cn, names, match: undefined };
  }

  function verdictFor(ex: Exchange, at: number): Verdict {
    const socket = ex.req.socket as TLSSocket;
    // Over plain HTTP there is no certificate to look at.
    if (!socket.encrypted) return { kind: 'none', checkedAt: at };
    let verdict = verdicts.get(socket);
    if (!verdict || at - verdict.checkedAt > ttl) {
      verdict = verify(socket, at);
      verdicts.set(socket, verdict);
    }
    return verdict;
  }

  function lookup(names: readonly string[], fingerprint: string): Match {
    if (consumers) {
      for (const name of names) {
        for (const field of config.consumer_by) {
          const consumer = field === 'username' ? consumers.withUsername(name) : consumers.byCustom(name);
          if (consumer) return { consumer, credential: credentialFor(consumer, fingerprint, name), identifier: headerValue(name) };
        }
      }
    }
    if (defaultConsumer) {
      const name = names[0] ?? fingerprint;
      return { consumer: defaultConsumer, credential: credentialFor(defaultConsumer, fingerprint, name), identifier: headerValue(name) };
    }
    return { consumer: undefined, missingDefault: config.default_consumer !== undefined };
  }

  function setCertificateHeaders(h: HeaderMap, verdict: Extract<Verdict, { kind: 'valid' }>): void {
    h['x-client-cert-subject'] = verdict.subject;
    h['x-client-cert-fingerprint'] = verdict.fingerprint;
  }

  function authenticate(ex: Exchange): Outcome {
    const at = now();
    const verdict = verdictFor(ex, at);
    if (verdict.kind === 'none') return errorReply(ex, 401, NO_CERTIFICATE, 'mtls-auth: no client certificate');
    if (verdict.kind === 'invalid') return errorReply(ex, 401, FAILED, `mtls-auth: ${verdict.reason}`);
    if (at > verdict.notAfter) return errorReply(ex, 401, FAILED, 'mtls-auth: certificate has expired');

    const h = ex.upstreamHeaders;
    if (config.skip_consumer_lookup) {
      // Authenticated without a consumer: clear what an earlier anonymous match set.
      ex.consumer = undefined;
      ex.credential = undefined;
      for (const name of ['x-consumer-id', 'x-consumer-username', 'x-consumer-custom-id', 'x-anonymous-consumer']) delete h[name];
      const identifier = verdict.cn ?? verdict.fingerprint;
      h['x-credential-identifier'] = headerValue(identifier);
      const external: ExternalCredential = { plugin: 'mtls-auth', id: verdict.fingerprint };
      ex.shared[EXTERNAL_CREDENTIAL] = external;
      const group = config.authenticated_group_by === 'DN' ? verdict.dn : verdict.cn;
      if (group !== undefined) ex.authenticatedGroups = [group];
      setCertificateHeaders(h, verdict);
      return undefined;
    }
    const match = (verdict.match ??= lookup(verdict.names, verdict.fingerprint));
    if (!match.consumer) {
      if (match.missingDefault) return errorReply(ex, 500, `default consumer ${config.default_consumer} is configured but doesn't exist`, 'mtls-auth: default consumer missing');
      return errorReply(ex, 401, FAILED, 'mtls-auth: no consumer matches the certificate');
    }
    setConsumer(ex, match.consumer, match.credential, match.identifier);
    setCertificateHeaders(h, verdict);
    return undefined;
  }

  return {
    access(ex) {
      if (anonymous.skip(ex)) return undefined;
      const failure = authenticate(ex);
      return failure ? anonymous.fail(ex, failure) : undefined;
    },
  };
}

/** A verified certificate stands for a credential of its consumer (Kong's mtls_auth_credentials). */
function credentialFor(consumer: Consumer, fingerprint: string, subjectName: string): Credential {
  return Object.freeze({
    id: declarativeId('mtls_auth_credentials', `${consumer.id}:${fingerprint}`),
    type: 'mtls_auth_credentials' as const,
    consumer,
    fields: Object.freeze({ subject_name: subjectName, cert_digest: fingerprint }),
  });
}
