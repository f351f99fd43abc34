import type { Response, Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body } from '../http/guard.js';
import { principalOf, requireService, requireUser } from '../http/authenticate.js';
import { AppError, notFound } from '../errors.js';
import { isUuid } from '../http/params.js';
import type { FactorProof } from '../services/mfa.js';

/** Six digits; spaces people type from their authenticator app ("123 456") are ignored. */
const TotpCode = z
  .string()
  .transform((s) => s.replace(/\s+/g, ''))
  .pipe(z.string().regex(/^\d{6}$/, 'must be the 6-digit code from the authenticator app'));
const RecoveryCode = z.string().trim().min(8).max(64);

const Confirm = z.strictObject({ code: TotpCode });
/** Exactly one of `code` (authenticator app) or `recoveryCode`. */
const Proof = z
  .strictObject({ code: TotpCode.optional(), recoveryCode: RecoveryCode.optional() })
  .refine((p) => (p.code === undefined) !== (p.recoveryCode === undefined), {
    message: 'send exactly one of `code` or `recoveryCode`',
  })
  .transform((p) => p as FactorProof);
const Policy = z.strictObject({
  required: z.boolean(),
  gracePeriodHours: z.number().int().min(0).max(24 * 365).nullable().optional(),
});

/** Tells the client when a locked verification opens again. */
async function withRetryAfter<T>(res: Response, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof AppError && err.code === 'mfa.locked') {
      res.setHeader('Retry-After', String((err.details as { retryAfterSeconds: number }).retryAfterSeconds));
    }
    throw err;
  }
}

/** MFA: the calling session's authenticator app (TOTP) and the per-org MFA policy. */
export function mfaRoutes(router: Router, ctx: AppContext): void {
  const mfa = () => ctx.services.mfa;

  router.get('/session/mfa', async (_req, res) => {
    res.json(await mfa().status(requireUser(res)));
  });

  router.post('/session/mfa/totp', async (_req, res) => {
    res.status(201).json(await mfa().enrollTotp(requireUser(res)));
  });

  router.post('/session/mfa/totp/confirm', async (req, res) => {
    const user = requireUser(res);
    const { code } = body(req, Confirm);
    res.json(await withRetryAfter(res, () => mfa().confirmTotp(user, code)));
  });

  router.delete('/session/mfa/totp', async (req, res) => {
    const user = requireUser(res);
    const proof = body(req, Proof);
    await withRetryAfter(res, () => mfa().disableTotp(user, proof));
    res.status(204).end();
  });

  router.post('/session/mfa/verify', async (req, res) => {
    const user = requireUser(res);
    const proof = body(req, Proof);
    res.json(await withRetryAfter(res, () => mfa().verify(user, proof)));
  });

  router.post('/session/mfa/recovery-codes', async (req, res) => {
    const user = requireUser(res);
    const proof = body(req, Proof);
    res.json(await withRetryAfter(res, () => mfa().regenerateRecoveryCodes(user, proof)));
  });

  // support: a user lost both the authenticator app and the recovery codes
  router.delete('/users/:userId/mfa', async (req, res) => {
    requireService(res);
    const userId = String(req.params.userId);
    if (!isUuid(userId)) throw notFound('User');
    await mfa().resetUser(principalOf(res), userId);
    res.status(204).end();
  });

  router.get('/orgs/:orgId/mfa-policy', async (req, res) => {
    res.json(await mfa().getPolicy(principalOf(res), String(req.params.orgId)));
  });

  router.put('/orgs/:orgId/mfa-policy', async (req, res) => {
    const principal = principalOf(res);
    // authorization first: a non-member learns nothing from validation errors
    await ctx.services.authz.requireOrg(principal, String(req.params.orgId), 'mfa:manage');
    res.json(await mfa().putPolicy(principal, String(req.params.orgId), body(req, Policy)));
  });
}
