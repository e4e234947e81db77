import type { KeyObject } from 'node:crypto';

// Which public keys fit which JWS algorithm: jwt credentials and JWKS keys alike.

const CURVES: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

/** Checks that a public key fits an algorithm; returns the problem or undefined. */
export function keyProblem(alg: string, key: KeyObject): string | undefined {
  const type = key.asymmetricKeyType;
  if (alg.startsWith('RS') || alg.startsWith('PS')) {
    if (type !== 'rsa' && !(alg.startsWith('PS') && type === 'rsa-pss')) return `an ${alg} key must be an RSA key (got ${type})`;
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) return `RSA keys must have at least 2048 bits (got ${bits})`;
    return undefined;
  }
  if (alg.startsWith('ES')) {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (type !== 'ec' || curve !== CURVES[alg]) return `an ${alg} key must be an EC key on ${CURVES[alg]} (got ${type}${curve ? ` ${curve}` : ''})`;
    return undefined;
  }
  // jose verifies EdDSA with Ed25519 only.
  if (alg === 'EdDSA') return type === 'ed25519' ? undefined : `an EdDSA key must be Ed25519 (got ${type})`;
  return `unsupported algorithm ${alg}`;
}
