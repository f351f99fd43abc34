import type { Knex } from 'knex';
import type { Queryable } from '../knex.js';
import type { BuiltinRole } from '../../authz/permissions.js';

export type InviteStatus = 'pending' | 'accepted' | 'revoked' | 'expired';
export const INVITE_STATUSES = ['pending', 'accepted', 'revoked', 'expired'] as const;

export type InviteRow = {
  id: string;
  org_id: string;
  email: string;
  role: BuiltinRole;
  custom_role_keys: string[];
  token_hash: string;
  expires_at: Date;
  invited_by_user_id: string | null;
  accepted_at: Date | null;
  accepted_by_user_id: string | null;
  revoked_at: Date | null;
  created_at: Date;
};

/** A row as read back: its status derived by the database clock, and a microsecond-exact sort key for cursors. */
export type InviteView = InviteRow & { status: InviteStatus; created_key: string };

// Status is derived in SQL, with the database's clock, so the list filter and the shown status always agree.
const STATUS_SQL = `case
  when accepted_at is not null then 'accepted'
  when revoked_at is not null then 'revoked'
  when expires_at <= now() then 'expired'
  else 'pending' end`;
// created_at with microseconds: a JS Date keeps only milliseconds, which would make keyset pages skip or repeat rows.
const CREATED_KEY_SQL = `to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const STATUS_WHERE: Record<InviteStatus, (q: Knex.QueryBuilder) => void> = {
  accepted: (q) => void q.whereNotNull('accepted_at'),
  revoked: (q) => void q.whereNotNull('revoked_at'),
  expired: (q) => void q.whereNull('accepted_at').whereNull('revoked_at').whereRaw('expires_at <= now()'),
  pending: (q) => void q.whereNull('accepted_at').whereNull('revoked_at').whereRaw('expires_at > now()'),
};

export type InviteListFilter = {
  status?: InviteStatus;
  email?: string;
  /** keyset: rows strictly older than (createdKey, id) */
  after?: { createdKey: string; id: string };
  limit: number;
};

export function createInviteQueries(db: Queryable) {
  const view = (q: Queryable) => q<InviteView>('invites').select('*', q.raw(`${STATUS_SQL} as status`), q.raw(`${CREATED_KEY_SQL} as created_key`));

  return {
    async insert(
      values: Pick<InviteRow, 'org_id' | 'email' | 'role' | 'custom_role_keys' | 'token_hash' | 'expires_at' | 'invited_by_user_id'>,
      q: Queryable = db,
    ): Promise<InviteView> {
      const [row] = await q<InviteRow>('invites').insert(values).returning('id');
      return (await view(q).where({ org_id: values.org_id, id: row!.id }).first())!;
    },

    async findInOrg(orgId: string, id: string, q: Queryable = db): Promise<InviteView | undefined> {
      return view(q).where({ org_id: orgId, id }).first();
    },

    /** Lookup by token hash is global: the token itself names the org. */
    async findByTokenHash(hash: string, q: Queryable = db): Promise<InviteView | undefined> {
      return view(q).where({ token_hash: hash }).first();
    },

    /** Newest first; `limit + 1` rows so the caller can tell whether a next page exists. */
    async list(orgId: string, filter: InviteListFilter, q: Queryable = db): Promise<InviteView[]> {
      const query = view(q).where({ org_id: orgId });
      if (filter.status) STATUS_WHERE[filter.status](query);
      if (filter.email) query.whereRaw('lower(email) = lower(?)', [filter.email]);
      if (filter.after) query.whereRaw('(created_at, id) < (?::timestamptz, ?::uuid)', [filter.after.createdKey, filter.after.id]);
      return query.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(filter.limit + 1);
    },

    /** Is there a pending invite for this email (case-insensitive) in the org? */
    async pendingExists(orgId: string, email: string, q: Queryable = db): Promise<boolean> {
      const query = q('invites').where({ org_id: orgId }).whereRaw('lower(email) = lower(?)', [email]);
      STATUS_WHERE.pending(query);
      return Boolean(await query.first('id'));
    },

    /**
     * Claims a pending invite for one user. The conditional update is the single-use guard:
     * of two concurrent accepts, the second waits for the first's row lock, re-checks the
     * condition and updates nothing.
     */
    async claim(orgId: string, id: string, userId: string, q: Queryable = db): Promise<InviteRow | undefined> {
      const [row] = await q<InviteRow>('invites')
        .where({ org_id: orgId, id })
        .whereNull('accepted_at')
        .whereNull('revoked_at')
        .whereRaw('expires_at > now()')
        .update({ accepted_at: q.fn.now(), accepted_by_user_id: userId })
        .returning('*');
      return row;
    },

    /** Revokes an invite that is neither accepted nor revoked yet (an expired one may still be revoked). */
    async revoke(orgId: string, id: string, q: Queryable = db): Promise<InviteRow | undefined> {
      const [row] = await q<InviteRow>('invites')
        .where({ org_id: orgId, id })
        .whereNull('accepted_at')
        .whereNull('revoked_at')
        .update({ revoked_at: q.fn.now() })
        .returning('*');
      return row;
    },

    /** Custom roles of the org among `keys` (those that exist), with their permissions. */
    async customRolesByKeys(orgId: string, keys: readonly string[], q: Queryable = db) {
      if (keys.length === 0) return [];
      return q('roles')
        .where({ org_id: orgId })
        .whereIn('key', [...keys])
        .select<{ id: string; key: string; permissions: string[] }[]>('id', 'key', 'permissions');
    },

    async userByEmail(email: string, q: Queryable = db) {
      return q('users').whereRaw('lower(email) = lower(?)', [email]).first<{ id: string; email: string } | undefined>('id', 'email');
    },

    async userEmail(userId: string, q: Queryable = db): Promise<string | undefined> {
      const row = await q('users').where({ id: userId }).first<{ email: string } | undefined>('email');
      return row?.email;
    },

    async isMember(orgId: string, userId: string, q: Queryable = db): Promise<boolean> {
      return Boolean(await q('memberships').where({ org_id: orgId, user_id: userId }).first('user_id'));
    },

    /** Inserts the membership unless one exists; false when the user already was a member. */
    async insertMembership(
      values: { org_id: string; user_id: string; role: BuiltinRole; source: 'invite' },
      roleIds: readonly string[],
      q: Queryable = db,
    ): Promise<boolean> {
      const inserted = await q('memberships').insert({ ...values, status: 'active' }).onConflict(['org_id', 'user_id']).ignore().returning('user_id');
      if (inserted.length === 0) return false;
      if (roleIds.length > 0) {
        await q('membership_roles').insert(roleIds.map((role_id) => ({ org_id: values.org_id, user_id: values.user_id, role_id })));
      }
      return true;
    },

    /** The new membership as the members API shows it (custom role keys sorted). */
    async memberView(orgId: string, userId: string, q: Queryable = db) {
      return q('memberships as m')
        .join('users as u', 'u.id', 'm.user_id')
        .where({ 'm.org_id': orgId, 'm.user_id': userId })
        .first<
          | { user_id: string; email: string; name: string | null; role: BuiltinRole; status: 'active' | 'suspended'; source: string; created_at: Date; updated_at: Date; roles: string[] }
          | undefined
        >(
          'm.user_id',
          'u.email',
          'u.name',
          'm.role',
          'm.status',
          'm.source',
          'm.created_at',
          'm.updated_at',
          q.raw(
            `coalesce((select array_agg(r.key order by r.key) from membership_roles mr join roles r on r.id = mr.role_id
                        where mr.org_id = m.org_id and mr.user_id = m.user_id), '{}') as roles`,
          ),
        );
    },

    /**
     * Serialises invite creation for one (org, email) within the caller's transaction, so two
     * concurrent creates cannot both pass the "no pending invite yet" check.
     */
    async lockEmail(orgId: string, email: string, trx: Knex.Transaction): Promise<void> {
      await trx.raw(`select pg_advisory_xact_lock(hashtextextended(?, 0))`, [`invite:${orgId}:${email.toLowerCase()}`]);
    },
  };
}
export type InviteQueries = ReturnType<typeof createInviteQueries>;
