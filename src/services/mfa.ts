import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createMfaService(_deps: CoreDeps) {
  return {};
}
export type MfaService = ReturnType<typeof createMfaService>;
