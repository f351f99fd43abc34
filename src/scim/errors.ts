import SCIMMY from 'scimmy';
import { AppError, fromDbError } from '../errors.js';

/** scimmy's SCIMError instance type (its typings expose the class only as a value). */
export type ScimErrorInstance = InstanceType<typeof SCIMMY.Types.Error>;

export type ScimType =
  | 'uniqueness'
  | 'tooMany'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidFilter'
  | 'invalidPath'
  | 'invalidValue'
  | 'invalidVers'
  | 'noTarget'
  | 'sensitive';

/** scimmy's typings want a string scimType; at runtime `null` means "none". Keep that cast here only. */
export function scimError(status: number, detail: string, scimType?: ScimType): ScimErrorInstance {
  return new SCIMMY.Types.Error(status, (scimType ?? null) as unknown as string, detail);
}

const isScimError = (err: unknown): err is ScimErrorInstance => err instanceof SCIMMY.Types.Error;

/**
 * Every failure at the SCIM boundary becomes a SCIM error: scimmy's own errors
 * pass through, schema coercion TypeErrors are invalidValue, database
 * constraint errors keep their meaning (23505 → 409 uniqueness), body-parser
 * failures are invalidSyntax/413, and anything else is a 500 (never scimmy's
 * default "404 Resource not found", which would hide an outage).
 */
export function toScimError(err: unknown): ScimErrorInstance {
  if (isScimError(err)) return err;
  if (err instanceof TypeError) return scimError(400, err.message, 'invalidValue');
  const type = (err as { type?: unknown })?.type;
  if (type === 'entity.parse.failed') return scimError(400, 'Request body is not valid JSON', 'invalidSyntax');
  if (type === 'entity.too.large') return scimError(413, 'Request body is too large');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return scimError(400, 'Unsupported body encoding', 'invalidSyntax');
  const app = err instanceof AppError ? err : fromDbError(err);
  if (app) {
    if (app.status === 409 && app.code.startsWith('conflict.') && app.code !== 'conflict.retry') {
      return scimError(409, app.message, 'uniqueness');
    }
    if (app.status === 400) return scimError(400, app.message, 'invalidValue');
    if ([401, 403, 404, 409, 412, 413].includes(app.status)) return scimError(app.status, app.message);
  }
  return scimError(500, 'Internal server error');
}

/** The SCIM error message body (`status` is a string, as RFC 7644 §3.12 shows). */
export function scimErrorBody(err: ScimErrorInstance) {
  try {
    return new SCIMMY.Messages.Error(err);
  } catch {
    // a status/scimType pairing scimmy refuses: send it without scimType rather than failing
    return new SCIMMY.Messages.Error(scimError(err.status, err.message));
  }
}
