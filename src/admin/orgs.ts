import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf } from '../http/authenticate.js';
import { ListQuery } from '../http/pagination.js';
import { UUID_RE } from '../http/params.js';

// Mirrors the organizations.slug check constraint, so a bad slug is a 400 with a field path.
const Slug = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be 1-63 lowercase letters, digits or hyphens, starting with a letter or digit')
  .refine((s) => !s.endsWith('-'), { message: 'must not end with a hyphen' });
const OrgName = z.string().trim().min(1).max(256);
const Visibility = z.enum(['private', 'public']);

const CreateOrg = z.strictObject({
  name: OrgName,
  slug: Slug,
  visibility: Visibility.optional(),
  ownerUserId: z.string().regex(UUID_RE, 'must be a UUID').optional(),
});
const UpdateOrg = z
  .strictObject({ name: OrgName.optional(), slug: Slug.optional(), visibility: Visibility.optional() })
  .refine((o) => Object.keys(o).length > 0, { message: 'give at least one of name, slug, visibility' });
const ListOrgs = z.strictObject(ListQuery.shape);

/** Organizations: POST/GET /orgs, GET/PATCH/DELETE /orgs/:orgId. */
export function orgsRoutes(router: Router, ctx: AppContext): void {
  const { orgs, authz } = ctx.services;

  router.post('/orgs', async (req, res) => {
    const input = body(req, CreateOrg);
    res.status(201).json(await orgs.create(principalOf(res), input));
  });

  router.get('/orgs', async (req, res) => {
    const page = query(req, ListOrgs);
    res.json(await orgs.list(principalOf(res), page));
  });

  router.get('/orgs/:orgId', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'org:read');
    res.json(await orgs.get(access.orgId));
  });

  router.patch('/orgs/:orgId', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'org:update');
    const patch = body(req, UpdateOrg);
    res.json(await orgs.update(access.principal, access.orgId, patch));
  });

  router.delete('/orgs/:orgId', async (req, res) => {
    const access = await authz.requireOrg(principalOf(res), req.params.orgId, 'org:delete');
    await orgs.remove(access.principal, access.orgId);
    res.status(204).end();
  });
}
