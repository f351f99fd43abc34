import type { Queryable } from '../knex.js';

export type RoleRow = {
  id: string;
  org_id: string;
  key: string;
  name: string;
  description: string | null;
  permissions: string[];
  created_at: Date;
  updated_at: Date;
};

export type RoleUsage = { members: number; teams: number; grants: number };

export function createRoleQueries(db: Queryable) {
  return {
    async insert(values: Pick<RoleRow, 'org_id' | 'key' | 'name' | 'description' | 'permissions'>, q: Queryable = db): Promise<RoleRow> {
      const [row] = await q<RoleRow>('roles').insert(values).returning('*');
      return row!;
    },
    async findByKey(orgId: string, key: string, q: Queryable = db, opts: { forUpdate?: boolean } = {}): Promise<RoleRow | undefined> {
      const query = q<RoleRow>('roles').where({ org_id: orgId, key }).first();
      return opts.forUpdate ? query.forUpdate() : query;
    },
    async findByKeys(orgId: string, keys: readonly string[], q: Queryable = db): Promise<RoleRow[]> {
      if (keys.length === 0) return [];
      return q<RoleRow>('roles').where({ org_id: orgId }).whereIn('key', [...keys]);
    },
    /** Keyset page ordered by key (unique per org). */
    async list(orgId: string, opts: { afterKey?: string; limit: number }, q: Queryable = db): Promise<RoleRow[]> {
      const query = q<RoleRow>('roles').where({ org_id: orgId }).orderBy('key').limit(opts.limit + 1);
      if (opts.afterKey !== undefined) query.where('key', '>', opts.afterKey);
      return query;
    },
    async update(orgId: string, id: string, patch: Partial<Pick<RoleRow, 'name' | 'description' | 'permissions'>>, q: Queryable = db): Promise<RoleRow> {
      const [row] = await q<RoleRow>('roles').where({ org_id: orgId, id }).update({ ...patch, updated_at: q.fn.now() }).returning('*');
      return row!;
    },
    async remove(orgId: string, id: string, q: Queryable = db): Promise<number> {
      return q('roles').where({ org_id: orgId, id }).delete();
    },
    /** Where a role is assigned: members (membership_roles), teams (team_roles), project grants. */
    async usage(orgId: string, roleId: string, q: Queryable = db): Promise<RoleUsage> {
      const count = async (table: string) => {
        const row = await q(table).where({ org_id: orgId, role_id: roleId }).count<{ count: number }[]>({ count: '*' }).first();
        return Number(row?.count ?? 0);
      };
      return { members: await count('membership_roles'), teams: await count('team_roles'), grants: await count('project_grants') };
    },
  };
}
export type RoleQueries = ReturnType<typeof createRoleQueries>;
