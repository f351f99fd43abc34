import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createProjectService(_deps: CoreDeps) {
  return {};
}
export type ProjectService = ReturnType<typeof createProjectService>;
