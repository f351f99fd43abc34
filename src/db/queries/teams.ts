import type { Queryable } from '../knex.js';

export type TeamRow = {
  id: string;
  org_id: string;
  name: string;
  description: string | null;
  scim_directory_id: string | null;
  created_at: Date;
  updated_at: Date;
};
/** A team with what its GET shows: member count and the keys of its roles. */
export type TeamView = TeamRow & { member_count: number; role_keys: string[]; sort_name: string };

export type TeamMemberView = { user_id: string; email: string; name: string | null; created_at: Date };

function teamView(q: Queryable) {
  return q('teams as t').select(
    't.*',
    q.raw('lower(t.name) as sort_name'),
    q.raw('(select count(*)::int from team_members tm where tm.org_id = t.org_id and tm.team_id = t.id) as member_count'),
    q.raw(
      `coalesce((select array_agg(r.key order by r.key) from team_roles tr join roles r on r.org_id = tr.org_id and r.id = tr.role_id
                  where tr.org_id = t.org_id and tr.team_id = t.id), '{}') as role_keys`,
    ),
  );
}

export function createTeamQueries(db: Queryable) {
  return {
    async list(orgId: string, page: { after?: [string, string]; limit: number }, q: Queryable = db): Promise<TeamView[]> {
      const query = teamView(q).where('t.org_id', orgId).orderByRaw('lower(t.name), t.id').limit(page.limit + 1);
      if (page.after) query.whereRaw('(lower(t.name), t.id) > (?, ?::uuid)', page.after);
      return query;
    },
    async findView(orgId: string, teamId: string, q: Queryable = db): Promise<TeamView | undefined> {
      return teamView(q).where({ 't.org_id': orgId, 't.id': teamId }).first();
    },
    /** The team row locked for a write (serialises concurrent changes to one team). */
    async findForUpdate(orgId: string, teamId: string, q: Queryable): Promise<TeamRow | undefined> {
      return q<TeamRow>('teams').where({ org_id: orgId, id: teamId }).forUpdate().first();
    },
    async insert(values: { org_id: string; name: string; description: string | null }, q: Queryable = db): Promise<TeamRow> {
      const [row] = await q<TeamRow>('teams').insert(values).returning('*');
      return row!;
    },
    async update(orgId: string, teamId: string, values: Partial<Pick<TeamRow, 'name' | 'description'>>, q: Queryable = db) {
      await q('teams').where({ org_id: orgId, id: teamId }).update({ ...values, updated_at: q.fn.now() });
    },
    async remove(orgId: string, teamId: string, q: Queryable = db) {
      return q('teams').where({ org_id: orgId, id: teamId }).delete();
    },
    /** Custom roles of the org by key: what a `roles` list resolves to. */
    async rolesByKeys(orgId: string, keys: string[], q: Queryable = db): Promise<{ id: string; key: string; permissions: string[] }[]> {
      if (keys.length === 0) return [];
      return q('roles').where('org_id', orgId).whereIn('key', keys).select('id', 'key', 'permissions');
    },
    /** The custom roles attached to a team, with their permissions. */
    async teamRolePermissions(orgId: string, teamId: string, q: Queryable = db): Promise<{ key: string; permissions: string[] }[]> {
      return q('team_roles as tr')
        .join('roles as r', 'r.id', 'tr.role_id')
        .where({ 'tr.org_id': orgId, 'tr.team_id': teamId })
        .select('r.key', 'r.permissions');
    },
    async replaceRoles(orgId: string, teamId: string, roleIds: string[], q: Queryable) {
      await q('team_roles').where({ org_id: orgId, team_id: teamId }).delete();
      if (roleIds.length > 0) {
        await q('team_roles').insert(roleIds.map((roleId) => ({ org_id: orgId, team_id: teamId, role_id: roleId })));
      }
    },
    async listMembers(orgId: string, teamId: string, page: { after?: string; limit: number }, q: Queryable = db): Promise<TeamMemberView[]> {
      const query = q('team_members as tm')
        .join('users as u', 'u.id', 'tm.user_id')
        .where({ 'tm.org_id': orgId, 'tm.team_id': teamId })
        .orderBy('tm.user_id')
        .limit(page.limit + 1)
        .select('tm.user_id', 'u.email', 'u.name', 'tm.created_at');
      if (page.after) query.where('tm.user_id', '>', page.after);
      return query;
    },
    async findMember(orgId: string, teamId: string, userId: string, q: Queryable = db): Promise<TeamMemberView | undefined> {
      return q('team_members as tm')
        .join('users as u', 'u.id', 'tm.user_id')
        .where({ 'tm.org_id': orgId, 'tm.team_id': teamId, 'tm.user_id': userId })
        .first('tm.user_id', 'u.email', 'u.name', 'tm.created_at');
    },
    async isOrgMember(orgId: string, userId: string, q: Queryable = db): Promise<boolean> {
      return Boolean(await q('memberships').where({ org_id: orgId, user_id: userId }).first('user_id'));
    },
    /** Inserts unless already there; false when the user already was in the team. */
    async addMember(orgId: string, teamId: string, userId: string, q: Queryable): Promise<boolean> {
      const rows = await q('team_members')
        .insert({ org_id: orgId, team_id: teamId, user_id: userId })
        .onConflict(['team_id', 'user_id'])
        .ignore()
        .returning('user_id');
      return rows.length === 1;
    },
    /** `returning` rather than the affected-row count, which knex-pglite does not report reliably. */
    async removeMember(orgId: string, teamId: string, userId: string, q: Queryable): Promise<number> {
      const rows = await q('team_members').where({ org_id: orgId, team_id: teamId, user_id: userId }).delete().returning('user_id');
      return rows.length;
    },
  };
}
export type TeamQueries = ReturnType<typeof createTeamQueries>;
