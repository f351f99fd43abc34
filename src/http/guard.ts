import type { Request } from 'express';
import type { z } from 'zod';
import { validationError } from '../errors.js';

/** Parses one part of the request with a zod schema; a failure is a 400 with one detail per field path. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'params'): z.infer<S> {
  const result = schema.safeParse(value ?? (where === 'body' ? undefined : {}));
  if (!result.success) throw validationError(result.error, where);
  return result.data;
}

export const body = <S extends z.ZodType>(req: Request, schema: S) => parse(schema, req.body, 'body');
export const query = <S extends z.ZodType>(req: Request, schema: S) => parse(schema, req.query, 'query');
export const params = <S extends z.ZodType>(req: Request, schema: S) => parse(schema, req.params, 'params');
