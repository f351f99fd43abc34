import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createDomainService(_deps: CoreDeps) {
  return {};
}
export type DomainService = ReturnType<typeof createDomainService>;
