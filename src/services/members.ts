import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createMemberService(_deps: CoreDeps) {
  return {};
}
export type MemberService = ReturnType<typeof createMemberService>;
