import type { ErrorRequestHandler, RequestHandler } from 'express';
import { AppError, fromDbError, isZodError, validationError } from '../errors.js';
import type { Logger } from '../logger.js';

export function errorBody(err: AppError) {
  return { error: { code: err.code, message: err.message, ...(err.details === undefined ? {} : { details: err.details }) } };
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new AppError('route.not_found', 404, `No route for ${req.method} ${req.path}`));
};

/** The single place where errors become responses; unknown errors are logged and hidden behind a 500. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err);
    const appError = toAppError(err);
    if (appError.status >= 500) logger.error({ err, reqId: res.locals.requestId, method: req.method, path: req.path }, 'request failed');
    res.status(appError.status).json(errorBody(appError));
  };
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (isZodError(err)) return validationError(err, 'request');
  const db = fromDbError(err);
  if (db) return db;
  const type = (err as { type?: unknown })?.type;
  const status = (err as { status?: unknown })?.status;
  // body-parser failures carry a `type`
  if (type === 'entity.parse.failed') return new AppError('request.malformed_json', 400, 'Request body is not valid JSON');
  if (type === 'entity.too.large') return new AppError('request.too_large', 413, 'Request body is too large');
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') return new AppError('request.unsupported_encoding', 415, 'Unsupported content encoding or charset');
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError('request.invalid', status, (err as Error).message || 'Bad request');
  }
  return new AppError('internal', 500, 'Internal server error');
}
