import type { CaCertificateConfig } from '../config/schema.js';
import { certInfo, type CertInfo } from './x509.js';

/** A ca_certificates entity after validation. */
export interface NormalCaCertificate {
  id: string;
  at: string;
  /** The PEM as given. */
  cert: string;
  /** sha256 of the DER, lower-case hex (Kong's cert_digest). */
  digest: string;
  info: CertInfo;
}

const BEGIN = /-----BEGIN CERTIFICATE-----/g;

/**
 * Validates `ca_certificates` as Kong does (one PEM certificate each, a CA, not expired; cert_digest
 * is the certificate's sha256) and refuses a cert_digest that does not match or repeats. Errors
 * name the entity, e.g. `ca_certificates[0].cert: ...`.
 */
export function checkCaCertificates(
  list: readonly CaCertificateConfig[],
  err: (at: string, message: string) => void,
  claimId: (table: string, at: string, id: string | undefined, key: string | undefined) => string,
  now: number,
): NormalCaCertificate[] {
  const out: NormalCaCertificate[] = [];
  const digests = new Map<string, string>();
  list.forEach((c, i) => {
    const at = `ca_certificates[${i}]`;
    const id = claimId('ca_certificates', at, c.id, undefined);
    if ((c.cert.match(BEGIN) ?? []).length > 1) return err(`${at}.cert`, 'please submit only one certificate at a time');
    let info: CertInfo;
    try {
      info = certInfo(c.cert);
    } catch (e) {
      return err(`${at}.cert`, `invalid certificate (${(e as Error).message})`);
    }
    if (info.notAfter < now) return err(`${at}.cert`, 'certificate expired, "Not After" time is in the past');
    if (!info.ca) return err(`${at}.cert`, 'certificate does not appear to be a CA because it is missing the "CA" basic constraint');
    if (c.cert_digest !== undefined && c.cert_digest.toLowerCase() !== info.digest) {
      return err(`${at}.cert_digest`, `does not match cert (its sha256 is ${info.digest})`);
    }
    const previous = digests.get(info.digest);
    if (previous) return err(`${at}.cert_digest`, `UNIQUE violation: "${info.digest}" is already used (${previous})`);
    digests.set(info.digest, at);
    out.push({ id, at, cert: c.cert, digest: info.digest, info });
  });
  return out;
}
