import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createInviteService(_deps: CoreDeps) {
  return {};
}
export type InviteService = ReturnType<typeof createInviteService>;
