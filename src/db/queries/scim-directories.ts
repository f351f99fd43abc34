import type { Queryable } from '../knex.js';

export type GroupRoleMapping = { group: string; role: string };

export type ScimDirectoryRow = {
  id: string;
  org_id: string;
  name: string;
  token_hash: string;
  token_rotated_at: Date;
  default_role: 'admin' | 'member' | 'viewer';
  group_role_mappings: GroupRoleMapping[];
  enabled: boolean;
  created_at: Date;
  updated_at: Date;
};

export function createScimDirectoryQueries(db: Queryable) {
  return {
    async insert(
      values: Pick<ScimDirectoryRow, 'org_id' | 'name' | 'token_hash' | 'default_role' | 'group_role_mappings'>,
      q: Queryable = db,
    ): Promise<ScimDirectoryRow> {
      const [row] = await q<ScimDirectoryRow>('scim_directories')
        .insert({ ...values, group_role_mappings: JSON.stringify(values.group_role_mappings) as never })
        .returning('*');
      return row!;
    },
    async findInOrg(orgId: string, id: string, q: Queryable = db, opts: { forUpdate?: boolean } = {}) {
      const query = q<ScimDirectoryRow>('scim_directories').where({ org_id: orgId, id }).first();
      return opts.forUpdate ? query.forUpdate() : query;
    },
    /** Token lookup uses the unique hash index; callers still compare digests in constant time. */
    async findByTokenHash(hash: string, q: Queryable = db): Promise<ScimDirectoryRow | undefined> {
      return q<ScimDirectoryRow>('scim_directories').where({ token_hash: hash }).first();
    },
    /**
     * Keyset page ordered by (created_at, id). created_at is compared at millisecond
     * precision because the cursor carries a JS Date (PostgreSQL keeps microseconds).
     */
    async listByOrg(orgId: string, limit: number, after: { createdAt: string; id: string } | undefined, q: Queryable = db) {
      const query = q<ScimDirectoryRow>('scim_directories')
        .where({ org_id: orgId })
        .orderByRaw(`date_trunc('milliseconds', created_at), id`);
      if (after) query.whereRaw(`(date_trunc('milliseconds', created_at), id) > (?::timestamptz, ?::uuid)`, [after.createdAt, after.id]);
      return query.limit(limit + 1);
    },
    async update(
      orgId: string,
      id: string,
      patch: Partial<Pick<ScimDirectoryRow, 'name' | 'default_role' | 'group_role_mappings' | 'enabled' | 'token_hash'>> & {
        token_rotated_at?: unknown;
      },
      q: Queryable = db,
    ): Promise<ScimDirectoryRow | undefined> {
      const values: Record<string, unknown> = { ...patch, updated_at: q.fn.now() };
      if (patch.group_role_mappings) values.group_role_mappings = JSON.stringify(patch.group_role_mappings);
      const [row] = await q<ScimDirectoryRow>('scim_directories').where({ org_id: orgId, id }).update(values).returning('*');
      return row;
    },
    async remove(orgId: string, id: string, q: Queryable = db): Promise<number> {
      return q('scim_directories').where({ org_id: orgId, id }).delete();
    },
  };
}
export type ScimDirectoryQueries = ReturnType<typeof createScimDirectoryQueries>;
