import type { Queryable } from '../knex.js';

export type SessionRow = {
  id: string;
  token_hash: string;
  user_id: string;
  amr: string[];
  sso_connection_id: string | null;
  sso_org_id: string | null;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
};

export function createSessionQueries(db: Queryable) {
  return {
    async insert(values: Pick<SessionRow, 'token_hash' | 'user_id' | 'amr' | 'expires_at'> & Partial<SessionRow>, q: Queryable = db) {
      const [row] = await q<SessionRow>('sessions').insert(values).returning('*');
      return row!;
    },
    /** The live session for a token hash, with its user's status. */
    async findLiveByHash(hash: string, q: Queryable = db) {
      return q('sessions as s')
        .join('users as u', 'u.id', 's.user_id')
        .where('s.token_hash', hash)
        .whereNull('s.revoked_at')
        .where('s.expires_at', '>', q.fn.now())
        .first<(SessionRow & { user_status: string }) | undefined>('s.*', 'u.status as user_status');
    },
    async touch(id: string, q: Queryable = db) {
      await q('sessions').where({ id }).update({ last_seen_at: q.fn.now() });
    },
    async revoke(id: string, q: Queryable = db) {
      return q('sessions').where({ id }).whereNull('revoked_at').update({ revoked_at: q.fn.now() });
    },
    async revokeAllForUser(userId: string, q: Queryable = db) {
      return q('sessions').where({ user_id: userId }).whereNull('revoked_at').update({ revoked_at: q.fn.now() });
    },
  };
}
export type SessionQueries = ReturnType<typeof createSessionQueries>;
