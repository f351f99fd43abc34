import type { Knex } from 'knex';
import type { AuditActor } from '../auth/principal.js';
import { requestContext } from '../logger.js';

export type AuditEvent = {
  orgId: string | null;
  actor: AuditActor;
  action: string;
  target?: { type: string; id: string | null };
  before?: unknown;
  after?: unknown;
};

/**
 * Writes one audit event inside the caller's transaction, so the event exists
 * if and only if the change it describes was committed. Takes a transaction
 * (not the root connection) on purpose.
 */
export async function recordAudit(trx: Knex.Transaction, event: AuditEvent): Promise<void> {
  await trx('audit_events').insert({
    org_id: event.orgId,
    actor_type: event.actor.type,
    actor_id: event.actor.id,
    action: event.action,
    target_type: event.target?.type ?? null,
    target_id: event.target?.id ?? null,
    before: event.before === undefined ? null : JSON.stringify(event.before),
    after: event.after === undefined ? null : JSON.stringify(event.after),
    request_id: requestContext.getStore()?.requestId ?? null,
  });
}
