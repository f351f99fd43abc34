import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf } from '../http/authenticate.js';
import { ListQuery } from '../http/pagination.js';

const Name = z.string().trim().min(1).max(256);
const Description = z.string().trim().max(2000).nullable();
const CreateTeam = z.strictObject({ name: Name, description: Description.optional() });
const UpdateTeam = z
  .strictObject({ name: Name.optional(), description: Description.optional(), roles: z.array(z.string().min(1).max(64)).max(100).optional() })
  .refine((v) => Object.keys(v).length > 0, { message: 'at least one of name, description, roles is required' });
const AddTeamMember = z.strictObject({ userId: z.string().min(1) });

/** Teams of an org and their members. Teams synced by SCIM are read-only here (409 team.managed_by_scim). */
export function teamsRoutes(router: Router, ctx: AppContext): void {
  const { authz, teams } = ctx.services;
  const base = '/orgs/:orgId/teams';

  router.get(base, async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'teams:read');
    res.json(await teams.list(access.orgId, query(req, ListQuery)));
  });

  router.post(base, async (req, res) => {
    const principal = principalOf(res);
    const access = await authz.requireOrg(principal, req.params.orgId, 'teams:manage');
    const input = body(req, CreateTeam);
    res.status(201).json(await teams.create(principal, access.orgId, input));
  });

  router.get(`${base}/:teamId`, async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'teams:read');
    res.json(await teams.get(access.orgId, req.params.teamId));
  });

  router.patch(`${base}/:teamId`, async (req, res) => {
    const principal = principalOf(res);
    const access = await authz.requireOrg(principal, req.params.orgId, 'teams:manage');
    const patch = body(req, UpdateTeam);
    res.json(await teams.update(access, req.params.teamId, patch));
  });

  router.delete(`${base}/:teamId`, async (req, res) => {
    const principal = principalOf(res);
    const access = await authz.requireOrg(principal, req.params.orgId, 'teams:manage');
    await teams.remove(principal, access.orgId, req.params.teamId);
    res.status(204).end();
  });

  router.get(`${base}/:teamId/members`, async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'teams:read');
    res.json(await teams.listMembers(access.orgId, req.params.teamId, query(req, ListQuery)));
  });

  router.post(`${base}/:teamId/members`, async (req, res) => {
    const principal = principalOf(res);
    const access = await authz.requireOrg(principal, req.params.orgId, 'teams:manage');
    const input = body(req, AddTeamMember);
    res.status(201).json(await teams.addMember(access, req.params.teamId, input.userId));
  });

  router.delete(`${base}/:teamId/members/:userId`, async (req, res) => {
    const principal = principalOf(res);
    const access = await authz.requireOrg(principal, req.params.orgId, 'teams:manage');
    await teams.removeMember(principal, access.orgId, req.params.teamId, req.params.userId);
    res.status(204).end();
  });
}
