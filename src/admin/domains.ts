import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf } from '../http/authenticate.js';
import { ListQuery } from '../http/pagination.js';

const AddDomain = z.strictObject({ domain: z.string().min(1).max(300) });
const VerifyDomain = z.strictObject({ method: z.enum(['dns', 'manual']) });
const UpdateDomain = z
  .strictObject({ captureEnabled: z.boolean().optional(), captureRole: z.enum(['admin', 'member', 'viewer']).optional() })
  .refine((v) => Object.keys(v).length > 0, { message: 'nothing to update' });

/** Verified email domains (DNS TXT) and domain capture; needs `domains:manage`. */
export function domainsRoutes(router: Router, ctx: AppContext): void {
  const domains = ctx.services.domains;

  router.get('/orgs/:orgId/domains', async (req, res) => {
    res.json(await domains.list(principalOf(res), req.params.orgId, query(req, ListQuery)));
  });
  router.post('/orgs/:orgId/domains', async (req, res) => {
    res.status(201).json(await domains.add(principalOf(res), req.params.orgId, body(req, AddDomain)));
  });
  router.get('/orgs/:orgId/domains/:domain', async (req, res) => {
    res.json(await domains.get(principalOf(res), req.params.orgId, req.params.domain));
  });
  router.post('/orgs/:orgId/domains/:domain/verify', async (req, res) => {
    res.json(await domains.verify(principalOf(res), req.params.orgId, req.params.domain, body(req, VerifyDomain)));
  });
  router.patch('/orgs/:orgId/domains/:domain', async (req, res) => {
    res.json(await domains.update(principalOf(res), req.params.orgId, req.params.domain, body(req, UpdateDomain)));
  });
  router.delete('/orgs/:orgId/domains/:domain', async (req, res) => {
    await domains.remove(principalOf(res), req.params.orgId, req.params.domain);
    res.status(204).end();
  });
}
