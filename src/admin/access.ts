import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf, requireService } from '../http/authenticate.js';
import { isUuid, UUID_RE } from '../http/params.js';
import { notFound } from '../errors.js';

const Uuid = z.string().regex(UUID_RE, 'must be a UUID');
const AccessQuery = z.strictObject({ sessionId: Uuid.optional() });
export const MAX_ACCESS_CHECKS = 1000;
const AccessCheck = z.strictObject({
  checks: z
    .array(z.strictObject({ userId: Uuid, projectId: Uuid, sessionId: Uuid.optional() }))
    .min(1)
    .max(MAX_ACCESS_CHECKS),
});

/** "What may user U do on project P, and why": one decision, or up to 1000 in one query. */
export function accessRoutes(router: Router, ctx: AppContext): void {
  const { access, authz } = ctx.services;

  router.get('/orgs/:orgId/projects/:projectId/access/:userId', async (req, res) => {
    const principal = principalOf(res);
    const { orgId, projectId, userId } = req.params;
    const { sessionId } = query(req, AccessQuery);
    // A user may always ask about itself; asking about others needs projects:read.
    if (principal.kind === 'user' && principal.userId !== userId) await authz.requireOrg(principal, orgId, 'projects:read');
    if (!isUuid(orgId) || !isUuid(projectId) || !isUuid(userId)) throw notFound('Project');
    const decision = await access.decide({ userId, projectId, sessionId: sessionId ?? null });
    if (!decision || decision.orgId !== orgId) throw notFound('Project');
    res.json({ level: decision.level, reasons: decision.reasons });
  });

  router.post('/access/check', async (req, res) => {
    requireService(res);
    const { checks } = body(req, AccessCheck);
    const results = await access.decideMany(checks);
    res.json({ results: results.map(({ userId, projectId, level, reasons }) => ({ userId, projectId, level, reasons })) });
  });
}
