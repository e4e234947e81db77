// Test support (not used by the gateway): a throwaway PKI made with the openssl binary in a
// temporary folder: CAs, intermediates, server and client certificates, expired and self-signed
// ones. Keys are EC P-256 (fast to make).
import { after } from 'node:test';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Issued {
  name: string;
  /** PEM of this certificate alone. */
  cert: string;
  /** PEM private key. */
  key: string;
  x509: X509Certificate;
  issuer: Issued | undefined;
  /** This certificate followed by its intermediates (not the root): what a server or client sends. */
  chain: string;
}

export interface LeafOptions {
  /** Subject, e.g. "/O=Example/CN=alice" or just a CN. */
  subject: string;
  /** Signed by this CA; self-signed when absent. */
  issuer?: Issued;
  dns?: string[];
  ip?: string[];
  email?: string[];
  /** Validity in days from now; negative: expired. */
  days?: number;
  /** Extended key usage; none: the extension is left out. */
  usage?: 'serverAuth' | 'clientAuth' | 'serverAuth,clientAuth';
  /** keyUsage value; default "critical,digitalSignature". */
  keyUsage?: string;
  /** More extension lines in openssl's config syntax. */
  extensions?: string[];
}

export interface CaOptions {
  subject: string;
  /** Signed by this CA (an intermediate); self-signed root when absent. */
  issuer?: Issued;
  days?: number;
  pathlen?: number;
  /** More extension lines in openssl's config syntax (e.g. name constraints). */
  extensions?: string[];
}

export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'gatehouse-pki-'));
  private serial = 1;

  private openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.dir, stdio: 'pipe' });
  }

  private issue(name: string, subject: string, issuer: Issued | undefined, days: number, extensions: string[]): Issued {
    const subj = subject.startsWith('/') ? subject : `/CN=${subject}`;
    this.openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj);
    writeFileSync(join(this.dir, `${name}.ext`), `[ext]\n${extensions.join('\n')}\n`);
    const signer = issuer ? ['-CA', `${issuer.name}.pem`, '-CAkey', `${issuer.name}.key`] : ['-signkey', `${name}.key`];
    this.openssl('x509', '-req', '-in', `${name}.csr`, ...signer, '-days', String(days), '-set_serial', String(++this.serial), '-extfile', `${name}.ext`, '-extensions', 'ext', '-out', `${name}.pem`);
    const cert = readFileSync(join(this.dir, `${name}.pem`), 'utf8');
    const key = readFileSync(join(this.dir, `${name}.key`), 'utf8');
    const chain = cert + (issuer?.issuer ? issuer.chain : '');
    return { name, cert, key, x509: new X509Certificate(cert), issuer, chain };
  }

  /** A CA certificate (basicConstraints CA:TRUE): a root, or an intermediate when `issuer` is set. */
  ca(name: string, o: CaOptions): Issued {
    const ext = [
      `basicConstraints = critical,CA:TRUE${o.pathlen === undefined ? '' : `,pathlen:${o.pathlen}`}`,
      'keyUsage = critical,keyCertSign,cRLSign',
      'subjectKeyIdentifier = hash',
    ];
    if (o.issuer) ext.push('authorityKeyIdentifier = keyid');
    ext.push(...(o.extensions ?? []));
    return this.issue(name, o.subject, o.issuer, o.days ?? 2, ext);
  }

  /** An end-entity certificate (CA:FALSE). */
  leaf(name: string, o: LeafOptions): Issued {
    const ext = ['basicConstraints = critical,CA:FALSE', `keyUsage = ${o.keyUsage ?? 'critical,digitalSignature'}`, 'subjectKeyIdentifier = hash'];
    if (o.issuer) ext.push('authorityKeyIdentifier = keyid');
    if (o.usage) ext.push(`extendedKeyUsage = ${o.usage}`);
    const san = [...(o.dns ?? []).map((d) => `DNS:${d}`), ...(o.ip ?? []).map((i) => `IP:${i}`), ...(o.email ?? []).map((e) => `email:${e}`)];
    if (san.length) ext.push(`subjectAltName = ${san.join(',')}`);
    ext.push(...(o.extensions ?? []));
    return this.issue(name, o.subject, o.issuer, o.days ?? 2, ext);
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A PKI whose folder is removed when the test file ends. */
export function testPki(): TestPki {
  const pki = new TestPki();
  after(() => pki.cleanup());
  return pki;
}
