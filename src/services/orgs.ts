import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createOrgService(_deps: CoreDeps) {
  return {};
}
export type OrgService = ReturnType<typeof createOrgService>;
