import type { RequestHandler, Response } from 'express';
import type { Principal } from '../auth/principal.js';
import { parseBearer } from '../auth/tokens.js';
import { unauthorized } from '../errors.js';
import type { AppContext } from '../context.js';

/** Admin API authentication: a bearer service token (user sessions join in a later issue). */
export function authenticate(ctx: AppContext): RequestHandler {
  return async (req, res, next) => {
    const token = parseBearer(req.get('authorization'));
    if (!token) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw unauthorized();
    }
    const principal = await ctx.services.serviceTokens.authenticate(token);
    if (!principal) {
      res.setHeader('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw unauthorized('Invalid or revoked token');
    }
    res.locals.principal = principal;
    next();
  };
}

export function principalOf(res: Response): Principal {
  const p = res.locals.principal as Principal | undefined;
  if (!p) throw unauthorized();
  return p;
}
