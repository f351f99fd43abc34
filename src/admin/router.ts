import { Router } from 'express';
import type { AppContext } from '../context.js';
import { authenticate } from '../http/authenticate.js';
import { serviceTokenRoutes } from './service-tokens.js';

/** `/api/v1`: every route behind bearer authentication. */
export function adminRouter(ctx: AppContext): Router {
  const router = Router();
  router.use(authenticate(ctx));
  serviceTokenRoutes(router, ctx);
  return router;
}
