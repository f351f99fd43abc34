import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf, requireService } from '../http/authenticate.js';
import { ListQuery } from '../http/pagination.js';
import { AttributeMappingInput } from '../saml/attributes.js';

const HttpUrl = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).max(2048);
const Role = z.enum(['admin', 'member', 'viewer']);
const Certificates = z.array(z.string().min(1).max(20_000)).min(1).max(10);

const ConnectionFields = {
  name: z.string().trim().min(1).max(256).optional(),
  enabled: z.boolean().optional(),
  idpEntityId: z.string().trim().min(1).max(1024).optional(),
  idpSsoUrl: HttpUrl.optional(),
  idpCertificates: Certificates.optional(),
  idpMetadataXml: z.string().min(1).max(1_000_000).optional(),
  attributeMapping: AttributeMappingInput.optional(),
  allowIdpInitiated: z.boolean().optional(),
  jitEnabled: z.boolean().optional(),
  defaultRole: Role.optional(),
  allowedReturnUrls: z.array(HttpUrl).max(50).optional(),
  defaultReturnUrl: HttpUrl.nullable().optional(),
};
const CreateConnection = z.strictObject(ConnectionFields);
const UpdateConnection = z.strictObject(ConnectionFields).refine((v) => Object.keys(v).length > 0, { message: 'nothing to update' });
const SsoPolicy = z.strictObject({ required: z.boolean() });
const ExchangeCode = z.strictObject({ code: z.string().min(1).max(256) });

/** SAML SSO connections and the org's SSO policy (`sso:manage`); the code exchange for the product's backend. */
export function ssoConnectionsRoutes(router: Router, ctx: AppContext): void {
  const sso = ctx.services.ssoConnections;

  router.get('/orgs/:orgId/sso-connections', async (req, res) => {
    res.json(await sso.list(principalOf(res), req.params.orgId, query(req, ListQuery)));
  });
  router.post('/orgs/:orgId/sso-connections', async (req, res) => {
    res.status(201).json(await sso.create(principalOf(res), req.params.orgId, body(req, CreateConnection)));
  });
  router.get('/orgs/:orgId/sso-connections/:connectionId', async (req, res) => {
    res.json(await sso.get(principalOf(res), req.params.orgId, req.params.connectionId));
  });
  router.patch('/orgs/:orgId/sso-connections/:connectionId', async (req, res) => {
    res.json(await sso.update(principalOf(res), req.params.orgId, req.params.connectionId, body(req, UpdateConnection)));
  });
  router.delete('/orgs/:orgId/sso-connections/:connectionId', async (req, res) => {
    await sso.remove(principalOf(res), req.params.orgId, req.params.connectionId);
    res.status(204).end();
  });

  router.get('/orgs/:orgId/sso-policy', async (req, res) => {
    res.json(await sso.getPolicy(principalOf(res), req.params.orgId));
  });
  router.put('/orgs/:orgId/sso-policy', async (req, res) => {
    res.json(await sso.setPolicy(principalOf(res), req.params.orgId, body(req, SsoPolicy)));
  });

  router.post('/sso/token', async (req, res) => {
    requireService(res);
    const { code } = body(req, ExchangeCode);
    res.json(await sso.exchangeCode(principalOf(res), code));
  });
}
