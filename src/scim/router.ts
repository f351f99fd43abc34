import express, { Router, type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import SCIMMY from 'scimmy';
import type { AppContext } from '../context.js';
import { parseBearer } from '../auth/tokens.js';
import { createScimUserQueries } from '../db/queries/scim-users.js';
import { createScimGroupQueries } from '../db/queries/scim-groups.js';
import type { ScimDirectoryRow } from '../db/queries/scim-directories.js';
import { scimError, scimErrorBody, toScimError } from './errors.js';
import { declareScimResources } from './schema.js';
import { attributeFilter, etagOf, listParams, type ScimContext } from './resource-kit.js';
import { createUserHandlers } from './users.js';
import { createGroupHandlers } from './groups.js';

/** Bodies larger than the admin API's: a PUT of a 10,000-member group is ~0.6 MB. */
export const SCIM_BODY_LIMIT = '5mb';
const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';

/**
 * SCIM 2.0 at `/scim/v2/:directoryId/`. A thin express layer over scimmy's
 * schemas and messages instead of scimmy-routers: that router keeps the
 * basepath (meta.location) in global state shared by all directories, casts
 * paging parameters in a way Express 5 ignores, and cannot run group member
 * changes as set-based SQL. Here every request builds its own context.
 */
export function scimRouter(ctx: AppContext): Router {
  declareScimResources();
  const users = createScimUserQueries(ctx.db);
  const groups = createScimGroupQueries(ctx.db);
  const router = Router();
  const dirRouter = Router({ mergeParams: true });

  router.use('/:directoryId', authenticateDirectory(ctx), dirRouter);

  dirRouter.use(
    express.json({
      limit: SCIM_BODY_LIMIT,
      type: ['application/scim+json', 'application/json'],
      strict: true,
    }),
  );

  const contextOf = (req: Request, res: Response): ScimContext => {
    const dir = res.locals.scimDirectory as ScimDirectoryRow;
    return {
      db: ctx.db,
      dir,
      queries: { users, groups },
      basepath: `${ctx.config.publicUrl}/scim/v2/${dir.id}`,
      requestId: res.locals.requestId as string,
    };
  };
  const send = (res: Response, status: number, body?: unknown, version?: number) => {
    if (version !== undefined) res.setHeader('ETag', etagOf(version));
    if (body === undefined) return res.status(status).end();
    res.status(status).type(SCIM_CONTENT_TYPE).send(JSON.stringify(body));
  };
  const query = (req: Request) => req.query as Record<string, unknown>;
  const requireBody = (req: Request) => {
    if (req.body === undefined) {
      throw scimError(400, 'Missing request body (Content-Type must be application/scim+json or application/json)', 'invalidSyntax');
    }
    return req.body as unknown;
  };

  // ---------- Users ----------
  dirRouter.get('/Users', async (req, res) => {
    send(res, 200, await createUserHandlers(contextOf(req, res)).list(listParams('User', query(req))));
  });
  dirRouter.get('/Users/:id', async (req, res) => {
    const { row, body } = await createUserHandlers(contextOf(req, res)).get(req.params.id, attributeFilter('User', query(req)));
    send(res, 200, body, row.version);
  });
  dirRouter.post('/Users', async (req, res) => {
    const { row, body } = await createUserHandlers(contextOf(req, res)).create(requireBody(req), attributeFilter('User', query(req)));
    res.setHeader('Location', (body.meta as { location: string }).location);
    send(res, 201, body, row.version);
  });
  dirRouter.put('/Users/:id', async (req, res) => {
    const handlers = createUserHandlers(contextOf(req, res));
    const { row, body } = await handlers.replace(req.params.id, requireBody(req), req.get('if-match'), attributeFilter('User', query(req)));
    send(res, 200, body, row.version);
  });
  dirRouter.patch('/Users/:id', async (req, res) => {
    const handlers = createUserHandlers(contextOf(req, res));
    const { row, body } = await handlers.patch(req.params.id, requireBody(req), req.get('if-match'), attributeFilter('User', query(req)));
    send(res, 200, body, row.version);
  });
  dirRouter.delete('/Users/:id', async (req, res) => {
    await createUserHandlers(contextOf(req, res)).remove(req.params.id, req.get('if-match'));
    send(res, 204);
  });

  // ---------- Groups ----------
  dirRouter.get('/Groups', async (req, res) => {
    send(res, 200, await createGroupHandlers(contextOf(req, res)).list(listParams('Group', query(req)), query(req)));
  });
  dirRouter.get('/Groups/:id', async (req, res) => {
    const { row, body } = await createGroupHandlers(contextOf(req, res)).get(req.params.id, attributeFilter('Group', query(req)), query(req));
    send(res, 200, body, row.version);
  });
  dirRouter.post('/Groups', async (req, res) => {
    const { row, body } = await createGroupHandlers(contextOf(req, res)).create(requireBody(req), attributeFilter('Group', query(req)));
    res.setHeader('Location', (body.meta as { location: string }).location);
    send(res, 201, body, row.version);
  });
  dirRouter.put('/Groups/:id', async (req, res) => {
    const handlers = createGroupHandlers(contextOf(req, res));
    const { row, body } = await handlers.replace(req.params.id, requireBody(req), req.get('if-match'), attributeFilter('Group', query(req)));
    send(res, 200, body, row.version);
  });
  /** 204 as Okta and Entra expect: a 10,000-member group is not sent back on every membership change. */
  dirRouter.patch('/Groups/:id', async (req, res) => {
    const row = await createGroupHandlers(contextOf(req, res)).patch(req.params.id, requireBody(req), req.get('if-match'));
    send(res, 204, undefined, row.version);
  });
  dirRouter.delete('/Groups/:id', async (req, res) => {
    await createGroupHandlers(contextOf(req, res)).remove(req.params.id, req.get('if-match'));
    send(res, 204);
  });

  // ---------- discovery (Entra's connection test probes these and the base URL; after the resources, which carry the load) ----------
  const serviceProviderConfig = (req: Request, res: Response) =>
    new SCIMMY.Schemas.ServiceProviderConfig(SCIMMY.Config.get(), `${contextOf(req, res).basepath}/ServiceProviderConfig`);

  dirRouter.get('/', (req, res) => send(res, 200, serviceProviderConfig(req, res)));
  dirRouter.get('/ServiceProviderConfig', (req, res) => send(res, 200, serviceProviderConfig(req, res)));

  const resourceTypes = (basepath: string) =>
    Object.entries(SCIMMY.Resources.declared()).map(
      ([, R]) => new SCIMMY.Schemas.ResourceType((R as typeof SCIMMY.Resources.User).describe() as never, `${basepath}/ResourceTypes`),
    );
  dirRouter.get('/ResourceTypes', (req, res) => {
    const list = resourceTypes(contextOf(req, res).basepath);
    send(res, 200, new SCIMMY.Messages.ListResponse(list as never[], { count: list.length } as never));
  });
  dirRouter.get('/ResourceTypes/:id', (req, res) => {
    const found = resourceTypes(contextOf(req, res).basepath).find((r) => (r as unknown as { id: string }).id === req.params.id);
    if (!found) throw scimError(404, `ResourceType ${req.params.id} not found`);
    send(res, 200, found);
  });

  const schemas = (basepath: string) =>
    (SCIMMY.Schemas.declared() as unknown as { describe(b: string): { id: string } }[]).map((S) => S.describe(`${basepath}/Schemas`));
  dirRouter.get('/Schemas', (req, res) => {
    const list = schemas(contextOf(req, res).basepath);
    send(res, 200, new SCIMMY.Messages.ListResponse(list as never[], { count: list.length } as never));
  });
  dirRouter.get('/Schemas/:id', (req, res) => {
    const found = schemas(contextOf(req, res).basepath).find((s) => s.id === req.params.id);
    if (!found) throw scimError(404, `Schema ${req.params.id} not found`);
    send(res, 200, found);
  });

  dirRouter.use((req, _res, next) => next(scimError(404, `No SCIM endpoint ${req.method} ${req.path}`)));
  dirRouter.use(scimErrorHandler(ctx));
  router.use(scimErrorHandler(ctx));
  return router;
}

/**
 * Bearer token of THIS directory only (a token of directory A on B's URL is 401);
 * a disabled directory answers 403.
 */
function authenticateDirectory(ctx: AppContext): RequestHandler {
  return async (req, res, next) => {
    const result = await ctx.services.scimDirectories.authenticate(req.params.directoryId as string, parseBearer(req.get('authorization')));
    if (result === 'invalid') {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw scimError(401, 'Missing or invalid bearer token for this directory');
    }
    if (result === 'disabled') throw scimError(403, 'This SCIM directory is disabled');
    res.locals.scimDirectory = result;
    next();
  };
}

function scimErrorHandler(ctx: AppContext): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) return next(err);
    const scim = toScimError(err);
    if (scim.status >= 500) ctx.logger.error({ err, reqId: res.locals.requestId, method: req.method, path: req.originalUrl }, 'SCIM request failed');
    res.status(scim.status).type(SCIM_CONTENT_TYPE).send(JSON.stringify(scimErrorBody(scim)));
  };
}
