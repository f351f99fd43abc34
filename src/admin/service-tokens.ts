import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body } from '../http/guard.js';
import { principalOf } from '../http/authenticate.js';
import { actorOf } from '../auth/principal.js';

const CreateServiceToken = z.strictObject({ name: z.string().trim().min(1).max(128) });

/** Service tokens are minted by other service tokens (or the CLI); the secret is returned once. */
export function serviceTokenRoutes(router: Router, ctx: AppContext): void {
  router.post('/service-tokens', async (req, res) => {
    const input = body(req, CreateServiceToken);
    const created = await ctx.services.serviceTokens.create(input.name, actorOf(principalOf(res)));
    res.status(201).json(created);
  });
}
