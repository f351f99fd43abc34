import type { Queryable } from '../knex.js';

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
export type SqlPredicate = { sql: string; bindings: (string | number | boolean)[] };

/** SQL for SCIM users: the directory's link rows, and the global accounts and memberships they drive. */
export function createScimUserQueries(db: Queryable) {
  function scoped(directoryId: string, where: SqlPredicate | undefined, q: Queryable) {
    const query = q<ScimUserRow>('scim_users as su').where('su.directory_id', directoryId);
    if (where) query.whereRaw(where.sql, where.bindings);
    return query;
  }

  return {
    async find(directoryId: string, id: string, q: Queryable = db, opts: { forUpdate?: boolean } = {}) {
      const query = q<ScimUserRow>('scim_users').where({ directory_id: directoryId, id }).first();
      return (opts.forUpdate ? query.forUpdate() : query) as Promise<ScimUserRow | undefined>;
    },
    async count(directoryId: string, where: SqlPredicate | undefined, q: Queryable = db): Promise<number> {
      const row = await scoped(directoryId, where, q).count<{ count: number }[]>({ count: '*' }).first();
      return Number(row?.count ?? 0);
    },
    async page(
      directoryId: string,
      where: SqlPredicate | undefined,
      sort: { sql: string; descending: boolean } | undefined,
      offset: number,
      limit: number,
      q: Queryable = db,
    ): Promise<ScimUserRow[]> {
      const query = scoped(directoryId, where, q).select('su.*');
      if (sort) query.orderByRaw(`${sort.sql} ${sort.descending ? 'desc' : 'asc'} nulls last`);
      return query.orderBy([{ column: 'su.created_at' }, { column: 'su.id' }]).offset(offset).limit(limit);
    },
    async insert(
      values: Pick<ScimUserRow, 'org_id' | 'directory_id' | 'user_id' | 'user_name' | 'external_id' | 'active' | 'attributes'>,
      q: Queryable = db,
    ): Promise<ScimUserRow> {
      const [row] = await q<ScimUserRow>('scim_users')
        .insert({ ...values, attributes: JSON.stringify(values.attributes) as never })
        .returning('*');
      return row!;
    },
    async update(
      id: string,
      values: Pick<ScimUserRow, 'user_name' | 'external_id' | 'active' | 'attributes'>,
      q: Queryable = db,
    ): Promise<ScimUserRow> {
      const [row] = await q<ScimUserRow>('scim_users')
        .where({ id })
        .update({
          ...values,
          attributes: JSON.stringify(values.attributes) as never,
          version: q.raw('version + 1') as never,
          updated_at: q.fn.now() as never,
        })
        .returning('*');
      return row!;
    },
    async remove(id: string, q: Queryable = db): Promise<void> {
      await q('scim_users').where({ id }).delete();
    },

    // ---------- global accounts ----------
    async findGlobalByEmail(email: string, q: Queryable = db): Promise<GlobalUserRow | undefined> {
      return q<GlobalUserRow>('users').whereRaw('lower(email) = lower(?)', [email]).first();
    },
    async findGlobal(id: string, q: Queryable = db): Promise<GlobalUserRow | undefined> {
      return q<GlobalUserRow>('users').where({ id }).first();
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
    /**
     * Inserts a scim membership unless the person is already a member (then it is adopted as it is).
     * True when it inserted one.
     */
    async ensureMembership(orgId: string, userId: string, role: string, status: 'active' | 'suspended', q: Queryable = db): Promise<boolean> {
      const res = await q.raw(
        `insert into memberships (org_id, user_id, role, status, source) values (?, ?, ?, ?, 'scim') on conflict (org_id, user_id) do nothing returning user_id`,
        [orgId, userId, role, status],
      );
      return res.rows.length > 0;
    },
    /**
     * Follows the SCIM `active` flag. Owners are never suspended by a directory (an
     * org keeps its owners), and a user still active in another directory of the
     * same org stays active.
     */
    async syncMembershipStatus(orgId: string, directoryId: string, userId: string, active: boolean, q: Queryable = db): Promise<number> {
      const status = active ? 'active' : 'suspended';
      return q('memberships')
        .where({ org_id: orgId, user_id: userId })
        .whereNot('role', 'owner')
        .whereNot('status', status)
        .modify((b) => {
          if (!active) {
            b.whereNotExists(
              q('scim_users as o')
                .select(1)
                .whereRaw('o.org_id = memberships.org_id and o.user_id = memberships.user_id')
                .whereNot('o.directory_id', directoryId)
                .where('o.active', true),
            );
          }
        })
        .update({ status, updated_at: q.fn.now() });
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

/**
 * A PostgreSQL array literal bound as ONE parameter (`?::text[]`, `?::uuid[]`).
 * knex expands a JS array binding into a list of parameters, which `= any(?)` cannot take.
 */
export function pgArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}
