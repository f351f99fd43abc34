import { Router } from 'express';
import type { AppContext } from '../context.js';

// Placeholder: SCIM 2.0 at /scim/v2/:directoryId/ (issue: SCIM directory sync).
export function scimRouter(_ctx: AppContext): Router {
  return Router();
}
