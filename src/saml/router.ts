import { Router } from 'express';
import type { AppContext } from '../context.js';

// Placeholder: SAML at /sso (issue: SAML SSO with verified domains).
export function samlRouter(_ctx: AppContext): Router {
  return Router();
}
