import helmet from 'helmet';
import type { RequestHandler } from 'express';

const apiHeaders = helmet({
  // The service answers JSON, SCIM JSON, SAML metadata XML and redirects, never a page:
  // nothing may be loaded by or framed around a response.
  contentSecurityPolicy: { useDefaults: false, directives: { 'default-src': ["'none'"], 'frame-ancestors': ["'none'"] } },
  xFrameOptions: { action: 'deny' },
  // Headers that only mean something to an HTML document (or to IE8 and Flash) are left out.
  crossOriginOpenerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
  xPoweredBy: false, // express's own x-powered-by is disabled in buildApp
});

/**
 * Security headers for an API that serves no HTML (OWASP REST Security Cheat Sheet):
 * CSP and X-Frame-Options that forbid framing, HSTS, nosniff, no referrer, same-origin
 * CORP, and `Cache-Control: no-store`, because SCIM resources, tokens and session
 * answers must not be kept by a browser or a shared cache.
 */
export const securityHeaders: RequestHandler = (req, res, next) => {
  res.setHeader('Cache-Control', 'no-store');
  apiHeaders(req, res, next);
};
