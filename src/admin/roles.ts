import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf } from '../http/authenticate.js';
import { ListQuery } from '../http/pagination.js';
import { isBuiltinRole } from '../authz/permissions.js';
import { permissionCatalogue } from '../services/roles.js';

// Mirrors the roles.key check constraint; built-in role names are reserved.
const RoleKey = z
  .string()
  .regex(/^[a-z][a-z0-9_.:-]{0,63}$/, 'must be 1-64 characters: lowercase letters, digits, _ . : - and start with a letter')
  .refine((k) => !isBuiltinRole(k), { message: 'is a built-in role name' });
const RoleName = z.string().trim().min(1).max(256);
const Description = z.string().trim().max(1024).nullable();
const Permissions = z.array(z.string().min(1).max(64)).max(100);

const CreateRole = z.strictObject({ key: RoleKey, name: RoleName, permissions: Permissions, description: Description.optional() });
const UpdateRole = z
  .strictObject({ name: RoleName.optional(), permissions: Permissions.optional(), description: Description.optional() })
  .refine((o) => Object.keys(o).length > 0, { message: 'give at least one of name, permissions, description' });
const ListRoles = z.strictObject(ListQuery.shape);
const DeleteRole = z.strictObject({ force: z.enum(['true', 'false']).optional() });

/** Custom roles of an org, named by `key`; and the permission catalogue they draw from. */
export function rolesRoutes(router: Router, ctx: AppContext): void {
  const { roles, authz } = ctx.services;

  router.get('/permissions', (_req, res) => {
    principalOf(res);
    res.json(permissionCatalogue());
  });

  router.get('/orgs/:orgId/roles', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'roles:read');
    const page = query(req, ListRoles);
    res.json(await roles.list(access.orgId, page));
  });

  router.post('/orgs/:orgId/roles', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'roles:manage');
    const input = body(req, CreateRole);
    res.status(201).json(await roles.create(access, input));
  });

  router.get('/orgs/:orgId/roles/:roleKey', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'roles:read');
    res.json(await roles.get(access.orgId, req.params.roleKey));
  });

  router.patch('/orgs/:orgId/roles/:roleKey', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'roles:manage');
    const patch = body(req, UpdateRole);
    res.json(await roles.update(access, req.params.roleKey, patch));
  });

  router.delete('/orgs/:orgId/roles/:roleKey', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'roles:manage');
    const { force } = query(req, DeleteRole);
    await roles.remove(access, req.params.roleKey, force === 'true');
    res.status(204).end();
  });
}
