import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Credential } from '../../config/consumers.js';
import { decodeBase64 } from '../auth-common/request.js';
import { keyProblem } from '../auth-common/key-types.js';

/** The verification key of one jwt_secrets credential, bound to its pinned algorithm. */
export interface SecretKey {
  alg: string;
  /** undefined: the secret does not decode (Kong's "Invalid key/secret"). */
  key: KeyObject | Uint8Array | undefined;
}

/**
 * Builds the key for each credential once per snapshot. HS* use `secret` (base64-decoded when
 * `secret_is_base64`), the others `rsa_public_key`: an asymmetric credential never lends its key
 * to an HMAC check. Throws listing every credential whose public key is unusable.
 */
export function buildKeys(credentials: readonly Credential[], secretIsBase64: boolean): Map<Credential, SecretKey> {
  const keys = new Map<Credential, SecretKey>();
  const problems: string[] = [];
  for (const c of credentials) {
    const alg = typeof c.fields.algorithm === 'string' ? c.fields.algorithm : 'HS256';
    if (alg.startsWith('HS')) {
      const secret = String(c.fields.secret ?? '');
      const bytes = secretIsBase64 ? decodeBase64(secret, 'any') : Buffer.from(secret, 'utf8');
      keys.set(c, { alg, key: bytes && bytes.length ? new Uint8Array(bytes) : undefined });
      continue;
    }
    try {
      const key = createPublicKey(String(c.fields.rsa_public_key));
      const problem = keyProblem(alg, key);
      if (problem) problems.push(`jwt_secrets "${String(c.fields.key)}": ${problem}`);
      else keys.set(c, { alg, key });
    } catch {
      problems.push(`jwt_secrets "${String(c.fields.key)}": rsa_public_key is not a valid public key`);
    }
  }
  if (problems.length) throw new Error(problems.join('; '));
  return keys;
}
