import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createUserService(_deps: CoreDeps) {
  return {};
}
export type UserService = ReturnType<typeof createUserService>;
