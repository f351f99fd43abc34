import { z } from 'zod';
import { badRequest } from '../errors.js';

/**
 * Cursor pagination for every list: `?after=<cursor>&limit=<n>` in, `{ data, next }` out.
 * A cursor is the sort key of the last row, base64url JSON: opaque to callers, stable
 * under inserts (no OFFSET).
 */
export const ListQuery = z.object({
  after: z.string().min(1).max(1024).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
export type ListQuery = z.infer<typeof ListQuery>;

export function encodeCursor(key: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(key), 'utf8').toString('base64url');
}

/** Decodes a cursor made by encodeCursor with `arity` keys; anything else is a 400. */
export function decodeCursor(cursor: string, arity: number): (string | number)[] {
  try {
    const key: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(key) && key.length === arity && key.every((k) => typeof k === 'string' || typeof k === 'number')) {
      return key;
    }
  } catch {
    /* fall through */
  }
  throw badRequest('validation.invalid_cursor', 'The `after` cursor is not valid');
}

/** `rows` were fetched with `limit + 1`: the extra row only tells that a next page exists. */
export function toPage<T, O = T>(
  rows: T[],
  limit: number,
  cursorOf: (row: T) => readonly (string | number)[],
  present: (row: T) => O = (r) => r as unknown as O,
): { data: O[]; next: string | null } {
  const pageRows = rows.slice(0, limit);
  const last = pageRows[pageRows.length - 1];
  return { data: pageRows.map(present), next: rows.length > limit && last ? encodeCursor(cursorOf(last)) : null };
}
