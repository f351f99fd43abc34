import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createScimDirectoryService(_deps: CoreDeps) {
  return {};
}
export type ScimDirectoryService = ReturnType<typeof createScimDirectoryService>;
