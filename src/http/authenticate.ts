import type { RequestHandler, Response } from 'express';
import type { Principal, UserPrincipal } from '../auth/principal.js';
import { parseBearer } from '../auth/tokens.js';
import { forbidden, unauthorized } from '../errors.js';
import type { AppContext } from '../context.js';

/**
 * Admin API authentication. `ses_` tokens are user sessions; anything else is
 * looked up as a service token (ADMIN_TOKEN may be any string).
 */
export function authenticate(ctx: AppContext): RequestHandler {
  return async (req, res, next) => {
    const token = parseBearer(req.get('authorization'));
    if (!token) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw unauthorized();
    }
    const principal = token.startsWith('ses_')
      ? await ctx.services.sessions.authenticate(token)
      : await ctx.services.serviceTokens.authenticate(token);
    if (!principal) {
      res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw unauthorized('Invalid, expired or revoked token');
    }
    res.locals.principal = { ...principal, requestId: res.locals.requestId as string };
    next();
  };
}

export function principalOf(res: Response): Principal {
  const p = res.locals.principal as Principal | undefined;
  if (!p) throw unauthorized();
  return p;
}

/** For endpoints only the product's backend may call (service tokens). */
export function requireService(res: Response): void {
  if (principalOf(res).kind !== 'service') throw forbidden('auth.service_token_required', 'This endpoint needs a service token');
}

/** For endpoints about the calling session itself. */
export function requireUser(res: Response): UserPrincipal {
  const p = principalOf(res);
  if (p.kind !== 'user') throw forbidden('auth.session_required', 'This endpoint needs a user session token');
  return p;
}
