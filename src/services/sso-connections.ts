import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createSsoConnectionService(_deps: CoreDeps) {
  return {};
}
export type SsoConnectionService = ReturnType<typeof createSsoConnectionService>;
