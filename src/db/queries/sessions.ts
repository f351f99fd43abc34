import { pgArray, type Queryable, type SqlPart } from '../knex.js';

export type NewSessionValues = Pick<SessionRow, 'id' | 'token_hash' | 'user_id' | 'amr' | 'sso_connection_id' | 'sso_org_id' | 'expires_at'>;

/** The insert of a session row, one row per row of `from` (a CTE, or a query), for embedding in a larger statement. */
export function sessionInsert(values: NewSessionValues, from: string): SqlPart {
  return {
    sql: `insert into sessions (id, token_hash, user_id, amr, sso_connection_id, sso_org_id, expires_at)
          select ?, ?, ?, ?::text[], ?, ?, ? from ${from}`,
    bindings: [values.id, values.token_hash, values.user_id, pgArray(values.amr), values.sso_connection_id, values.sso_org_id, values.expires_at],
  };
}

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
    /**
     * Opens a session for a user who exists and is active, with its audit event, in ONE
     * statement (atomic without BEGIN/COMMIT). `userStatus` is undefined when there is no such
     * user; `row` is the session, when one was opened.
     */
    async insertForActiveUser(
      values: NewSessionValues,
      audit: (onlyIf: string) => SqlPart,
      q: Queryable = db,
    ): Promise<{ userStatus: string | undefined; row: SessionRow | undefined }> {
      const insert = sessionInsert(values, "account where status = 'active'");
      const event = audit('opened');
      const res = await q.raw(
        `with account as (select status from users where id = ?),
         opened as (${insert.sql} returning *),
         audit as (${event.sql})
         select a.status as user_status, o.* from account a left join opened o on true`,
        [values.user_id, ...insert.bindings, ...event.bindings],
      );
      const found = res.rows[0] as (SessionRow & { user_status: string; id: string | null }) | undefined;
      if (!found) return { userStatus: undefined, row: undefined };
      const { user_status: userStatus, ...row } = found;
      return { userStatus, row: row.id ? (row as SessionRow) : undefined };
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
    /**
     * The user's organizations (org switcher) with each org's MFA policy, by org name, and
     * whether the user has a confirmed TOTP factor (`mfa_enrolled`, the same on every row; it
     * only matters when there is a row), in one statement.
     */
    async organizationsOfUser(userId: string, q: Queryable = db): Promise<(UserOrgRow & { mfa_enrolled: boolean })[]> {
      return q('memberships as m')
        .join('organizations as o', 'o.id', 'm.org_id')
        .where('m.user_id', userId)
        .orderBy([{ column: 'o.name' }, { column: 'o.id' }])
        .select(
          'o.id',
          'o.slug',
          'o.name',
          'm.role',
          'm.status',
          'o.mfa_required',
          'o.mfa_grace_period_hours',
          'o.mfa_required_since',
          q.raw('exists (select 1 from user_totp t where t.user_id = ? and t.confirmed_at is not null) as mfa_enrolled', [userId]),
        );
    },
  };
}
export type SessionQueries = ReturnType<typeof createSessionQueries>;
