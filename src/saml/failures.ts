import { SamlStatusError } from '@node-saml/node-saml';

/**
 * A refused sign-in: a short stable code (the API contract and the audit reason), the HTTP
 * status, and a message safe to show. Details go to the audit event and the log only.
 */
export class SamlFailure extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'SamlFailure';
  }
}

export const fail = (code: string, status: number, message: string, details?: Record<string, unknown>) =>
  new SamlFailure(code, status, message, details);

const DECRYPTION_FAILED = 'The encrypted assertion could not be decrypted';

/**
 * XML Encryption oracles (Jager & Somorovsky, "How to Break XML Encryption", CCS 2011): if a
 * tampered ciphertext that fails to decrypt (bad key unwrap, CBC padding, GCM tag) answered
 * differently from one that decrypts to junk that does not parse, or from one that parses but
 * then fails the signature check, the difference would leak the plaintext byte by byte. So for
 * a response carrying an EncryptedAssertion, every failure up to and including the signature
 * check is one and the same answer; the precise node-saml message stays in the audit details.
 * (Checks after a verified signature, such as time, audience or InResponseTo, keep their codes.)
 */
const OPAQUE_WHEN_ENCRYPTED = new Set(['decryption_failed', 'invalid_response', 'signature_invalid', 'malformed_response']);
export function forEncryptedResponse(failure: SamlFailure): SamlFailure {
  if (!OPAQUE_WHEN_ENCRYPTED.has(failure.code)) return failure;
  return fail('decryption_failed', 401, 'The encrypted assertion could not be decrypted and verified', { ...failure.details, cause: failure.code });
}

/** node-saml throws plain Errors; their messages are the only way to tell them apart (checked in test/unit/saml-units.test.ts and test/integration/saml-attacks.test.ts). */
export function fromNodeSamlError(err: unknown): SamlFailure {
  if (err instanceof SamlFailure) return err;
  if (err instanceof SamlStatusError) return fail('idp_status_error', 401, 'The identity provider reported an error', { detail: err.message });
  const message = err instanceof Error ? err.message : String(err);
  const rules: [RegExp, string, string][] = [
    // GCM tag failures ("unable to authenticate data") and a plaintext that is not one Assertion are decryption failures too
    [/decrypt|oaep|rsa routines|padding|unable to authenticate data|Invalid EncryptedAssertion content/i, 'decryption_failed', DECRYPTION_FAILED],
    [/signature|signed ?info|digest|reference|canonicali|No decryption key|EncryptedAssertion|Cannot obtain assertion/i, 'signature_invalid', 'The response is not validly signed by the identity provider'],
    // a missing or unparseable NotBefore/NotOnOrAfter/IssueInstant in the signed assertion (node-saml parses them first)
    [/^Error parsing \w+: .* is not a valid date$/, 'invalid_time_condition', 'The assertion carries a missing or invalid validity time'],
    [/not yet valid/i, 'not_yet_valid', 'The assertion is not valid yet'],
    [/expired|too old|No valid subject confirmation/i, 'expired', 'The assertion has expired'],
    [/audience/i, 'audience_mismatch', 'The assertion is meant for another service provider'],
    [/InResponseTo/i, 'in_response_to_invalid', 'The response does not answer a pending sign-in request'],
  ];
  for (const [pattern, code, text] of rules) if (pattern.test(message)) return fail(code, 401, text, { detail: message });
  if (/^Missing SAML assertion$/.test(message)) return fail('assertion_missing', 400, 'The response carries no assertion', { detail: message });
  return fail('invalid_response', 400, 'The SAML response could not be processed', { detail: message });
}

/**
 * Failure details quote attacker-supplied text (parser messages over undecodable bytes, issuer
 * values). Before they go into the audit log (jsonb, which refuses U+0000 and lone surrogates:
 * a deflated payload used to turn a refusal into a 500), control characters become U+FFFD and
 * every string is cut to a readable length.
 */
export function auditSafe(details: Record<string, unknown>): Record<string, unknown> {
  const clean = (v: unknown): unknown => {
    if (typeof v === 'string') {
      const text = v
        .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, '\ufffd')
        .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
      return text.length > 300 ? `${text.slice(0, 300)}…` : text;
    }
    if (Array.isArray(v)) return v.slice(0, 20).map(clean);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clean(x)]));
    return v;
  };
  return clean(details) as Record<string, unknown>;
}
