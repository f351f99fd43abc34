import type { Router } from 'express';
import type { AppContext } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function domainsRoutes(_router: Router, _ctx: AppContext): void {}
