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

/** node-saml throws plain Errors; their messages are the only way to tell them apart (checked in test/unit/saml-failures.test.ts). */
export function fromNodeSamlError(err: unknown): SamlFailure {
  if (err instanceof SamlFailure) return err;
  if (err instanceof SamlStatusError) return fail('idp_status_error', 401, 'The identity provider reported an error', { detail: err.message });
  const message = err instanceof Error ? err.message : String(err);
  const rules: [RegExp, string, string][] = [
    [/decrypt|oaep|rsa routines|padding/i, 'decryption_failed', 'The encrypted assertion could not be decrypted'],
    [/signature|signed ?info|digest|reference|canonicali|No decryption key|EncryptedAssertion|Cannot obtain assertion/i, 'signature_invalid', 'The response is not validly signed by the identity provider'],
    [/not yet valid/i, 'not_yet_valid', 'The assertion is not valid yet'],
    [/expired|too old|No valid subject confirmation/i, 'expired', 'The assertion has expired'],
    [/audience/i, 'audience_mismatch', 'The assertion is meant for another service provider'],
    [/InResponseTo/i, 'in_response_to_invalid', 'The response does not answer a pending sign-in request'],
  ];
  for (const [pattern, code, text] of rules) if (pattern.test(message)) return fail(code, 401, text, { detail: message });
  return fail('invalid_response', 400, 'The SAML response could not be processed', { detail: message });
}
