import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createAccessService(_deps: CoreDeps) {
  return {};
}
export type AccessService = ReturnType<typeof createAccessService>;
