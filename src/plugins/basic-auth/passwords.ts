import { randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { digestsEqual } from '../auth-common/secrets.js';
import { decodeBase64 } from '../auth-common/request.js';

/** A stored password: verifies a presented one without ever comparing plaintexts. Never rejects. */
export interface PasswordVerifier {
  verify(password: string): Promise<boolean>;
}

export const BCRYPT_HASH = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;
export const SCRYPT_HASH = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,3}),p=(\d{1,3})\$([A-Za-z0-9+/.]+={0,2})\$([A-Za-z0-9+/.]+={0,2})$/;
/** bcryptjs runs on the main thread: each check at cost 14 already takes over a second of CPU. */
const MAX_BCRYPT_COST = 14;
/** scrypt needs 128 * N * r bytes of memory per check. */
const MAX_SCRYPT_MEMORY = 64 * 1024 * 1024;

/** Parameters for passwords given in plain text in the config: moderate, hashed once on first use. */
export const PLAIN_PARAMS = { ln: 12, r: 8, p: 1 } as const;

function scrypt(password: string | Buffer, salt: Buffer, length: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key))));
}

function scryptOptions(ln: number, r: number, p: number): ScryptOptions {
  const N = 2 ** ln;
  return { N, r, p, maxmem: 128 * N * r * p + 1024 * 1024 };
}

class BcryptVerifier implements PasswordVerifier {
  private readonly hash: Buffer;
  private readonly salt: string;

  constructor(stored: string) {
    // $2y$ (PHP) and $2a$ hashes are computed like $2b$ for passwords bcrypt accepts.
    const normalised = `$2b$${stored.slice(4)}`;
    this.hash = Buffer.from(normalised);
    this.salt = normalised.slice(0, 29);
  }

  async verify(password: string): Promise<boolean> {
    const computed = await bcrypt.hash(password, this.salt);
    return digestsEqual(Buffer.from(computed), this.hash);
  }
}

class ScryptVerifier implements PasswordVerifier {
  constructor(
    private readonly salt: Buffer,
    private readonly hash: Buffer,
    private readonly options: ScryptOptions,
  ) {}

  async verify(password: string): Promise<boolean> {
    const computed = await scrypt(password, this.salt, this.hash.length, this.options);
    return digestsEqual(computed, this.hash);
  }
}

/**
 * A password given in plain text: hashed with scrypt on first use (then only the hash is kept
 * here), and every check compares scrypt outputs. Lazy, so a config with many users loads at once.
 */
class PlainVerifier implements PasswordVerifier {
  private plain: string | undefined;
  private hashed: Promise<Buffer> | undefined;
  private readonly salt = randomBytes(16);
  private readonly options = scryptOptions(PLAIN_PARAMS.ln, PLAIN_PARAMS.r, PLAIN_PARAMS.p);

  constructor(plain: string) {
    this.plain = plain;
  }

  async verify(password: string): Promise<boolean> {
    if (!this.hashed) {
      this.hashed = scrypt(this.plain!, this.salt, 32, this.options);
      this.plain = undefined;
    }
    const [stored, computed] = await Promise.all([this.hashed, scrypt(password, this.salt, 32, this.options)]);
    return digestsEqual(computed, stored);
  }
}

/** Checks a stored hash's parameters; returns a problem (never echoing the value) or undefined. */
export function checkStoredPassword(stored: string): string | undefined {
  const b = BCRYPT_HASH.exec(stored);
  if (b) {
    const cost = Number(b[1]);
    if (cost < 4 || cost > MAX_BCRYPT_COST) return `bcrypt cost must be between 4 and ${MAX_BCRYPT_COST} (got ${cost})`;
    return undefined;
  }
  const s = SCRYPT_HASH.exec(stored);
  if (s) {
    const [ln, r, p] = [Number(s[1]), Number(s[2]), Number(s[3])];
    if (ln < 1 || ln > 20 || r < 1 || p < 1 || p > 16) return 'scrypt parameters out of range (ln 1-20, r >= 1, p 1-16)';
    if (128 * 2 ** ln * r * p > MAX_SCRYPT_MEMORY) return 'scrypt parameters need more than 64 MiB per check';
    const salt = decodeBase64(s[4]!.replaceAll('.', '+'), 'standard');
    const hash = decodeBase64(s[5]!.replaceAll('.', '+'), 'standard');
    if (!salt || salt.length < 8) return 'scrypt salt must be at least 8 bytes (base64)';
    if (!hash || hash.length < 16 || hash.length > 64) return 'scrypt hash must be 16 to 64 bytes (base64)';
    return undefined;
  }
  if (/^\$(2[aby]|scrypt)\$/.test(stored)) return 'looks like a bcrypt or scrypt hash but is malformed';
  return undefined;
}

/** The verifier for a stored password: a bcrypt hash, a scrypt hash, or plain text. Throws on a bad hash. */
export function verifierFor(stored: string): PasswordVerifier {
  const problem = checkStoredPassword(stored);
  if (problem) throw new Error(problem);
  if (BCRYPT_HASH.test(stored)) return new BcryptVerifier(stored);
  const s = SCRYPT_HASH.exec(stored);
  if (s) {
    const salt = decodeBase64(s[4]!.replaceAll('.', '+'))!;
    const hash = decodeBase64(s[5]!.replaceAll('.', '+'))!;
    return new ScryptVerifier(salt, hash, scryptOptions(Number(s[1]), Number(s[2]), Number(s[3])));
  }
  return new PlainVerifier(stored);
}

/** A verifier that never matches, with the cost of a plain-password check (unknown users take as long). */
export function decoyVerifier(): PasswordVerifier {
  return new PlainVerifier(randomBytes(18).toString('base64'));
}

/** `$scrypt$ln=..,r=..,p=..$salt$hash` for a password (docs and tests; the format verifierFor reads). */
export async function hashPassword(password: string, params: { ln: number; r: number; p: number } = { ln: 14, r: 8, p: 1 }): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, 32, scryptOptions(params.ln, params.r, params.p));
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64').replace(/=+$/, '')}$${hash.toString('base64').replace(/=+$/, '')}`;
}
