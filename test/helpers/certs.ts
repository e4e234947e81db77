import { after } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pair {
  cert: string;
  key: string;
}

export interface TestCa {
  /** The CA certificate (PEM), for clients' `ca`. */
  ca: string;
  /** A leaf signed by the CA: CN `cn`, SANs `names` (DNS names); `days` -1 makes it expired. */
  leaf(cn: string, names: string[], days?: number): Pair;
}

/**
 * A throwaway CA made with the openssl binary in a temp folder (removed when the test file ends).
 * Keys are ECDSA P-256, which keeps generation fast.
 */
export function testCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-certs-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const pem = (name: string) => readFileSync(join(dir, name), 'utf8');
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Gatehouse Test CA', '-days', '2');
  let serial = 1;
  return {
    ca: pem('ca.pem'),
    leaf(cn, names, days = 2) {
      const file = `leaf${++serial}`;
      openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${file}.key`, '-out', `${file}.csr`, '-subj', `/CN=${cn}`);
      writeFileSync(join(dir, `${file}.ext`), `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
      openssl('x509', '-req', '-in', `${file}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', String(serial), '-days', String(days), '-extfile', `${file}.ext`, '-out', `${file}.pem`);
      return { cert: pem(`${file}.pem`), key: pem(`${file}.key`) };
    },
  };
}
