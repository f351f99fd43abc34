import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf } from '../http/authenticate.js';
import { ListQuery } from '../http/pagination.js';
import { UUID_RE } from '../http/params.js';

const Name = z.string().trim().min(1).max(256);
const Description = z.string().trim().max(2000).nullable();
const Visibility = z.enum(['private', 'internal', 'public']);
const Level = z.enum(['read', 'write', 'admin']);

const CreateProject = z.strictObject({ name: Name, visibility: Visibility, description: Description.optional() });
const UpdateProject = z
  .strictObject({ name: Name.optional(), visibility: Visibility.optional(), description: Description.optional() })
  .refine((v) => Object.keys(v).length > 0, { message: 'at least one of name, visibility, description is required' });
const DeleteProjectQuery = z.strictObject({ force: z.enum(['true', 'false']).optional() });
const CreateGrant = z.strictObject({
  subject: z.strictObject({ type: z.enum(['user', 'team', 'role']), id: z.string().trim().min(1).max(64) }),
  level: Level,
});
const UpdateGrant = z.strictObject({ level: Level });
const UserProjectsQuery = ListQuery.extend({ sessionId: z.string().regex(UUID_RE, 'must be a UUID').optional() });

/** Projects of an org, their access grants, and the projects one user can reach. */
export function projectsRoutes(router: Router, ctx: AppContext): void {
  const { projects } = ctx.services;
  const base = '/orgs/:orgId/projects';

  router.get(base, async (req, res) => {
    res.json(await projects.list(principalOf(res), req.params.orgId, query(req, ListQuery)));
  });

  router.post(base, async (req, res) => {
    const principal = principalOf(res);
    const org = await ctx.services.authz.requireOrg(principal, req.params.orgId, 'projects:create');
    res.status(201).json(await projects.create(principal, org, body(req, CreateProject)));
  });

  router.get(`${base}/:projectId`, async (req, res) => {
    res.json(await projects.get(principalOf(res), req.params.orgId, req.params.projectId));
  });

  router.patch(`${base}/:projectId`, async (req, res) => {
    const principal = principalOf(res);
    const scope = await projects.requireProjectAdmin(principal, req.params.orgId, req.params.projectId);
    res.json(await projects.update(principal, scope, body(req, UpdateProject)));
  });

  router.delete(`${base}/:projectId`, async (req, res) => {
    const principal = principalOf(res);
    const scope = await projects.requireProjectAdmin(principal, req.params.orgId, req.params.projectId);
    const { force } = query(req, DeleteProjectQuery);
    await projects.remove(principal, scope, force === 'true');
    res.status(204).end();
  });

  router.get(`${base}/:projectId/grants`, async (req, res) => {
    const scope = await projects.requireProjectAdmin(principalOf(res), req.params.orgId, req.params.projectId);
    res.json(await projects.listGrants(scope, query(req, ListQuery)));
  });

  router.post(`${base}/:projectId/grants`, async (req, res) => {
    const principal = principalOf(res);
    const scope = await projects.requireProjectAdmin(principal, req.params.orgId, req.params.projectId);
    res.status(201).json(await projects.createGrant(principal, scope, body(req, CreateGrant)));
  });

  router.patch(`${base}/:projectId/grants/:grantId`, async (req, res) => {
    const principal = principalOf(res);
    const scope = await projects.requireProjectAdmin(principal, req.params.orgId, req.params.projectId);
    const { level } = body(req, UpdateGrant);
    res.json(await projects.updateGrant(principal, scope, req.params.grantId, level));
  });

  router.delete(`${base}/:projectId/grants/:grantId`, async (req, res) => {
    const principal = principalOf(res);
    const scope = await projects.requireProjectAdmin(principal, req.params.orgId, req.params.projectId);
    await projects.removeGrant(principal, scope, req.params.grantId);
    res.status(204).end();
  });

  router.get('/orgs/:orgId/users/:userId/projects', async (req, res) => {
    const { sessionId, ...page } = query(req, UserProjectsQuery);
    res.json(await projects.forUser(principalOf(res), req.params.orgId, req.params.userId, sessionId ?? null, page));
  });
}
