import type { Queryable } from '../knex.js';

export type Visibility = 'private' | 'internal' | 'public';
export type ProjectRow = {
  id: string;
  org_id: string;
  name: string;
  description: string | null;
  visibility: Visibility;
  created_at: Date;
  updated_at: Date;
};
export type ProjectListRow = ProjectRow & { sort_name: string };

export type GrantRow = {
  id: string;
  org_id: string;
  project_id: string;
  subject_type: 'user' | 'team' | 'role';
  user_id: string | null;
  team_id: string | null;
  role_id: string | null;
  builtin_role: string | null;
  level: 'read' | 'write' | 'admin';
  created_at: Date;
  updated_at: Date;
};
/** A grant with the names of its subject and whether its user is outside the org. */
export type GrantView = GrantRow & {
  user_email: string | null;
  user_name: string | null;
  team_name: string | null;
  role_key: string | null;
  role_name: string | null;
  external: boolean;
};

/** The subject columns of a grant, exactly one set (see the table's check constraint). */
export type GrantSubject =
  | { subject_type: 'user'; user_id: string }
  | { subject_type: 'team'; team_id: string }
  | { subject_type: 'role'; role_id: string }
  | { subject_type: 'role'; builtin_role: string };

function grantView(q: Queryable) {
  return q('project_grants as g')
    .leftJoin('users as u', 'u.id', 'g.user_id')
    .leftJoin('teams as t', (j) => j.on('t.org_id', 'g.org_id').andOn('t.id', 'g.team_id'))
    .leftJoin('roles as r', (j) => j.on('r.org_id', 'g.org_id').andOn('r.id', 'g.role_id'))
    .select(
      'g.*',
      'u.email as user_email',
      'u.name as user_name',
      't.name as team_name',
      'r.key as role_key',
      'r.name as role_name',
      q.raw(
        `(g.user_id is not null and not exists (select 1 from memberships m where m.org_id = g.org_id and m.user_id = g.user_id)) as external`,
      ),
    );
}

export function createProjectQueries(db: Queryable) {
  return {
    /** Projects of an org by name; `onlyIds` restricts to the ones a caller may see. */
    async list(orgId: string, page: { after?: [string, string]; limit: number; onlyIds?: string[] }, q: Queryable = db): Promise<ProjectListRow[]> {
      const query = q('projects')
        .where('org_id', orgId)
        .select('*', q.raw('lower(name) as sort_name'))
        .orderByRaw('lower(name), id')
        .limit(page.limit + 1);
      if (page.after) query.whereRaw('(lower(name), id) > (?, ?::uuid)', page.after);
      if (page.onlyIds) query.whereIn('id', page.onlyIds);
      return query;
    },
    async find(orgId: string, projectId: string, q: Queryable = db): Promise<ProjectRow | undefined> {
      return q<ProjectRow>('projects').where({ org_id: orgId, id: projectId }).first();
    },
    async findForUpdate(orgId: string, projectId: string, q: Queryable): Promise<ProjectRow | undefined> {
      return q<ProjectRow>('projects').where({ org_id: orgId, id: projectId }).forUpdate().first();
    },
    async insert(values: Pick<ProjectRow, 'org_id' | 'name' | 'description' | 'visibility'>, q: Queryable = db): Promise<ProjectRow> {
      const [row] = await q<ProjectRow>('projects').insert(values).returning('*');
      return row!;
    },
    async update(orgId: string, projectId: string, values: Partial<Pick<ProjectRow, 'name' | 'description' | 'visibility'>>, q: Queryable) {
      const [row] = await q<ProjectRow>('projects')
        .where({ org_id: orgId, id: projectId })
        .update({ ...values, updated_at: q.fn.now() })
        .returning('*');
      return row!;
    },
    async remove(orgId: string, projectId: string, q: Queryable) {
      await q('projects').where({ org_id: orgId, id: projectId }).delete();
    },
    async countGrants(orgId: string, projectId: string, q: Queryable = db): Promise<number> {
      const row = await q('project_grants').where({ org_id: orgId, project_id: projectId }).count<{ count: number }[]>({ count: '*' }).first();
      return Number(row?.count ?? 0);
    },
    async listGrants(orgId: string, projectId: string, page: { after?: string; limit: number }, q: Queryable = db): Promise<GrantView[]> {
      const query = grantView(q).where({ 'g.org_id': orgId, 'g.project_id': projectId }).orderBy('g.id').limit(page.limit + 1);
      if (page.after) query.where('g.id', '>', page.after);
      return query;
    },
    async findGrant(orgId: string, projectId: string, grantId: string, q: Queryable = db): Promise<GrantView | undefined> {
      return grantView(q).where({ 'g.org_id': orgId, 'g.project_id': projectId, 'g.id': grantId }).first();
    },
    /** The grant that already names this subject on the project, if any. */
    async findGrantBySubject(orgId: string, projectId: string, subject: GrantSubject, q: Queryable): Promise<GrantRow | undefined> {
      const { subject_type: _type, ...column } = subject;
      return q<GrantRow>('project_grants').where({ org_id: orgId, project_id: projectId, ...column }).first();
    },
    async insertGrant(values: { org_id: string; project_id: string; level: string } & GrantSubject, q: Queryable): Promise<GrantRow> {
      const [row] = (await q('project_grants').insert(values).returning('*')) as GrantRow[];
      return row!;
    },
    async updateGrantLevel(orgId: string, projectId: string, grantId: string, level: string, q: Queryable) {
      await q('project_grants').where({ org_id: orgId, project_id: projectId, id: grantId }).update({ level, updated_at: q.fn.now() });
    },
    async removeGrant(orgId: string, projectId: string, grantId: string, q: Queryable) {
      await q('project_grants').where({ org_id: orgId, project_id: projectId, id: grantId }).delete();
    },
    async userExists(userId: string, q: Queryable = db): Promise<boolean> {
      return Boolean(await q('users').where({ id: userId }).first('id'));
    },
    async teamInOrg(orgId: string, teamId: string, q: Queryable = db): Promise<boolean> {
      return Boolean(await q('teams').where({ org_id: orgId, id: teamId }).first('id'));
    },
    async roleIdByKey(orgId: string, key: string, q: Queryable = db): Promise<string | undefined> {
      const row = await q('roles').where({ org_id: orgId, key }).first('id');
      return row?.id as string | undefined;
    },
    async orgExists(orgId: string, q: Queryable = db): Promise<boolean> {
      return Boolean(await q('organizations').where({ id: orgId }).first('id'));
    },
  };
}
export type ProjectQueries = ReturnType<typeof createProjectQueries>;
