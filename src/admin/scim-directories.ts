import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf } from '../http/authenticate.js';
import { ListQuery } from '../http/pagination.js';

const Role = z.enum(['admin', 'member', 'viewer']);
const Mapping = z.strictObject({
  /** a SCIM group's displayName (case-insensitive) or externalId */
  group: z.string().trim().min(1).max(512),
  /** a built-in role below owner, or a custom role key of the org */
  role: z.string().trim().min(1).max(64),
});
const CreateDirectory = z.strictObject({
  name: z.string().trim().min(1).max(256),
  defaultRole: Role.optional(),
  groupRoleMappings: z.array(Mapping).max(500).optional(),
});
const UpdateDirectory = z
  .strictObject({
    name: z.string().trim().min(1).max(256).optional(),
    defaultRole: Role.optional(),
    groupRoleMappings: z.array(Mapping).max(500).optional(),
    enabled: z.boolean().optional(),
  })
  .refine((v) => Object.keys(v).length > 0, { message: 'nothing to update' });

/** `/orgs/:orgId/scim-directories`: SCIM directories and their bearer tokens (permission scim:manage). */
export function scimDirectoriesRoutes(router: Router, ctx: AppContext): void {
  const { authz, scimDirectories } = ctx.services;
  const base = '/orgs/:orgId/scim-directories';

  router.post(base, async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'scim:manage');
    const input = body(req, CreateDirectory);
    res.status(201).json(await scimDirectories.create(access, input));
  });

  router.get(base, async (req, res) => {
    await authz.requireOrg(principalOf(res), req.params.orgId, 'scim:manage');
    res.json(await scimDirectories.list(req.params.orgId, query(req, ListQuery)));
  });

  router.get(`${base}/:directoryId`, async (req, res) => {
    await authz.requireOrg(principalOf(res), req.params.orgId, 'scim:manage');
    res.json(await scimDirectories.get(req.params.orgId, req.params.directoryId));
  });

  router.patch(`${base}/:directoryId`, async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'scim:manage');
    const patch = body(req, UpdateDirectory);
    res.json(await scimDirectories.update(access, req.params.directoryId, patch));
  });

  router.delete(`${base}/:directoryId`, async (req, res) => {
    const principal = principalOf(res);
    await authz.requireOrg(principal, req.params.orgId, 'scim:manage');
    await scimDirectories.remove(principal, req.params.orgId, req.params.directoryId);
    res.status(204).end();
  });

  router.post(`${base}/:directoryId/rotate-token`, async (req, res) => {
    const principal = principalOf(res);
    await authz.requireOrg(principal, req.params.orgId, 'scim:manage');
    res.json(await scimDirectories.rotateToken(principal, req.params.orgId, req.params.directoryId));
  });
}
