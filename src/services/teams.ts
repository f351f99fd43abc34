import { assertHoldsAll } from './roles.js';
import type { OrgAccess } from './authz.js';
import type { CoreDeps } from '../context.js';
import type { Queryable } from '../db/knex.js';
import { createTeamQueries, type TeamMemberView, type TeamRow, type TeamView } from '../db/queries/teams.js';
import { actorOf, type Principal } from '../auth/principal.js';
import { recordAudit } from '../audit/record.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import { isUuid } from '../http/params.js';
import { decodeCursor, toPage, type ListQuery } from '../http/pagination.js';

export type TeamInput = { name: string; description?: string | null };
export type TeamPatch = { name?: string; description?: string | null; roles?: string[] };

export function presentTeam(t: TeamView) {
  return {
    id: t.id,
    orgId: t.org_id,
    name: t.name,
    description: t.description,
    memberCount: t.member_count,
    roles: t.role_keys,
    scimDirectoryId: t.scim_directory_id,
    createdAt: t.created_at,
    updatedAt: t.updated_at,
  };
}

export const presentTeamMember = (m: TeamMemberView) => ({ userId: m.user_id, email: m.email, name: m.name, addedAt: m.created_at });

/** Teams synced from an IdP belong to the directory: edits here would be overwritten on the next push. */
function assertNotScimManaged(team: TeamRow) {
  if (team.scim_directory_id) {
    throw conflict('team.managed_by_scim', 'This team is managed by a SCIM directory; change it in the identity provider', {
      scimDirectoryId: team.scim_directory_id,
    });
  }
}

export function createTeamService(deps: CoreDeps) {
  const { db } = deps;
  const queries = createTeamQueries(db);

  /** The team of this org, locked, and writable here; another org's team is a 404. */
  async function writableTeam(orgId: string, teamId: string, trx: Queryable): Promise<TeamRow> {
    const team = isUuid(teamId) ? await queries.findForUpdate(orgId, teamId, trx) : undefined;
    if (!team) throw notFound('Team');
    assertNotScimManaged(team);
    return team;
  }

  async function viewOf(orgId: string, teamId: string, q: Queryable) {
    const view = await queries.findView(orgId, teamId, q);
    if (!view) throw notFound('Team');
    return presentTeam(view);
  }

  /**
   * Role keys → ids; any unknown key is a 400 that names it. Roles on a team reach
   * everyone in it (the caller may join it), so newly attached roles may carry only
   * permissions the caller holds.
   */
  async function resolveRoleKeys(access: OrgAccess, teamId: string, keys: string[], q: Queryable): Promise<string[]> {
    const unique = [...new Set(keys)];
    const found = await queries.rolesByKeys(access.orgId, unique, q);
    const unknown = unique.filter((k) => !found.some((r) => r.key === k));
    if (unknown.length > 0) {
      throw badRequest('validation.unknown_role', `Unknown role key(s): ${unknown.join(', ')}`, { unknownRoles: unknown });
    }
    const held = new Set((await queries.teamRolePermissions(access.orgId, teamId, q)).map((r) => r.key));
    assertHoldsAll(access, [...new Set(found.filter((r) => !held.has(r.key)).flatMap((r) => r.permissions))], 'These team roles');
    return found.map((r) => r.id);
  }

  return {
    async list(orgId: string, page: ListQuery) {
      const after = page.after ? (decodeCursor(page.after, 2) as [string, string]) : undefined;
      const rows = await queries.list(orgId, { after, limit: page.limit });
      return toPage(rows, page.limit, (t) => [t.sort_name, t.id], presentTeam);
    },

    async get(orgId: string, teamId: string) {
      if (!isUuid(teamId)) throw notFound('Team');
      return viewOf(orgId, teamId, db);
    },

    async create(principal: Principal, orgId: string, input: TeamInput) {
      return db.transaction(async (trx) => {
        const row = await queries.insert({ org_id: orgId, name: input.name, description: input.description ?? null }, trx);
        const view = await viewOf(orgId, row.id, trx);
        await recordAudit(trx, { orgId, actor: actorOf(principal), action: 'team.created', target: { type: 'team', id: row.id }, after: view });
        return view;
      });
    },

    async update(access: OrgAccess, teamId: string, patch: TeamPatch) {
      const { principal, orgId } = access;
      return db.transaction(async (trx) => {
        await writableTeam(orgId, teamId, trx);
        const before = await viewOf(orgId, teamId, trx);
        const fields: { name?: string; description?: string | null } = {};
        if (patch.name !== undefined) fields.name = patch.name;
        if (patch.description !== undefined) fields.description = patch.description;
        await queries.update(orgId, teamId, fields, trx);
        if (patch.roles !== undefined) await queries.replaceRoles(orgId, teamId, await resolveRoleKeys(access, teamId, patch.roles, trx), trx);
        const after = await viewOf(orgId, teamId, trx);
        await recordAudit(trx, { orgId, actor: actorOf(principal), action: 'team.updated', target: { type: 'team', id: teamId }, before, after });
        return after;
      });
    },

    async remove(principal: Principal, orgId: string, teamId: string) {
      await db.transaction(async (trx) => {
        await writableTeam(orgId, teamId, trx);
        const before = await viewOf(orgId, teamId, trx);
        await queries.remove(orgId, teamId, trx);
        await recordAudit(trx, { orgId, actor: actorOf(principal), action: 'team.deleted', target: { type: 'team', id: teamId }, before });
      });
    },

    async listMembers(orgId: string, teamId: string, page: ListQuery) {
      if (!isUuid(teamId) || !(await queries.findView(orgId, teamId))) throw notFound('Team');
      const after = page.after ? String(decodeCursor(page.after, 1)[0]) : undefined;
      if (after !== undefined && !isUuid(after)) throw badRequest('validation.invalid_cursor', 'The `after` cursor is not valid');
      const rows = await queries.listMembers(orgId, teamId, { after, limit: page.limit });
      return toPage(rows, page.limit, (m) => [m.user_id], presentTeamMember);
    },

    async addMember(access: OrgAccess, teamId: string, userId: string) {
      const { principal, orgId } = access;
      return db.transaction(async (trx) => {
        await writableTeam(orgId, teamId, trx);
        // Joining a team gives its roles: only to someone whose roles the caller could hand out itself.
        const teamRoles = await queries.teamRolePermissions(orgId, teamId, trx);
        assertHoldsAll(access, [...new Set(teamRoles.flatMap((r) => r.permissions))], 'This team\'s roles');
        // Checked here rather than left to the foreign key so the caller gets a precise answer.
        if (!isUuid(userId) || !(await queries.isOrgMember(orgId, userId, trx))) {
          throw new AppError('team.user_not_member', 422, 'The user is not a member of this organization; add them to the organization first', { userId });
        }
        if (!(await queries.addMember(orgId, teamId, userId, trx))) {
          throw conflict('conflict.team_member_exists', 'The user is already a member of this team', { userId });
        }
        const member = (await queries.findMember(orgId, teamId, userId, trx))!;
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'team.member_added',
          target: { type: 'team', id: teamId },
          after: { userId },
        });
        return presentTeamMember(member);
      });
    },

    async removeMember(principal: Principal, orgId: string, teamId: string, userId: string) {
      await db.transaction(async (trx) => {
        await writableTeam(orgId, teamId, trx);
        if (!isUuid(userId) || (await queries.removeMember(orgId, teamId, userId, trx)) === 0) throw notFound('Team member');
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'team.member_removed',
          target: { type: 'team', id: teamId },
          before: { userId },
        });
      });
    },
  };
}
export type TeamService = ReturnType<typeof createTeamService>;
