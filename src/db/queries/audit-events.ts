import type { Queryable } from '../knex.js';
import type { AuditActor } from '../../auth/principal.js';

export type AuditEventRow = {
  id: number;
  org_id: string | null;
  actor_type: AuditActor['type'];
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  before: unknown;
  after: unknown;
  request_id: string | null;
  ip: string | null;
  created_at: Date;
};

export type AuditEventFilter = {
  /** exact action, or every action starting with `actionPrefix` */
  action?: string;
  actionPrefix?: string;
  actorType?: AuditActor['type'];
  actorId?: string;
  targetType?: string;
  targetId?: string;
  /** created_at >= since */
  since?: Date;
  /** created_at < until */
  until?: Date;
  /** keyset: ids strictly below this one (newest first) */
  beforeId?: string;
  limit: number;
};

export function createAuditEventQueries(db: Queryable) {
  return {
    /** One org's events, newest first, `limit + 1` rows (the extra one only tells that a next page exists). */
    async list(orgId: string, f: AuditEventFilter, q: Queryable = db): Promise<AuditEventRow[]> {
      const query = q<AuditEventRow>('audit_events').where({ org_id: orgId });
      if (f.action !== undefined) query.where('action', f.action);
      // starts_with, not LIKE: `_` in action names would be a LIKE wildcard.
      if (f.actionPrefix !== undefined) query.whereRaw('starts_with(action, ?)', [f.actionPrefix]);
      if (f.actorType !== undefined) query.where('actor_type', f.actorType);
      if (f.actorId !== undefined) query.where('actor_id', f.actorId);
      if (f.targetType !== undefined) query.where('target_type', f.targetType);
      if (f.targetId !== undefined) query.where('target_id', f.targetId);
      if (f.since !== undefined) query.where('created_at', '>=', f.since);
      if (f.until !== undefined) query.where('created_at', '<', f.until);
      if (f.beforeId !== undefined) query.where('id', '<', f.beforeId);
      return query.orderBy('id', 'desc').limit(f.limit + 1).select('*');
    },
  };
}
export type AuditEventQueries = ReturnType<typeof createAuditEventQueries>;
