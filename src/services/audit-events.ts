import type { CoreDeps } from '../context.js';

// Placeholder: filled in by the issue that builds this capability.
export function createAuditEventService(_deps: CoreDeps) {
  return {};
}
export type AuditEventService = ReturnType<typeof createAuditEventService>;
