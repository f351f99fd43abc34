import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf, requireUser } from '../http/authenticate.js';
import { Email } from '../http/params.js';
import { ListQuery } from '../http/pagination.js';
import { BUILTIN_ROLES } from '../authz/permissions.js';
import { INVITE_STATUSES } from '../db/queries/invites.js';
import { MAX_INVITE_EXPIRY_HOURS } from '../services/invites.js';
import { forbidden } from '../errors.js';

const RoleKey = z.string().regex(/^[a-z][a-z0-9_.:-]{0,63}$/, 'must be a custom role key');

const CreateInvite = z.strictObject({
  email: Email,
  role: z.enum(BUILTIN_ROLES),
  roles: z.array(RoleKey).max(50).optional(),
  expiresInHours: z.number().int().min(1).max(MAX_INVITE_EXPIRY_HOURS).optional(),
});

const ListInvites = z.strictObject({
  ...ListQuery.shape,
  status: z.enum(INVITE_STATUSES).optional(),
  email: Email.optional(),
});

const AcceptInvite = z.strictObject({ token: z.string().min(1).max(512) });

/** Invites: created and revoked by org admins, accepted by the invited user with their own session. */
export function invitesRoutes(router: Router, ctx: AppContext): void {
  const { authz, invites } = ctx.services;

  // Listing is open to whoever may read members or send invites.
  async function readAccess(req: Request, res: Response) {
    const access = await authz.resolveOrg(principalOf(res), String(req.params.orgId));
    if (!access.permissions.has('members:read') && !access.permissions.has('members:invite')) {
      throw forbidden('forbidden', 'Missing permission members:read', { permission: 'members:read' });
    }
    return access;
  }

  router.post('/orgs/:orgId/invites', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'members:invite');
    const input = body(req, CreateInvite);
    res.status(201).json(await invites.create(access, input));
  });

  router.get('/orgs/:orgId/invites', async (req, res) => {
    const access = await readAccess(req, res);
    res.json(await invites.list(access, query(req, ListInvites)));
  });

  router.get('/orgs/:orgId/invites/:inviteId', async (req, res) => {
    const access = await readAccess(req, res);
    res.json(await invites.get(access, req.params.inviteId));
  });

  router.delete('/orgs/:orgId/invites/:inviteId', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'members:invite');
    await invites.revoke(access, req.params.inviteId);
    res.status(204).end();
  });

  router.post('/invites/accept', async (req, res) => {
    const principal = requireUser(res);
    const input = body(req, AcceptInvite);
    res.json(await invites.accept(principal, input.token));
  });
}
