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

/** A membership of the session's user, with what the MFA policy check needs. */
export type UserOrgRow = {
  id: string;
  slug: string;
  name: string;
  role: string;
  status: 'active' | 'suspended';
  mfa_required: boolean;
  mfa_grace_period_hours: number | null;
  mfa_required_since: Date | null;
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
    async findById(id: string, q: Queryable = db) {
      return q<SessionRow>('sessions').where({ id }).first();
    },
    /** Adds an authentication method (e.g. `otp` after a verified code) to a live session; returns the row. */
    async addAmr(id: string, method: string, q: Queryable = db) {
      const [row] = await q<SessionRow>('sessions')
        .where({ id })
        .whereNull('revoked_at')
        .update({ amr: q.raw('case when ? = any(amr) then amr else array_append(amr, ?::text) end', [method, method]) })
        .returning('*');
      return row as SessionRow | undefined;
    },
    /** The user's organizations (org switcher) with each org's MFA policy, by org name. */
    async organizationsOfUser(userId: string, q: Queryable = db): Promise<UserOrgRow[]> {
      return q('memberships as m')
        .join('organizations as o', 'o.id', 'm.org_id')
        .where('m.user_id', userId)
        .orderBy([{ column: 'o.name' }, { column: 'o.id' }])
        .select('o.id', 'o.slug', 'o.name', 'm.role', 'm.status', 'o.mfa_required', 'o.mfa_grace_period_hours', 'o.mfa_required_since');
    },
    /** Whether the user has a confirmed TOTP factor. */
    async isMfaEnrolled(userId: string, q: Queryable = db): Promise<boolean> {
      const row = await q('user_totp').where({ user_id: userId }).whereNotNull('confirmed_at').first('user_id');
      return Boolean(row);
    },
  };
}
export type SessionQueries = ReturnType<typeof createSessionQueries>;
