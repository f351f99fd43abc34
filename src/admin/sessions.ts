import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body } from '../http/guard.js';
import { principalOf, requireService, requireUser } from '../http/authenticate.js';
import { actorOf } from '../auth/principal.js';
import { PRODUCT_AMR, presentSession } from '../services/sessions.js';
import { isUuid } from '../http/params.js';
import { notFound } from '../errors.js';

const CreateSession = z.strictObject({
  userId: z.string(),
  amr: z.array(z.enum(PRODUCT_AMR)).min(1).max(8),
});

/**
 * Sessions: the product's backend opens one after it verified a password (service token only);
 * the session itself asks who it is, signs out, or signs out everywhere.
 */
export function sessionsRoutes(router: Router, ctx: AppContext): void {
  router.post('/sessions', async (req, res) => {
    requireService(res);
    const input = body(req, CreateSession);
    if (!isUuid(input.userId)) throw notFound('User');
    const { token, session, organizations } = await ctx.services.sessions.create(
      { userId: input.userId, amr: input.amr },
      actorOf(principalOf(res)),
    );
    res.status(201).json({ token, ...presentSession(session), organizations });
  });

  router.get('/session', async (_req, res) => {
    res.json(await ctx.services.sessions.whoami(requireUser(res)));
  });

  router.delete('/session', async (_req, res) => {
    await ctx.services.sessions.revokeCurrent(requireUser(res));
    res.status(204).end();
  });

  router.post('/users/:userId/sessions/revoke-all', async (req, res) => {
    const principal = principalOf(res);
    const userId = String(req.params.userId);
    if (!isUuid(userId)) throw notFound('User');
    res.json(await ctx.services.sessions.revokeAll(principal, userId));
  });
}
