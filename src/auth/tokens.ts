import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Bearer secrets: 32 random bytes, base64url, with a readable prefix (`svc_`,
 * `ses_`, `scim_`...) so a leaked token can be recognised by secret scanners.
 * Only the SHA-256 is stored: the secrets carry 256 bits of entropy, so a slow
 * KDF adds nothing, and a fast hash keeps the lookup on a unique index.
 */
export function mintToken(prefix: string): { token: string; hash: string } {
  const token = `${prefix}_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Constant-time comparison of two hex digests (false on any length mismatch). */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** `Authorization: Bearer <token>` → the token, or undefined for any other shape. */
export function parseBearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer[ ]+([\x21-\x7e]{1,512})\s*$/i.exec(header);
  return match?.[1];
}
