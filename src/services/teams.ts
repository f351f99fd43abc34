import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createTeamService(_deps: CoreDeps) {
  return {};
}
export type TeamService = ReturnType<typeof createTeamService>;
