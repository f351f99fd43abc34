import { ZodError } from 'zod';

/**
 * A failure the caller may see: a stable dotted code (an API contract), an HTTP
 * status and optional structured details. Anything else is a 500 whose message
 * is never shown.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (code: string, message: string, details?: unknown) => new AppError(code, 400, message, details);
export const unauthorized = (message = 'Missing or invalid bearer token') => new AppError('auth.unauthorized', 401, message);
export const forbidden = (code: string, message: string, details?: unknown) => new AppError(code, 403, message, details);
export const notFound = (what: string) => new AppError('not_found', 404, `${what} not found`);
export const conflict = (code: string, message: string, details?: unknown) => new AppError(code, 409, message, details);

/** Precondition in one line: `assertThat(org, notFound('Organization'))`. */
export function assertThat(condition: unknown, error: AppError): asserts condition {
  if (!condition) throw error;
}

/** Zod issues as `details`: one entry per field path. */
export function validationError(err: ZodError, where: string): AppError {
  return new AppError(
    'validation.failed',
    400,
    `Invalid ${where}: ${err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    err.issues.map((i) => ({ path: i.path.join('.'), message: i.message, code: i.code })),
  );
}

type PgLikeError = { code?: unknown; constraint?: unknown; detail?: unknown };

/**
 * Database errors translated in one place. pg and PGlite raise different
 * classes with the same SQLSTATE `code` and `constraint`, so match on those.
 */
export function fromDbError(err: unknown): AppError | undefined {
  if (!err || typeof err !== 'object') return undefined;
  const { code, constraint } = err as PgLikeError;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return undefined;
  const name = typeof constraint === 'string' ? constraint : undefined;
  switch (code) {
    case '23505':
      return conflict(`conflict.${name ?? 'unique'}`, uniqueMessages[name ?? ''] ?? 'A resource with the same unique value already exists');
    case '23001':
    case '23503':
      return conflict(`conflict.${name ?? 'foreign_key'}`, 'The change refers to a resource that does not exist or is still referenced');
    case '23514':
      return badRequest('validation.constraint', `Value rejected by constraint ${name ?? ''}`.trim());
    case '22P02':
    case '22007':
    case '22008':
      return badRequest('validation.invalid_value', 'A value has an invalid format');
    case '22001':
      return badRequest('validation.too_long', 'A value is too long');
    case '40001':
    case '40P01':
      return new AppError('conflict.retry', 409, 'Concurrent update conflict; retry the request');
    default:
      return undefined;
  }
}

const uniqueMessages: Record<string, string> = {
  users_email_lower_key: 'A user with this email already exists',
  organizations_slug_key: 'An organization with this slug already exists',
  roles_org_key_key: 'A role with this key already exists in the organization',
  domains_verified_key: 'This domain is already verified by another organization',
  domains_org_domain_key: 'This domain is already registered for the organization',
  scim_users_user_name_key: 'userName is already in use in this directory',
  scim_users_user_key: 'This person (same email) is already provisioned in this directory under another userName',
  project_grants_user_key: 'This user already has a grant on the project',
  project_grants_team_key: 'This team already has a grant on the project',
  project_grants_role_key: 'This role already has a grant on the project',
  project_grants_builtin_key: 'This role already has a grant on the project',
  team_members_pkey: 'The user is already a member of this team',
  memberships_pkey: 'The user is already a member of this organization',
};

export function isZodError(err: unknown): err is ZodError {
  return err instanceof ZodError;
}
