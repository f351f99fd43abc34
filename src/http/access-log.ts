import type { RequestHandler } from 'express';
import type { Logger } from '../logger.js';

const QUIET_PATHS = new Set(['/healthz', '/metrics']);

/**
 * One line per finished request (info; warn for 4xx; error for 5xx), with the
 * request id, method, path (never the query: SAML and SCIM put data there) and
 * timing. Nothing is allocated per request when the level would drop the line.
 */
export function accessLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    if (QUIET_PATHS.has(req.path) || !logger.isLevelEnabled('info') && !logger.isLevelEnabled('warn')) return next();
    const started = process.hrtime.bigint();
    res.once('finish', () => {
      const status = res.statusCode;
      const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      logger[level](
        {
          reqId: res.locals.requestId,
          req: { method: req.method, path: req.originalUrl.split('?')[0] },
          res: { statusCode: status },
          responseTime: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'request completed',
      );
    });
    next();
  };
}
