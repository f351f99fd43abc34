import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf } from '../http/authenticate.js';
import { ListQuery } from '../http/pagination.js';
import { UUID_RE, isUuid } from '../http/params.js';
import { BUILTIN_ROLES } from '../authz/permissions.js';
import { notFound } from '../errors.js';

const BuiltinRole = z.enum(BUILTIN_ROLES);
const RoleKeys = z.array(z.string().min(1).max(64)).max(100);
const MemberStatus = z.enum(['active', 'suspended']);

const AddMember = z.strictObject({
  userId: z.string().regex(UUID_RE, 'must be a UUID'),
  role: BuiltinRole,
  roles: RoleKeys.optional(),
});
const UpdateMember = z
  .strictObject({ role: BuiltinRole.optional(), roles: RoleKeys.optional(), status: MemberStatus.optional() })
  .refine((o) => Object.keys(o).length > 0, { message: 'give at least one of role, roles, status' });
const ListMembers = z.strictObject(ListQuery.shape);

/** Members of an org: `members:read` to list, `members:manage` to change; owners also need `ownership:manage`. */
export function membersRoutes(router: Router, ctx: AppContext): void {
  const { members, authz } = ctx.services;
  const memberId = (id: string) => {
    if (!isUuid(id)) throw notFound('Member');
    return id;
  };

  router.get('/orgs/:orgId/members', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'members:read');
    const page = query(req, ListMembers);
    res.json(await members.list(access.orgId, page));
  });

  router.post('/orgs/:orgId/members', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'members:manage');
    const input = body(req, AddMember);
    res.status(201).json(await members.add(access, input));
  });

  router.get('/orgs/:orgId/members/:userId', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'members:read');
    res.json(await members.get(access.orgId, memberId(req.params.userId)));
  });

  router.patch('/orgs/:orgId/members/:userId', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'members:manage');
    const userId = memberId(req.params.userId);
    const patch = body(req, UpdateMember);
    res.json(await members.update(access, userId, patch));
  });

  router.delete('/orgs/:orgId/members/:userId', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'members:manage');
    await members.remove(access, memberId(req.params.userId));
    res.status(204).end();
  });
}
