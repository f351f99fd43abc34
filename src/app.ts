import express from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import type { AppContext } from './context.js';
import { requestId } from './http/request-id.js';
import { createMetrics } from './http/metrics.js';
import { healthRouter } from './http/health.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { adminRouter } from './admin/router.js';
import { scimRouter } from './scim/router.js';
import { samlRouter } from './saml/router.js';

/** Builds the express app; never listens and never reads the environment (tests call it directly). */
export function buildApp(ctx: AppContext): express.Express {
  const { config, db, logger } = ctx;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  const metrics = createMetrics();

  app.use(requestId);
  app.use(
    pinoHttp({
      logger,
      genReqId: (_req, res) => String((res as express.Response).locals.requestId),
      customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/metrics' },
      serializers: {
        req: (req: { method: string; url: string }) => ({ method: req.method, url: req.url }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
    }),
  );
  app.use(helmet());
  app.use(metrics.middleware);
  // Body parsers live in each router: SCIM and SAML have their own content types, limits and error shapes.

  app.use(healthRouter(db, metrics.registry));
  app.use('/api/v1', adminRouter(ctx));
  app.use('/scim/v2', scimRouter(ctx));
  app.use('/sso', samlRouter(ctx));

  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
