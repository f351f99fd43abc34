import express from 'express';
import type { AppContext } from './context.js';
import { requestId } from './http/request-id.js';
import { securityHeaders } from './http/security-headers.js';
import { accessLog } from './http/access-log.js';
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
  // No ETag hashed from every response body (a SHA-1 over each list page): SCIM resources carry their
  // version as ETag, set by the SCIM router, and If-None-Match against it still answers 304.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  const metrics = createMetrics({ accessSingleDecisions: ctx.services.access.singleDecisionCounts });

  app.use(requestId);
  app.use(accessLog(logger));
  app.use(securityHeaders);
  app.use(metrics.middleware);
  // Body parsers live in each router: SCIM and SAML have their own content types, limits and error shapes.

  // prefixed routers first: a request skips a prefix that does not match at once, but walks every route of an unprefixed one
  app.use('/scim/v2', scimRouter(ctx));
  app.use('/sso', samlRouter(ctx));
  app.use('/api/v1', adminRouter(ctx));
  app.use(healthRouter(db, metrics.registry));

  app.use(notFoundHandler);
  app.use(errorHandler(logger));
  return app;
}
