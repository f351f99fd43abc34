import type { Knex } from 'knex';
import type { AuditActor } from '../auth/principal.js';
import type { SqlPart } from '../db/knex.js';

export type AuditEvent = {
  orgId: string | null;
  actor: AuditActor;
  action: string;
  target?: { type: string; id: string | null };
  before?: unknown;
  after?: unknown;
};

/** audit_events columns in the order `auditInsert` binds them (statements that select an event's values in SQL list them in this order too). */
export const AUDIT_COLUMNS = 'org_id, actor_type, actor_id, action, target_type, target_id, before, after, request_id';

function values(event: AuditEvent): Knex.RawBinding[] {
  return [
    event.orgId,
    event.actor.type,
    event.actor.id,
    event.action,
    event.target?.type ?? null,
    event.target?.id ?? null,
    event.before === undefined ? null : JSON.stringify(event.before),
    event.after === undefined ? null : JSON.stringify(event.after),
    event.actor.requestId ?? null,
  ];
}

/**
 * Writes one audit event inside the caller's transaction, so the event exists
 * if and only if the change it describes was committed. Takes a transaction
 * (not the root connection) on purpose.
 */
export async function recordAudit(trx: Knex.Transaction, event: AuditEvent): Promise<void> {
  const { sql, bindings } = auditInsert(event);
  await trx.raw(sql, bindings);
}

/**
 * The audit insert as SQL (knex `?` bindings) for a data-modifying CTE, so a write
 * and its event are ONE statement: atomic without BEGIN/COMMIT round trips.
 * `onlyIf` names a CTE of the same statement: the event is written only when that
 * CTE returned a row (the write happened).
 */
export function auditInsert(event: AuditEvent, opts: { onlyIf?: string } = {}): SqlPart {
  const placeholders = '?, ?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?';
  const sql = opts.onlyIf
    ? `insert into audit_events (${AUDIT_COLUMNS}) select ${placeholders} where exists (select 1 from ${opts.onlyIf})`
    : `insert into audit_events (${AUDIT_COLUMNS}) values (${placeholders})`;
  return { sql, bindings: values(event) };
}
