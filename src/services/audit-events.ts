import type { CoreDeps } from '../context.js';
import type { AuditEventFilter, AuditEventQueries, AuditEventRow } from '../db/queries/audit-events.js';
import type { OrgAccess } from './authz.js';
import { badRequest } from '../errors.js';
import { decodeCursor, toPage } from '../http/pagination.js';

export type AuditEventListQuery = Omit<AuditEventFilter, 'beforeId' | 'action' | 'actionPrefix'> & {
  /** exact action, or a prefix ending in `*` (`member.*`) */
  action?: string;
  after?: string;
};

export function presentAuditEvent(row: AuditEventRow) {
  return {
    // bigint: a string, so clients never lose precision past 2^53
    id: String(row.id),
    orgId: row.org_id,
    actor: { type: row.actor_type, id: row.actor_id },
    action: row.action,
    target: row.target_type === null ? null : { type: row.target_type, id: row.target_id },
    before: row.before ?? null,
    after: row.after ?? null,
    requestId: row.request_id,
    createdAt: row.created_at,
  };
}

/** The audit log of one org, read-only: keyset pagination on the event id, newest first. */
export function createAuditEventService(_deps: CoreDeps, queries: AuditEventQueries) {
  return {
    async list(access: OrgAccess, input: AuditEventListQuery) {
      const { after, action, ...filters } = input;
      let beforeId: string | undefined;
      if (after !== undefined) {
        const [id] = decodeCursor(after, 1);
        if (typeof id !== 'string' || !/^[1-9]\d{0,18}$/.test(id)) throw badRequest('validation.invalid_cursor', 'The `after` cursor is not valid');
        beforeId = id;
      }
      const byAction = action?.endsWith('*') ? { actionPrefix: action.slice(0, -1) } : { action };
      const rows = await queries.list(access.orgId, { ...filters, ...byAction, beforeId });
      return toPage(rows, input.limit, (r) => [String(r.id)], presentAuditEvent);
    },
  };
}
export type AuditEventService = ReturnType<typeof createAuditEventService>;
