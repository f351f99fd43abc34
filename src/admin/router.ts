import express, { Router } from 'express';
import type { AppContext } from '../context.js';
import { authenticate } from '../http/authenticate.js';
import { serviceTokenRoutes } from './service-tokens.js';
import { sessionsRoutes } from './sessions.js';
import { orgsRoutes } from './orgs.js';
import { usersRoutes } from './users.js';
import { membersRoutes } from './members.js';
import { rolesRoutes } from './roles.js';
import { teamsRoutes } from './teams.js';
import { projectsRoutes } from './projects.js';
import { accessRoutes } from './access.js';
import { invitesRoutes } from './invites.js';
import { auditEventsRoutes } from './audit-events.js';
import { mfaRoutes } from './mfa.js';
import { scimDirectoriesRoutes } from './scim-directories.js';
import { domainsRoutes } from './domains.js';
import { ssoConnectionsRoutes } from './sso-connections.js';

/** `/api/v1`: every route behind bearer authentication (service token or user session). */
export function adminRouter(ctx: AppContext): Router {
  const router = Router();
  router.use(authenticate(ctx));
  router.use(express.json({ limit: ctx.config.bodyLimit, type: ['application/json', 'application/*+json'] }));
  // the backend's hot path first: express walks the routes in order (no access path matches another route)
  accessRoutes(router, ctx);
  serviceTokenRoutes(router, ctx);
  sessionsRoutes(router, ctx);
  orgsRoutes(router, ctx);
  usersRoutes(router, ctx);
  membersRoutes(router, ctx);
  rolesRoutes(router, ctx);
  teamsRoutes(router, ctx);
  projectsRoutes(router, ctx);
  invitesRoutes(router, ctx);
  auditEventsRoutes(router, ctx);
  mfaRoutes(router, ctx);
  scimDirectoriesRoutes(router, ctx);
  domainsRoutes(router, ctx);
  ssoConnectionsRoutes(router, ctx);
  return router;
}
