import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { CertificateConfig, SniConfig } from '../config/schema.js';

/** A certificate entity after validation: PEM strings and the server names it answers. */
export interface NormalCertificate {
  id: string;
  at: string;
  cert: string;
  key: string;
  certAlt: string | undefined;
  keyAlt: string | undefined;
  /** Lower-case names; a leading "*." or trailing ".*" is a wildcard. */
  snis: string[];
}

const SNI_PATTERN = /^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*(\.\*)?$/;

function checkSni(name: string): string | undefined {
  if (name.startsWith('*.') && name.endsWith('.*')) return 'only one wildcard ("*." at the start or ".*" at the end) allowed';
  if (!SNI_PATTERN.test(name)) return 'invalid server name';
  return undefined;
}

/** Parses one cert/key pair; a problem is reported against the field that holds it. */
function checkPair(at: string, certField: string, cert: string, keyField: string, key: string, err: (at: string, m: string) => void): void {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    err(`${at}.${certField}`, `invalid certificate (${(e as Error).message})`);
    return;
  }
  let keyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (e) {
    err(`${at}.${keyField}`, `invalid private key (${(e as Error).message})`);
    return;
  }
  if (!x509.checkPrivateKey(keyObject)) err(`${at}.${keyField}`, `does not match ${certField}`);
}

/**
 * Validates `certificates` and top-level `snis`: PEM parsing, key/certificate pairs, server names,
 * references, one certificate per name. Errors name the entity, e.g. `certificates[0].key: ...`.
 */
export function checkCertificates(
  certificates: readonly CertificateConfig[],
  snis: readonly SniConfig[],
  err: (at: string, message: string) => void,
  claimId: (table: string, at: string, id: string | undefined, key: string | undefined) => string,
): NormalCertificate[] {
  const out: NormalCertificate[] = [];
  const byId = new Map<string, NormalCertificate>();
  const owner = new Map<string, string>();
  const addSni = (cert: NormalCertificate, at: string, raw: string) => {
    const name = raw.toLowerCase();
    const problem = checkSni(name);
    if (problem) return err(at, problem);
    const prev = owner.get(name);
    if (prev) return err(at, `UNIQUE violation: "${name}" is already used (${prev})`);
    owner.set(name, at);
    cert.snis.push(name);
  };
  certificates.forEach((c, i) => {
    const at = `certificates[${i}]`;
    const id = claimId('certificates', at, c.id, undefined);
    checkPair(at, 'cert', c.cert, 'key', c.key, err);
    if ((c.cert_alt === undefined) !== (c.key_alt === undefined)) err(at, 'cert_alt and key_alt must be set together');
    else if (c.cert_alt !== undefined && c.key_alt !== undefined) checkPair(at, 'cert_alt', c.cert_alt, 'key_alt', c.key_alt, err);
    const normal: NormalCertificate = { id, at, cert: c.cert, key: c.key, certAlt: c.cert_alt, keyAlt: c.key_alt, snis: [] };
    (c.snis ?? []).forEach((s, j) => addSni(normal, `${at}.snis[${j}]`, typeof s === 'string' ? s : s.name));
    out.push(normal);
    byId.set(id, normal);
  });
  snis.forEach((s, i) => {
    const at = `snis[${i}]`;
    const ref = typeof s.certificate === 'string' ? s.certificate : s.certificate.id;
    const cert = ref === undefined ? undefined : byId.get(ref);
    if (!cert) return err(`${at}.certificate`, `no certificate with id "${ref ?? ''}"`);
    addSni(cert, `${at}.name`, s.name);
  });
  return out;
}
