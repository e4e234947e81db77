/**
 * X.509 helpers with no gateway state: a certificate read once into what verification and identity
 * mapping need, and chain verification against a caller's own set of trust anchors.
 *
 * Why verify here rather than in OpenSSL's handshake: node verifies a peer against the one trust
 * store of the listener, and the handshake happens before the route (and so the mtls-auth plugin
 * with its own `ca_certificates`) is known. Node exposes signature and issuer checks per
 * certificate (X509Certificate.verify / checkIssued); the path rules around them (validity,
 * CA flag, key usage, path length, critical extensions, purpose) are applied below.
 */
import { X509Certificate, createHash } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

export interface CertInfo {
  x509: X509Certificate;
  /** sha256 of the DER, lower-case hex (the format of Kong's `cert_digest`). */
  digest: string;
  /** Validity window, ms since the epoch. */
  notBefore: number;
  notAfter: number;
  /** basicConstraints cA. */
  ca: boolean;
  /** basicConstraints pathLenConstraint. */
  pathLen: number | undefined;
  /** keyUsage bits (bit 0 = digitalSignature), undefined when the extension is absent. */
  keyUsage: number | undefined;
  /** Extended key usage OIDs, undefined when the extension is absent. */
  extKeyUsage: readonly string[] | undefined;
  /** OIDs of critical extensions this module does not enforce (name constraints, for one). */
  unhandledCritical: readonly string[];
  /** Issued and signed by its own key. */
  selfSigned: boolean;
}

const OID = {
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  anyExtendedKeyUsage: '2.5.29.37.0',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

/** Critical extensions whose meaning is applied here or does not restrict a chain. */
const HANDLED_CRITICAL = new Set([
  OID.keyUsage,
  OID.basicConstraints,
  OID.extKeyUsage,
  '2.5.29.17', // subjectAltName
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.32', // certificatePolicies (OpenSSL also ignores policies unless asked)
]);

const KU_DIGITAL_SIGNATURE = 0x80 >> 0;
const KU_KEY_AGREEMENT = 0x80 >> 4;

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function readTlv(buf: Buffer, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new Error('truncated DER');
  const tag = buf[pos]!;
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  }
  if (p + len > limit) throw new Error('truncated DER');
  return { tag, start: p, end: p + len };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end; ) {
    const c = readTlv(buf, p, parent.end);
    out.push(c);
    p = c.end;
  }
  return out;
}

function oidString(buf: Buffer, t: Tlv): string {
  const arcs: number[] = [];
  let value = 0;
  for (let i = t.start; i < t.end; i++) {
    value = value * 128 + (buf[i]! & 0x7f);
    if (!(buf[i]! & 0x80)) {
      if (!arcs.length) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

interface Extension {
  critical: boolean;
  /** The extnValue OCTET STRING's content (the extension's own DER). */
  value: Tlv;
}

/** Extensions by OID, read from the DER of a certificate. */
function extensionsOf(der: Buffer): Map<string, Extension> {
  const out = new Map<string, Extension>();
  const cert = readTlv(der, 0, der.length);
  const tbs = children(der, cert)[0];
  if (!tbs) throw new Error('no tbsCertificate');
  const wrapper = children(der, tbs).find((t) => t.tag === 0xa3);
  if (!wrapper) return out;
  const list = children(der, wrapper)[0];
  if (!list) return out;
  for (const ext of children(der, list)) {
    const parts = children(der, ext);
    const oid = parts[0];
    if (!oid || oid.tag !== 0x06) continue;
    const critical = parts[1]?.tag === 0x01 && der[parts[1].start] !== 0;
    const octets = parts[parts.length - 1];
    if (!octets || octets.tag !== 0x04) continue;
    out.set(oidString(der, oid), { critical, value: { tag: 0x04, start: octets.start, end: octets.end } });
  }
  return out;
}

function readBasicConstraints(der: Buffer, ext: Extension): { ca: boolean; pathLen: number | undefined } {
  const seq = readTlv(der, ext.value.start, ext.value.end);
  let ca = false;
  let pathLen: number | undefined;
  for (const c of children(der, seq)) {
    if (c.tag === 0x01) ca = der[c.start] !== 0;
    else if (c.tag === 0x02) {
      pathLen = 0;
      for (let i = c.start; i < c.end; i++) pathLen = pathLen * 256 + der[i]!;
    }
  }
  return { ca, pathLen };
}

function readKeyUsage(der: Buffer, ext: Extension): number {
  const bits = readTlv(der, ext.value.start, ext.value.end);
  // BIT STRING: one byte of unused-bit count, then the bits; the first byte holds bits 0-7.
  return bits.end - bits.start >= 2 ? der[bits.start + 1]! : 0;
}

/** Reads a certificate once; throws on a certificate node cannot parse. */
export function certInfo(input: X509Certificate | string | Buffer): CertInfo {
  const x509 = input instanceof X509Certificate ? input : new X509Certificate(input);
  const der = x509.raw;
  const extensions = extensionsOf(der);
  const bc = extensions.get(OID.basicConstraints);
  const { ca, pathLen } = bc ? readBasicConstraints(der, bc) : { ca: false, pathLen: undefined };
  const ku = extensions.get(OID.keyUsage);
  const unhandledCritical: string[] = [];
  for (const [oid, ext] of extensions) if (ext.critical && !HANDLED_CRITICAL.has(oid)) unhandledCritical.push(oid);
  return {
    x509,
    digest: createHash('sha256').update(der).digest('hex'),
    notBefore: Date.parse(x509.validFrom),
    notAfter: Date.parse(x509.validTo),
    ca,
    pathLen,
    keyUsage: ku ? readKeyUsage(der, ku) : undefined,
    extKeyUsage: extensions.has(OID.extKeyUsage) ? (x509.keyUsage ?? []) : undefined,
    unhandledCritical,
    // As OpenSSL sees it: issued by its own name and signed by its own key (key usage aside).
    selfSigned: x509.subject === x509.issuer && x509.verify(x509.publicKey),
  };
}

export interface ChainOptions {
  /** Accept a chain that ends at a trusted certificate that is not self-signed (an intermediate). */
  allowPartialChain: boolean;
  /** ms since the epoch. */
  now: number;
  /** What the leaf must be fit for (its extended key usage, when it has one). */
  purpose: 'clientAuth' | 'serverAuth';
  /** Most certificates in a chain, the leaf and the anchor included. */
  maxLength?: number;
}

export type ChainVerdict = { ok: true; chain: readonly CertInfo[] } | { ok: false; reason: string };

function timeProblem(c: CertInfo, now: number): string | undefined {
  if (!(now <= c.notAfter)) return 'certificate has expired';
  if (!(now >= c.notBefore)) return 'certificate is not yet valid';
  return undefined;
}

function leafProblem(leaf: CertInfo, o: ChainOptions): string | undefined {
  const time = timeProblem(leaf, o.now);
  if (time) return time;
  if (leaf.unhandledCritical.length) return `unhandled critical extension ${leaf.unhandledCritical[0]}`;
  const eku = leaf.extKeyUsage;
  const wanted = o.purpose === 'clientAuth' ? OID.clientAuth : OID.serverAuth;
  if (eku && !eku.includes(wanted) && !eku.includes(OID.anyExtendedKeyUsage)) return `certificate is not for ${o.purpose}`;
  if (leaf.keyUsage !== undefined && !(leaf.keyUsage & (KU_DIGITAL_SIGNATURE | KU_KEY_AGREEMENT))) return 'key usage does not allow TLS authentication';
  return undefined;
}

/**
 * Verifies that `leaf` chains to one of `trusted`, through certificates from `trusted` or
 * `untrusted` (what the peer sent). Without allowPartialChain the chain must end at a
 * self-signed certificate of `trusted`. Revocation (OCSP, CRL) and name constraints are not
 * checked: a chain through a CA with name constraints is refused rather than trusted blindly.
 */
export function verifyChain(leaf: CertInfo, untrusted: readonly CertInfo[], trusted: readonly CertInfo[], o: ChainOptions): ChainVerdict {
  const problem = leafProblem(leaf, o);
  if (problem) return { ok: false, reason: problem };
  const trustedDigests = new Set(trusted.map((t) => t.digest));
  const anchors = (c: CertInfo) => trustedDigests.has(c.digest) && (o.allowPartialChain || c.selfSigned);
  if (anchors(leaf)) return { ok: true, chain: [leaf] };
  const candidates = [...trusted, ...untrusted.filter((u) => !trustedDigests.has(u.digest))];
  const maxLength = o.maxLength ?? 10;
  let reason: string | undefined;

  const walk = (path: CertInfo[]): CertInfo[] | undefined => {
    const current = path[path.length - 1]!;
    if (path.length >= maxLength) {
      reason = 'certificate chain too long';
      return undefined;
    }
    for (const issuer of candidates) {
      if (path.some((p) => p.digest === issuer.digest)) continue;
      if (!current.x509.checkIssued(issuer.x509)) continue;
      if (!current.x509.verify(issuer.x509.publicKey)) {
        reason = 'certificate signature failure';
        continue;
      }
      if (!issuer.ca) {
        reason = 'invalid CA certificate';
        continue;
      }
      const time = timeProblem(issuer, o.now);
      if (time) {
        reason = `issuer ${time}`;
        continue;
      }
      if (issuer.unhandledCritical.length) {
        reason = `unhandled critical extension ${issuer.unhandledCritical[0]}`;
        continue;
      }
      // Intermediates between the leaf and this issuer: path minus the leaf.
      if (issuer.pathLen !== undefined && path.length - 1 > issuer.pathLen) {
        reason = 'path length constraint exceeded';
        continue;
      }
      const next = [...path, issuer];
      if (anchors(issuer)) return next;
      if (issuer.selfSigned) {
        reason = 'self-signed certificate in certificate chain';
        continue;
      }
      const found = walk(next);
      if (found) return found;
    }
    return undefined;
  };

  const chain = walk([leaf]);
  if (chain) return { ok: true, chain };
  return { ok: false, reason: reason ?? (leaf.selfSigned ? 'self-signed certificate' : 'unable to get local issuer certificate') };
}

/** Undoes RFC 4514 escapes (`\,` and `\XX` hex bytes) in one attribute value. */
function unescapeDnValue(value: string): string {
  if (!value.includes('\\')) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '\\' && i + 1 < value.length) {
      const hex = value.slice(i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
        continue;
      }
      i++;
      bytes.push(...Buffer.from(value[i]!, 'utf8'));
      continue;
    }
    bytes.push(...Buffer.from(ch, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Node prints a name one attribute per line, escaped as RFC 2253 asks, most significant first. */
function nameLines(name: string): string[] {
  return name.split('\n').filter(Boolean);
}

/** The subject as an RFC 4514 string, most specific first (e.g. `CN=alice,O=Example`). */
export function subjectDn(x509: X509Certificate): string {
  return nameLines(x509.subject).reverse().join(',');
}

/** The first CN of the subject (unescaped), as OpenSSL's lookup by NID finds it. */
export function commonName(x509: X509Certificate): string | undefined {
  for (const line of nameLines(x509.subject)) {
    for (const part of line.split(/(?<!\\) \+ /)) {
      if (part.startsWith('CN=')) return unescapeDnValue(part.slice(3));
    }
  }
  return undefined;
}

/** DNS and email subject alternative names, in certificate order. */
export function subjectAltNames(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (!san) return [];
  const out: string[] = [];
  // Node quotes (JSON) a value that contains a separator; others are bare.
  const entry = /(DNS|email|[A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const m of san.matchAll(entry)) {
    const kind = m[1]!;
    if (kind !== 'DNS' && kind !== 'email') continue;
    const raw = m[2]!;
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    if (value) out.push(value);
  }
  return out;
}

/**
 * The DER certificates a TLS peer presented, leaf first, as node links them by issuer (it may
 * append the anchor from the listener's own store); undefined when the peer sent none.
 */
export function peerCertificates(socket: TLSSocket): Buffer[] | undefined {
  const leaf = socket.getPeerCertificate(true);
  if (!leaf || !leaf.raw) return undefined;
  const out: Buffer[] = [];
  const seen = new Set<string>();
  for (let c: DetailedPeerCertificate | undefined = leaf; c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    out.push(c.raw);
  }
  return out;
}
