import type { Queryable } from '../knex.js';

export type OrgRow = {
  id: string;
  slug: string;
  name: string;
  visibility: 'private' | 'public';
  created_at: Date;
  updated_at: Date;
};

export type OrgPatch = Partial<Pick<OrgRow, 'slug' | 'name' | 'visibility'>>;

/** An org listed for one user, with that user's membership in it. */
export type OrgWithMembershipRow = OrgRow & {
  member_role: string;
  member_status: string;
  member_source: string;
  member_roles: string[];
  member_since: Date;
};

const ORG_COLUMNS = ['o.id', 'o.slug', 'o.name', 'o.visibility', 'o.created_at', 'o.updated_at'];

export function createOrgQueries(db: Queryable) {
  return {
    async insert(values: Pick<OrgRow, 'slug' | 'name'> & Partial<Pick<OrgRow, 'visibility'>>, q: Queryable = db): Promise<OrgRow> {
      const [row] = await q<OrgRow>('organizations').insert(values).returning(['id', 'slug', 'name', 'visibility', 'created_at', 'updated_at']);
      return row!;
    },
    async findById(id: string, q: Queryable = db, opts: { forUpdate?: boolean } = {}): Promise<OrgRow | undefined> {
      const query = q('organizations as o').where('o.id', id).first<OrgRow | undefined>(ORG_COLUMNS);
      return opts.forUpdate ? query.forUpdate() : query;
    },
    /** Every org, keyset-paged by slug (unique, lowercase by constraint). */
    async listAll(opts: { afterSlug?: string; limit: number }, q: Queryable = db): Promise<OrgRow[]> {
      const query = q('organizations as o').select(ORG_COLUMNS).orderBy('o.slug').limit(opts.limit + 1);
      if (opts.afterSlug !== undefined) query.where('o.slug', '>', opts.afterSlug);
      return query;
    },
    /** The orgs one user belongs to (any membership status), with its role there: the org switcher. */
    async listForUser(userId: string, opts: { afterSlug?: string; limit: number }, q: Queryable = db): Promise<OrgWithMembershipRow[]> {
      const query = q('memberships as m')
        .join('organizations as o', 'o.id', 'm.org_id')
        .where('m.user_id', userId)
        .select([
          ...ORG_COLUMNS,
          'm.role as member_role',
          'm.status as member_status',
          'm.source as member_source',
          'm.created_at as member_since',
          q.raw(`coalesce((select array_agg(r.key order by r.key) from membership_roles mr
                   join roles r on r.org_id = mr.org_id and r.id = mr.role_id
                  where mr.org_id = m.org_id and mr.user_id = m.user_id), '{}') as member_roles`),
        ])
        .orderBy('o.slug')
        .limit(opts.limit + 1);
      if (opts.afterSlug !== undefined) query.where('o.slug', '>', opts.afterSlug);
      return query;
    },
    async update(id: string, patch: OrgPatch, q: Queryable = db): Promise<OrgRow> {
      const [row] = await q<OrgRow>('organizations')
        .where({ id })
        .update({ ...patch, updated_at: q.fn.now() })
        .returning(['id', 'slug', 'name', 'visibility', 'created_at', 'updated_at']);
      return row!;
    },
    async remove(id: string, q: Queryable = db): Promise<number> {
      return q('organizations').where({ id }).delete();
    },
    /** What an org holds, for the delete check and the audit trail of the deletion. */
    async contents(orgId: string, q: Queryable = db): Promise<{ projects: number; members: number; teams: number; roles: number }> {
      const count = async (table: string) => {
        const row = await q(table).where({ org_id: orgId }).count<{ count: number }[]>({ count: '*' }).first();
        return Number(row?.count ?? 0);
      };
      return { projects: await count('projects'), members: await count('memberships'), teams: await count('teams'), roles: await count('roles') };
    },
  };
}
export type OrgQueries = ReturnType<typeof createOrgQueries>;
