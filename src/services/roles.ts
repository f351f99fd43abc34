import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createRoleService(_deps: CoreDeps) {
  return {};
}
export type RoleService = ReturnType<typeof createRoleService>;
