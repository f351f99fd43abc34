import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body } from '../http/guard.js';
import { principalOf, requireService } from '../http/authenticate.js';
import { actorOf } from '../auth/principal.js';
import { presentSession } from '../services/sessions.js';
import { isUuid } from '../http/params.js';
import { notFound } from '../errors.js';

// Methods the product's backend can vouch for. `sso` and `otp` are facts this service
// establishes itself (ACS, TOTP verify), so a caller cannot claim them.
const AMR = z.enum(['pwd', 'passkey', 'hwk', 'swk', 'email', 'sms']);
const CreateSession = z.strictObject({
  userId: z.string(),
  amr: z.array(AMR).min(1).max(8),
});

/** Sessions: the product's backend opens one after it verified a password (service token only). */
export function sessionsRoutes(router: Router, ctx: AppContext): void {
  router.post('/sessions', async (req, res) => {
    requireService(res);
    const input = body(req, CreateSession);
    if (!isUuid(input.userId)) throw notFound('User');
    const { token, session } = await ctx.services.sessions.create({ userId: input.userId, amr: input.amr }, actorOf(principalOf(res)));
    res.status(201).json({ token, ...presentSession(session) });
  });
}
