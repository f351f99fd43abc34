import type { Queryable } from '../knex.js';
import type { BuiltinRole } from '../../authz/permissions.js';

export type MembershipRow = {
  org_id: string;
  user_id: string;
  role: BuiltinRole;
  status: 'active' | 'suspended';
  source: 'manual' | 'invite' | 'scim' | 'sso_jit' | 'domain_capture';
  created_at: Date;
  updated_at: Date;
};

/** A membership with its user's email/name and its custom role keys. */
export type MemberRow = MembershipRow & { email: string; name: string | null; roles: string[]; sort_key: string };

const customRoleKeys = `coalesce((select array_agg(r.key order by r.key) from membership_roles mr
   join roles r on r.org_id = mr.org_id and r.id = mr.role_id
  where mr.org_id = m.org_id and mr.user_id = m.user_id), '{}') as roles`;

export function createMembershipQueries(db: Queryable) {
  function members(q: Queryable, orgId: string) {
    return q('memberships as m')
      .join('users as u', 'u.id', 'm.user_id')
      .where('m.org_id', orgId)
      .select('m.*', 'u.email', 'u.name', q.raw('lower(u.email) as sort_key'), q.raw(customRoleKeys));
  }
  return {
    async insert(values: Pick<MembershipRow, 'org_id' | 'user_id' | 'role'> & Partial<Pick<MembershipRow, 'status' | 'source'>>, q: Queryable = db) {
      await q('memberships').insert(values);
    },
    async find(orgId: string, userId: string, q: Queryable = db, opts: { forUpdate?: boolean } = {}): Promise<MembershipRow | undefined> {
      const query = q<MembershipRow>('memberships').where({ org_id: orgId, user_id: userId }).first();
      return opts.forUpdate ? query.forUpdate() : query;
    },
    async findMember(orgId: string, userId: string, q: Queryable = db): Promise<MemberRow | undefined> {
      return members(q, orgId).where('m.user_id', userId).first();
    },
    /** Keyset page ordered by lower(email) (unique across users). */
    async list(orgId: string, opts: { afterEmail?: string; limit: number }, q: Queryable = db): Promise<MemberRow[]> {
      const query = members(q, orgId).orderByRaw('lower(u.email)').limit(opts.limit + 1);
      if (opts.afterEmail !== undefined) query.whereRaw('lower(u.email) > ?', [opts.afterEmail]);
      return query;
    },
    /**
     * Locks the org's active owners (in a fixed order, so concurrent callers cannot
     * deadlock) and returns their ids. Whoever wants to take ownership away from
     * someone calls this first inside its transaction: a concurrent caller waits, then
     * sees the committed state, so the org cannot lose its last active owner.
     */
    async lockActiveOwners(orgId: string, q: Queryable = db): Promise<string[]> {
      const rows = await q('memberships')
        .where({ org_id: orgId, role: 'owner', status: 'active' })
        .orderBy('user_id')
        .forUpdate()
        .select<{ user_id: string }[]>('user_id');
      return rows.map((r) => r.user_id);
    },
    async update(orgId: string, userId: string, patch: Partial<Pick<MembershipRow, 'role' | 'status'>>, q: Queryable = db) {
      await q('memberships').where({ org_id: orgId, user_id: userId }).update({ ...patch, updated_at: q.fn.now() });
    },
    async remove(orgId: string, userId: string, q: Queryable = db): Promise<number> {
      return q('memberships').where({ org_id: orgId, user_id: userId }).delete();
    },
    /** Replaces the member's custom roles with `roleIds`. */
    async setCustomRoles(orgId: string, userId: string, roleIds: readonly string[], q: Queryable = db) {
      await q('membership_roles').where({ org_id: orgId, user_id: userId }).delete();
      if (roleIds.length > 0) {
        await q('membership_roles').insert(roleIds.map((roleId) => ({ org_id: orgId, user_id: userId, role_id: roleId })));
      }
    },
  };
}
export type MembershipQueries = ReturnType<typeof createMembershipQueries>;
