import { AUDIT_COLUMNS } from '../../audit/record.js';
import type { AuditActor } from '../../auth/principal.js';
import { pgArray, prepared, type Queryable, type SqlPart } from '../knex.js';
import { directoryResourceQueries } from './directory-resources.js';

export type ScimUserRow = {
  id: string;
  org_id: string;
  directory_id: string;
  user_id: string;
  user_name: string;
  external_id: string | null;
  active: boolean;
  attributes: Record<string, unknown>;
  version: number;
  created_at: Date;
  updated_at: Date;
};

export type GlobalUserRow = { id: string; email: string; name: string | null; status: string };
export type { SqlPredicate } from './directory-resources.js';

/** The account a link row points to, read with the row's lock: what a profile sync needs to decide. */
export type LinkedAccount = { id: string; email: string; name: string | null; domainVerified: boolean };

type ScimUserValues = Pick<ScimUserRow, 'user_name' | 'external_id' | 'active' | 'attributes'>;
/** A new link row before its account is known. */
export type ScimUserLink = ScimUserValues & Pick<ScimUserRow, 'org_id' | 'directory_id'>;

/**
 * `memberships.status` follows the SCIM `active` flag. Owners are never suspended
 * by a directory (an org keeps its owners), and a user still active in another
 * directory of the same org stays active. `onlyIf` names a CTE that must have
 * returned a row for the update to happen.
 */
function membershipStatusUpdate(orgId: string, directoryId: string, userId: string | { sql: string }, active: boolean, onlyIf?: string): SqlPart {
  const status = active ? 'active' : 'suspended';
  // the user id as a value, or as SQL (a statement that reads the link row itself)
  const user = typeof userId === 'string' ? { sql: '?', bindings: [userId] } : { sql: `(${userId.sql})`, bindings: [] };
  return {
    sql: `update memberships m set status = ?, updated_at = now()
           where m.org_id = ? and m.user_id = ${user.sql} and m.role <> 'owner' and m.status <> ?
           ${active ? '' : `and not exists (select 1 from scim_users o
                              where o.org_id = m.org_id and o.user_id = m.user_id and o.directory_id <> ? and o.active)`}
           ${onlyIf ? `and exists (select 1 from ${onlyIf})` : ''}`,
    bindings: [status, orgId, ...user.bindings, status, ...(active ? [] : [directoryId])],
  };
}

/** Whether another directory of the org links the person of the row `updated` returned. */
const SHARED = `exists (select 1 from scim_users o
                 where o.org_id = updated.org_id and o.user_id = updated.user_id and o.directory_id <> updated.directory_id) as shared`;

/** scim_users columns, listed: the statements below are prepared (see `prepared`). */
const COLUMNS = 'id, org_id, directory_id, user_id, user_name, external_id, active, attributes, version, created_at, updated_at';
const columnsOf = (alias: string) => COLUMNS.split(', ').map((c) => `${alias}.${c}`).join(', ');

/** SQL for SCIM users: the directory's link rows, and the global accounts and memberships they drive. */
export function createScimUserQueries(db: Queryable) {
  return {
    ...directoryResourceQueries<ScimUserRow>(db, 'scim_users', 'su'),
    /**
     * Reads the link row and, in the same statement, the account it points to and
     * whether the org has verified that account's email domain (the domain after the
     * last `@`, as `domainOf` in the handlers). No lock: writes check the version.
     */
    async readWithAccount(directoryId: string, id: string, q: Queryable = db): Promise<{ row: ScimUserRow; account: LinkedAccount | undefined } | undefined> {
      const res = await prepared(
        q,
        `select ${columnsOf('su')}, u.email as account_email, u.name as account_name,
                exists (select 1 from domains d
                         where d.org_id = su.org_id and d.status = 'verified'
                           and d.domain = lower(regexp_replace(u.email, '^.*@', ''))) as account_domain_verified
           from scim_users su left join users u on u.id = su.user_id
          where su.directory_id = ? and su.id = ?`,
        [directoryId, id],
      );
      const found = res.rows[0] as (ScimUserRow & { account_email: string | null; account_name: string | null; account_domain_verified: boolean }) | undefined;
      if (!found) return undefined;
      const { account_email, account_name, account_domain_verified, ...row } = found;
      const account = account_email === null ? undefined : { id: row.user_id, email: account_email, name: account_name, domainVerified: account_domain_verified };
      return { row, account };
    },
    /**
     * The common create in ONE statement: a new account (ids chosen by the caller, so
     * the audit event can name them), its scim membership, the link row and the audit
     * event. Nothing is written (undefined) when an account with that email exists.
     */
    async insertWithNewAccount(
      ids: { userId: string; scimId: string },
      email: string,
      name: string | null,
      values: ScimUserLink,
      role: string,
      audit: SqlPart,
      q: Queryable = db,
    ): Promise<ScimUserRow | undefined> {
      const res = await prepared(
        q,
        `with account as (
           insert into users (id, email, name) values (?, ?, ?) on conflict ((lower(email))) do nothing returning id
         ), membership as (
           insert into memberships (org_id, user_id, role, status, source) select ?, id, ?, ?, 'scim' from account
         ), inserted as (
           insert into scim_users (id, org_id, directory_id, user_id, user_name, external_id, active, attributes)
           select ?, ?, ?, id, ?, ?, ?, ?::jsonb from account
           returning ${COLUMNS}
         ), audit as (${audit.sql})
         select ${COLUMNS} from inserted`,
        [
          ids.userId,
          email,
          name,
          values.org_id,
          role,
          values.active ? 'active' : 'suspended',
          ids.scimId,
          values.org_id,
          values.directory_id,
          values.user_name,
          values.external_id,
          values.active,
          JSON.stringify(values.attributes),
          ...audit.bindings,
        ],
      );
      return res.rows[0] as ScimUserRow | undefined;
    },
    /**
     * Inserts the link row and the person's scim membership (unless they are already a
     * member: that membership is adopted as it is) in one statement. `joined` is true
     * when a membership was inserted.
     */
    async insertWithMembership(
      values: ScimUserLink & { user_id: string },
      role: string,
      q: Queryable = db,
    ): Promise<{ row: ScimUserRow; joined: boolean }> {
      const res = await q.raw(
        `with joined as (
           insert into memberships (org_id, user_id, role, status, source) values (?, ?, ?, ?, 'scim')
           on conflict (org_id, user_id) do nothing returning user_id
         ), inserted as (
           insert into scim_users (org_id, directory_id, user_id, user_name, external_id, active, attributes)
           values (?, ?, ?, ?, ?, ?, ?::jsonb) returning *
         )
         select inserted.*, exists (select 1 from joined) as joined from inserted`,
        [
          values.org_id,
          values.user_id,
          role,
          values.active ? 'active' : 'suspended',
          values.org_id,
          values.directory_id,
          values.user_id,
          values.user_name,
          values.external_id,
          values.active,
          JSON.stringify(values.attributes),
        ],
      );
      const { joined, ...row } = res.rows[0] as ScimUserRow & { joined: boolean };
      return { row, joined };
    },
    /**
     * Writes the link row (version + 1) if it is still at `before.version`, and in the
     * same statement the membership status (when `active` flips) and the audit event.
     * undefined when another writer got there first (the caller reads again). The
     * status update reads other directories' rows from the statement's snapshot;
     * `shared` says there are some (the caller then runs `reconcileMembershipStatus`).
     */
    async update(before: ScimUserRow, values: ScimUserValues, audit: SqlPart, q: Queryable = db): Promise<{ row: ScimUserRow; shared: boolean } | undefined> {
      const status =
        values.active !== before.active ? membershipStatusUpdate(before.org_id, before.directory_id, before.user_id, values.active, 'updated') : undefined;
      const res = await prepared(
        q,
        `with updated as (
           update scim_users set user_name = ?, external_id = ?, active = ?, attributes = ?::jsonb, version = version + 1, updated_at = now()
            where id = ? and version = ? returning ${COLUMNS}
         )${status ? `, membership_status as (${status.sql})` : ''}, audit as (${audit.sql})
         select ${COLUMNS}, ${status ? SHARED : 'false as shared'} from updated`,
        [
          values.user_name,
          values.external_id,
          values.active,
          JSON.stringify(values.attributes),
          before.id,
          before.version,
          ...(status?.bindings ?? []),
          ...audit.bindings,
        ],
      );
      const found = res.rows[0] as (ScimUserRow & { shared: boolean }) | undefined;
      if (!found) return undefined;
      const { shared, ...row } = found;
      return { row, shared };
    },
    /**
     * A PATCH of `active` alone (a deprovisioning wave, Okta's and Entra's most common write) as
     * ONE statement, the same writes `update` makes after a read: check If-Match (`versions`;
     * null accepts any), set `active` (attributes too), bump the version, suspend or reactivate
     * the membership when `active` flips, and write the audit event, built in SQL as the
     * read-then-write path builds it. `row` is undefined when the row is missing (`found`
     * false) or the version did not match (`version` is the current one).
     *
     * No row lock: a statement that waited for one would decide the membership from the
     * snapshot it took before the wait, which misses the write it waited for. The update
     * applies only if the row is still the one the snapshot read; `raced` says another writer
     * got there first (nothing written; run it again). `shared`: another directory of the org
     * links the person too (see `reconcileMembershipStatus`).
     */
    async setActive(
      link: { directoryId: string; orgId: string; id: string },
      active: boolean,
      versions: string[] | null,
      actor: AuditActor,
      q: Queryable = db,
    ): Promise<{ found: boolean; version: number | null; row: ScimUserRow | undefined; raced: boolean; shared: boolean }> {
      const flipped = membershipStatusUpdate(link.orgId, link.directoryId, { sql: 'select user_id from ok' }, active, 'flipped');
      const view = (alias: string) =>
        `'userName', ${alias}.user_name, 'externalId', ${alias}.external_id, 'active', ${alias}.active, 'userId', ${alias}.user_id, 'version', ${alias}.version`;
      const versionList = versions === null ? null : pgArray(versions);
      const res = await prepared(
        q,
        `with b as (
           select ${COLUMNS} from scim_users where directory_id = ? and id = ?::uuid
         ), ok as (
           select * from b where ?::text[] is null or b.version::text = any(?::text[])
         ), updated as (
           update scim_users su set active = ?, attributes = su.attributes || jsonb_build_object('active', ?::boolean),
                  version = su.version + 1, updated_at = now()
             from ok where su.id = ok.id and su.version = ok.version
           returning ${columnsOf('su')}
         ), flipped as (
           select 1 from ok join updated u on u.id = ok.id where ok.active <> u.active
         ), membership_status as (${flipped.sql}), audit as (
           insert into audit_events (${AUDIT_COLUMNS})
           select ok.org_id, ?, ?,
                  case when ok.active = u.active then 'scim_user.update' when u.active then 'scim_user.reactivate' else 'scim_user.deactivate' end,
                  'scim_user', ok.id::text, jsonb_build_object(${view('ok')}), jsonb_build_object(${view('u')}), ?
             from updated u join ok on ok.id = u.id
         )
         select exists (select 1 from b) as found, (select version from b) as current_version,
                exists (select 1 from ok) and u.id is null as raced, coalesce((select ${SHARED} from flipped, updated), false) as shared,
                ${columnsOf('u')}
           from (select 1) one left join updated u on true`,
        [link.directoryId, link.id, versionList, versionList, active, active, ...flipped.bindings, actor.type, actor.id, actor.requestId ?? null],
      );
      const { found, current_version, raced, shared, ...row } = res.rows[0] as ScimUserRow & {
        found: boolean;
        current_version: number | null;
        raced: boolean;
        shared: boolean;
      };
      return { found, version: current_version, row: row.id ? row : undefined, raced, shared };
    },
    /**
     * Sets the status of a person linked from several directories of the org from all their
     * links at once: active while any link is. A write decides from its statement's snapshot,
     * so two directories deactivating the same person at the same moment each see the other
     * link still active; this runs after such a write has committed, under the membership's
     * row lock and with a snapshot taken after it, so the last one to run sees every commit.
     */
    async reconcileMembershipStatus(orgId: string, userId: string): Promise<void> {
      await db.transaction(async (trx) => {
        await trx.raw(`select 1 from memberships where org_id = ? and user_id = ? for update`, [orgId, userId]);
        // no row when no directory links the person (then it is left alone)
        await trx.raw(
          `update memberships m set status = s.status, updated_at = now()
             from (select case when bool_or(o.active) then 'active' else 'suspended' end as status
                     from scim_users o where o.org_id = ? and o.user_id = ? having count(*) > 0) s
            where m.org_id = ? and m.user_id = ? and m.role <> 'owner' and m.status <> s.status`,
          [orgId, userId, orgId, userId],
        );
      });
    },
    async remove(id: string, q: Queryable = db): Promise<void> {
      await q('scim_users').where({ id }).delete();
    },

    // ---------- global accounts ----------
    async findGlobalByEmail(email: string, q: Queryable = db): Promise<GlobalUserRow | undefined> {
      return q<GlobalUserRow>('users').whereRaw('lower(email) = lower(?)', [email]).first();
    },
    /** Creates the account unless one with that email exists (a concurrent creator wins; we then read its row). */
    async ensureGlobal(email: string, name: string | null, q: Queryable = db): Promise<{ user: GlobalUserRow; created: boolean }> {
      const inserted = await q.raw(
        `insert into users (email, name) values (?, ?) on conflict ((lower(email))) do nothing returning id, email, name, status`,
        [email, name],
      );
      const row = inserted.rows[0] as GlobalUserRow | undefined;
      if (row) return { user: row, created: true };
      const existing = await q<GlobalUserRow>('users').whereRaw('lower(email) = lower(?)', [email]).first();
      return { user: existing!, created: false };
    },
    async updateGlobalProfile(id: string, values: { email?: string; name?: string | null }, q: Queryable = db): Promise<void> {
      await q('users').where({ id }).update({ ...values, updated_at: q.fn.now() });
    },
    async domainVerifiedByOrg(orgId: string, domain: string, q: Queryable = db): Promise<boolean> {
      const row = await q('domains').where({ org_id: orgId, domain: domain.toLowerCase(), status: 'verified' }).first('id');
      return Boolean(row);
    },

    // ---------- memberships ----------
    async syncMembershipStatus(orgId: string, directoryId: string, userId: string, active: boolean, q: Queryable = db): Promise<void> {
      const { sql, bindings } = membershipStatusUpdate(orgId, directoryId, userId, active);
      await q.raw(sql, bindings);
    },
    /**
     * After a SCIM delete: the membership goes (its team memberships cascade) unless
     * the person is an owner or still linked by another directory of the org; the
     * directory's own teams lose them either way.
     */
    async removeMembership(orgId: string, directoryId: string, userId: string, q: Queryable = db): Promise<number> {
      await q.raw(
        `delete from team_members tm using teams t
          where t.id = tm.team_id and t.org_id = tm.org_id and t.scim_directory_id = ? and tm.org_id = ? and tm.user_id = ?`,
        [directoryId, orgId, userId],
      );
      return q('memberships')
        .where({ org_id: orgId, user_id: userId })
        .whereNot('role', 'owner')
        .whereNotExists(q('scim_users as o').select(1).whereRaw('o.org_id = memberships.org_id and o.user_id = memberships.user_id'))
        .delete();
    },
  };
}
export type ScimUserQueries = ReturnType<typeof createScimUserQueries>;
