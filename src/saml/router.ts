import express, { Router, type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { Email } from '../http/params.js';
import { AppError } from '../errors.js';
import { errorBody } from '../http/error-handler.js';
import { createSignInFlow } from './sign-in.js';
import { fail, SamlFailure } from './failures.js';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** A refused sign-in: JSON `{error:{code,message}}`, or a short page for a browser; never a stack trace. */
function sendFailure(req: Request, res: Response, failure: SamlFailure) {
  res.status(failure.status);
  if (req.accepts(['json', 'html']) === 'html') {
    res
      .type('html')
      .send(`<!doctype html><title>Sign-in failed</title><h1>Sign-in failed</h1><p>${escapeHtml(failure.message)}</p><p>Reason: <code>${escapeHtml(failure.code)}</code></p>`);
    return;
  }
  res.json(errorBody(new AppError(failure.code, failure.status, failure.message)));
}

/** `/sso`: discovery, and per connection the SP metadata, SP-initiated login and the ACS (POST binding). */
export function samlRouter(ctx: AppContext): Router {
  const router = Router();
  const flow = createSignInFlow(ctx);
  const log = ctx.logger;

  router.get('/discover', async (req, res) => {
    const email = Email.safeParse(req.query.email);
    if (!email.success) return sendFailure(req, res, fail('invalid_email', 400, 'email must be an email address'));
    const found = await ctx.services.ssoConnections.discover(email.data);
    if (!found) return sendFailure(req, res, fail('connection_not_found', 404, 'No SSO connection for this email domain'));
    res.json(found);
  });

  router.get('/saml/:connectionId/metadata', async (req, res) => {
    try {
      res.type('application/samlmetadata+xml').send(await flow.metadata(req.params.connectionId));
    } catch (err) {
      if (err instanceof SamlFailure) return sendFailure(req, res, err);
      throw err;
    }
  });

  router.get('/saml/:connectionId/login', async (req, res) => {
    const returnTo = z.string().max(2048).optional().safeParse(req.query.returnTo);
    try {
      if (!returnTo.success) throw fail('return_url_not_allowed', 400, 'returnTo must be one URL');
      res.redirect(302, await flow.login(req.params.connectionId, returnTo.data));
    } catch (err) {
      if (err instanceof SamlFailure) return sendFailure(req, res, err);
      throw err;
    }
  });

  // The only body parser on /sso: urlencoded, on the ACS, with a limit. Large enough for responses carrying
  // hundreds of group claims; bigger bodies are refused from Content-Length before they are read.
  const acsBody = express.urlencoded({ extended: false, limit: ctx.config.samlMaxResponseBytes, parameterLimit: 10 });
  const acsBodyErrors: ErrorRequestHandler = async (err, req, res, next) => {
    const type = (err as { type?: string }).type;
    const failure =
      type === 'entity.too.large'
        ? fail('too_large', 413, 'The SAML response is too large')
        : type
          ? fail('malformed_request', 400, 'The request body could not be read')
          : undefined;
    if (!failure) return next(err);
    await flow.recordFailure(String(req.params.connectionId), failure, res.locals.requestId).catch((e: unknown) => log.error({ err: e, reqId: res.locals.requestId }, 'audit of a failed sign-in failed'));
    sendFailure(req, res, failure);
  };

  const acs: RequestHandler<{ connectionId: string }> = async (req, res) => {
    const connectionId = req.params.connectionId;
    try {
      // the HTTP-POST binding is an HTML form: a JSON, XML or multipart body is not read as "no SAMLResponse"
      // (req.is is null without a body, which then reads as missing_response)
      if (req.is('application/x-www-form-urlencoded') === false) {
        throw fail('unsupported_content_type', 400, 'The ACS takes an application/x-www-form-urlencoded form (SAML HTTP-POST binding)');
      }
      // a bare 302: res.redirect would negotiate an HTML/text body for a browser that never shows it
      res.status(302).location(await flow.acs(connectionId, (req.body ?? {}) as Record<string, unknown>, res.locals.requestId)).end();
    } catch (err) {
      if (!(err instanceof SamlFailure)) throw err; // database trouble and the like: the app's 500
      const failure = await flow.recordFailure(connectionId, err, res.locals.requestId);
      log.warn({ reqId: res.locals.requestId, connectionId, reason: failure.code, details: failure.details }, 'SSO sign-in refused');
      sendFailure(req, res, failure);
    }
  };
  router.post('/saml/:connectionId/acs', acsBody, acsBodyErrors, acs);
  // Responses never travel by HTTP-Redirect in Web Browser SSO (SAML profiles §4.1.2): a GET is refused,
  // and audited when it carries a SAMLResponse (a sign-in attempt, not a stray visit).
  router.get('/saml/:connectionId/acs', async (req, res) => {
    const failure = fail('method_not_allowed', 405, 'The ACS accepts only the HTTP-POST binding');
    if (req.query.SAMLResponse !== undefined) {
      await flow.recordFailure(req.params.connectionId, failure, res.locals.requestId).catch((e: unknown) => log.error({ err: e, reqId: res.locals.requestId }, 'audit of a failed sign-in failed'));
    }
    res.set('Allow', 'POST');
    sendFailure(req, res, failure);
  });

  return router;
}
