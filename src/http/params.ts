import { z } from 'zod';

/** Ids in paths: a malformed id is simply "not found" (404), never a 400 or a database cast error. */
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (v: unknown): v is string => typeof v === 'string' && UUID_RE.test(v);

export const Email = z
  .string()
  .trim()
  .max(320)
  .pipe(z.email({ message: 'must be an email address' }));
