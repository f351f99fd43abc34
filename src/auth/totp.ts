import { createHash, randomBytes } from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';

/**
 * TOTP (RFC 6238) with the parameters every authenticator app understands: SHA-1, 6 digits,
 * 30-second steps, a 160-bit base32 secret. Pure functions over otplib; storage and
 * lockout live in the MFA service.
 */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
export const TOTP_ALGORITHM = 'SHA1';

export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

/** `otpauth://totp/<issuer>:<label>?secret=...&issuer=...` for the QR code. */
export function totpUri(input: { issuer: string; label: string; secret: string }): string {
  return generateURI({ issuer: input.issuer, label: input.label, secret: input.secret });
}

export type TotpCheck = { ok: true; step: number } | { ok: false; reason: 'invalid' | 'replayed' };

/**
 * Checks a code against the current step and one step either side (clock drift).
 * A code whose step is not after `lastUsedStep` was already used (or an older code
 * sent after a newer one): refused as a replay, so each code works once.
 */
export async function checkTotpCode(secret: string, code: string, lastUsedStep: number | null, nowMs = Date.now()): Promise<TotpCheck> {
  let result;
  try {
    result = await verify({ secret, token: code, epoch: Math.floor(nowMs / 1000), epochTolerance: TOTP_PERIOD_SECONDS });
  } catch {
    return { ok: false, reason: 'invalid' };
  }
  // the functional API types the result for HOTP and TOTP alike; a TOTP match carries its time step
  if (!result.valid || !('timeStep' in result)) return { ok: false, reason: 'invalid' };
  if (lastUsedStep !== null && result.timeStep <= lastUsedStep) return { ok: false, reason: 'replayed' };
  return { ok: true, step: result.timeStep };
}

// ---------- recovery codes ----------

export const RECOVERY_CODE_COUNT = 10;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/**
 * Ten codes of 16 base32 characters (80 random bits), shown as `xxxx-xxxx-xxxx-xxxx`.
 * 80 bits make an offline search of the stored hashes hopeless, so a fast salted
 * SHA-256 is enough (the same reasoning as for bearer tokens).
 */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  return Array.from({ length: count }, () => {
    const bytes = randomBytes(16);
    const chars = Array.from(bytes, (b) => BASE32[b & 31]).join('');
    return chars.match(/.{4}/g)!.join('-');
  });
}

/** Case, spaces and dashes do not matter when a code is typed back. */
export function normalizeRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, '');
}

/** Salted with the user id: the same code of two users hashes differently. */
export function hashRecoveryCode(userId: string, code: string): string {
  return createHash('sha256').update(`${userId}:${normalizeRecoveryCode(code)}`, 'utf8').digest('hex');
}
