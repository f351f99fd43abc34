import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { query } from '../http/guard.js';
import { principalOf } from '../http/authenticate.js';
import { ListQuery } from '../http/pagination.js';

const ACTOR_TYPES = ['service_token', 'user', 'scim_directory', 'sso_connection', 'system'] as const;

// An ISO 8601 time with an offset (`2026-01-31T12:00:00Z`, `...+02:00`) or a date (`2026-01-31`, midnight UTC).
const IsoTime = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()], { error: 'must be an ISO 8601 date or date-time with offset' })
  .transform((v) => new Date(v))
  .pipe(z.date({ error: 'must be a real calendar time' }));

const ListAuditEvents = z
  .strictObject({
    ...ListQuery.shape,
    action: z
      .string()
      .regex(/^[a-z_]+(\.[a-z_]+)*(\.\*|\*)?$/, 'must be an action (`member.added`) or a prefix ending in `*` (`member.*`)')
      .max(128)
      .optional(),
    actorType: z.enum(ACTOR_TYPES).optional(),
    actorId: z.string().min(1).max(256).optional(),
    targetType: z.string().min(1).max(64).optional(),
    targetId: z.string().min(1).max(256).optional(),
    since: IsoTime.optional(),
    until: IsoTime.optional(),
  })
  .refine((q) => !q.since || !q.until || q.since < q.until, { path: ['until'], message: 'must be later than since' });

/** The org's audit log (read-only); needs `audit:read`. */
export function auditEventsRoutes(router: Router, ctx: AppContext): void {
  router.get('/orgs/:orgId/audit-events', async (req, res) => {
    const access = await ctx.services.authz.requireOrg(principalOf(res), req.params.orgId, 'audit:read');
    res.json(await ctx.services.auditEvents.list(access, query(req, ListAuditEvents)));
  });
}
