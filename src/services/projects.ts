import type { CoreDeps } from '../context.js';
import type { Queryable } from '../db/knex.js';
import {
  createProjectQueries,
  type GrantSubject,
  type GrantView,
  type ProjectRow,
  type Visibility,
} from '../db/queries/projects.js';
import { actorOf, type Principal } from '../auth/principal.js';
import { recordAudit } from '../audit/record.js';
import { badRequest, conflict, forbidden, notFound } from '../errors.js';
import { isUuid } from '../http/params.js';
import { decodeCursor, toPage, type ListQuery } from '../http/pagination.js';
import { isBuiltinRole } from '../authz/permissions.js';
import type { AuthzService, OrgAccess } from './authz.js';
import type { AccessService } from './access.js';

export type GrantLevel = 'read' | 'write' | 'admin';
export type ProjectInput = { name: string; visibility: Visibility; description?: string | null };
export type ProjectPatch = { name?: string; visibility?: Visibility; description?: string | null };
export type GrantInput = { subject: { type: 'user' | 'team' | 'role'; id: string }; level: GrantLevel };

declare const adminScope: unique symbol;
/** Proof that the caller may administer this project: only `requireProjectAdmin` makes one. */
export type ProjectAdminScope = { readonly orgId: string; readonly projectId: string; readonly [adminScope]: true };

export const presentProject = (p: ProjectRow) => ({
  id: p.id,
  orgId: p.org_id,
  name: p.name,
  description: p.description,
  visibility: p.visibility,
  createdAt: p.created_at,
  updatedAt: p.updated_at,
});

export function presentGrant(g: GrantView) {
  const subject =
    g.subject_type === 'user'
      ? { type: 'user' as const, id: g.user_id, email: g.user_email, name: g.user_name }
      : g.subject_type === 'team'
        ? { type: 'team' as const, id: g.team_id, name: g.team_name }
        : g.builtin_role
          ? { type: 'role' as const, id: g.builtin_role, builtin: true, name: g.builtin_role }
          : { type: 'role' as const, id: g.role_key, builtin: false, name: g.role_name };
  return {
    id: g.id,
    projectId: g.project_id,
    subject,
    level: g.level,
    external: g.external,
    createdAt: g.created_at,
    updatedAt: g.updated_at,
  };
}

export function createProjectService(deps: CoreDeps, authz: AuthzService, access: AccessService) {
  const { db } = deps;
  const queries = createProjectQueries(db);

  async function projectOf(orgId: string, projectId: string, q: Queryable = db): Promise<ProjectRow> {
    const project = isUuid(projectId) ? await queries.find(orgId, projectId, q) : undefined;
    if (!project) throw notFound('Project');
    return project;
  }

  /**
   * Who may change a project and its grants: `projects:manage` in the org, or `admin`
   * on this very project. A project the caller cannot even read is a 404.
   */
  async function requireProjectAdmin(principal: Principal, orgId: string, projectId: string): Promise<ProjectAdminScope> {
    const org = await authz.resolveOrg(principal, orgId);
    const project = await projectOf(org.orgId, projectId);
    const scope = { orgId: org.orgId, projectId: project.id } as ProjectAdminScope;
    if (principal.kind === 'service' || org.permissions.has('projects:manage')) return scope;
    const decision = await access.decide({ userId: principal.userId, projectId: project.id, sessionId: principal.sessionId });
    const level = decision?.level ?? 'none';
    if (level === 'none') throw notFound('Project');
    if (level !== 'admin') {
      throw forbidden('forbidden', 'Missing permission projects:manage or admin access to this project', { permission: 'projects:manage' });
    }
    return scope;
  }

  /** Grant subject in the request → grant columns; a subject the org does not know is a 400 naming it. */
  async function resolveSubject(orgId: string, subject: GrantInput['subject'], q: Queryable): Promise<GrantSubject> {
    const unknown = (what: string) =>
      badRequest('validation.unknown_subject', `Unknown ${what}: ${subject.id}`, { subject });
    switch (subject.type) {
      case 'user':
        // Any existing user: a non-member becomes an outside collaborator on this project only.
        if (!isUuid(subject.id) || !(await queries.userExists(subject.id, q))) throw unknown('user');
        return { subject_type: 'user', user_id: subject.id };
      case 'team':
        if (!isUuid(subject.id) || !(await queries.teamInOrg(orgId, subject.id, q))) throw unknown('team');
        return { subject_type: 'team', team_id: subject.id };
      case 'role': {
        if (isBuiltinRole(subject.id)) return { subject_type: 'role', builtin_role: subject.id };
        const roleId = await queries.roleIdByKey(orgId, subject.id, q);
        if (!roleId) throw unknown('role');
        return { subject_type: 'role', role_id: roleId };
      }
    }
  }

  async function grantOf(orgId: string, projectId: string, grantId: string, q: Queryable) {
    const grant = isUuid(grantId) ? await queries.findGrant(orgId, projectId, grantId, q) : undefined;
    if (!grant) throw notFound('Grant');
    return grant;
  }

  return {
    requireProjectAdmin,

    /** Service tokens and `projects:manage` see every project; other members only those they can read. */
    async list(principal: Principal, orgId: string, page: ListQuery) {
      const org = await authz.requireOrg(principal, orgId, 'projects:read');
      let onlyIds: string[] | undefined;
      if (principal.kind === 'user' && !org.permissions.has('projects:manage')) {
        const decisions = await access.decideForUserInOrg(org.orgId, principal.userId, principal.sessionId);
        onlyIds = decisions.filter((d) => d.level !== 'none').map((d) => d.projectId);
      }
      const after = page.after ? (decodeCursor(page.after, 2) as [string, string]) : undefined;
      if (after && !isUuid(after[1])) throw badRequest('validation.invalid_cursor', 'The `after` cursor is not valid');
      const rows = await queries.list(org.orgId, { after, limit: page.limit, onlyIds });
      return toPage(rows, page.limit, (p) => [p.sort_name, p.id], presentProject);
    },

    async get(principal: Principal, orgId: string, projectId: string) {
      const org = await authz.requireOrg(principal, orgId, 'projects:read');
      const project = await projectOf(org.orgId, projectId);
      if (principal.kind === 'user' && !org.permissions.has('projects:manage')) {
        const decision = await access.decide({ userId: principal.userId, projectId: project.id, sessionId: principal.sessionId });
        if (!decision || decision.level === 'none') throw notFound('Project');
      }
      return presentProject(project);
    },

    /** The creator (a user without projects:manage) becomes the project's admin, or they could not manage what they made. */
    async create(principal: Principal, org: OrgAccess, input: ProjectInput) {
      return db.transaction(async (trx) => {
        const row = await queries.insert(
          { org_id: org.orgId, name: input.name, visibility: input.visibility, description: input.description ?? null },
          trx,
        );
        const project = presentProject(row);
        await recordAudit(trx, { orgId: org.orgId, actor: actorOf(principal), action: 'project.created', target: { type: 'project', id: row.id }, after: project });
        if (principal.kind === 'user' && !org.permissions.has('projects:manage')) {
          const grant = await queries.insertGrant(
            { org_id: org.orgId, project_id: row.id, subject_type: 'user', user_id: principal.userId, level: 'admin' },
            trx,
          );
          await recordAudit(trx, {
            orgId: org.orgId,
            actor: actorOf(principal),
            action: 'project.grant_created',
            target: { type: 'project_grant', id: grant.id },
            after: { projectId: row.id, subject: { type: 'user', id: principal.userId }, level: 'admin', reason: 'creator' },
          });
        }
        return project;
      });
    },

    async update(principal: Principal, scope: ProjectAdminScope, patch: ProjectPatch) {
      const { orgId: scopedOrg, projectId } = scope;
      return db.transaction(async (trx) => {
        const before = await queries.findForUpdate(scopedOrg, projectId, trx);
        if (!before) throw notFound('Project');
        const fields: ProjectPatch = {};
        if (patch.name !== undefined) fields.name = patch.name;
        if (patch.visibility !== undefined) fields.visibility = patch.visibility;
        if (patch.description !== undefined) fields.description = patch.description;
        const after = await queries.update(scopedOrg, projectId, fields, trx);
        await recordAudit(trx, {
          orgId: scopedOrg,
          actor: actorOf(principal),
          action: 'project.updated',
          target: { type: 'project', id: projectId },
          before: presentProject(before),
          after: presentProject(after),
        });
        return presentProject(after);
      });
    },

    /** Refused while grants exist unless forced: deleting silently revokes everyone's access. */
    async remove(principal: Principal, scope: ProjectAdminScope, force: boolean) {
      const { orgId: scopedOrg, projectId } = scope;
      await db.transaction(async (trx) => {
        const before = await queries.findForUpdate(scopedOrg, projectId, trx);
        if (!before) throw notFound('Project');
        const grantCount = await queries.countGrants(scopedOrg, projectId, trx);
        if (grantCount > 0 && !force) {
          throw conflict('conflict.project_has_grants', `The project still has ${grantCount} grant(s); remove them or pass ?force=true`, { grantCount });
        }
        await queries.remove(scopedOrg, projectId, trx);
        await recordAudit(trx, {
          orgId: scopedOrg,
          actor: actorOf(principal),
          action: 'project.deleted',
          target: { type: 'project', id: projectId },
          before: { ...presentProject(before), grantCount },
          after: { force },
        });
      });
    },

    async listGrants(scope: ProjectAdminScope, page: ListQuery) {
      const { orgId: scopedOrg, projectId } = scope;
      const after = page.after ? String(decodeCursor(page.after, 1)[0]) : undefined;
      if (after !== undefined && !isUuid(after)) throw badRequest('validation.invalid_cursor', 'The `after` cursor is not valid');
      const rows = await queries.listGrants(scopedOrg, projectId, { after, limit: page.limit });
      return toPage(rows, page.limit, (g) => [g.id], presentGrant);
    },

    async createGrant(principal: Principal, scope: ProjectAdminScope, input: GrantInput) {
      const { orgId: scopedOrg, projectId } = scope;
      return db.transaction(async (trx) => {
        if (!(await queries.findForUpdate(scopedOrg, projectId, trx))) throw notFound('Project');
        const subject = await resolveSubject(scopedOrg, input.subject, trx);
        const existing = await queries.findGrantBySubject(scopedOrg, projectId, subject, trx);
        if (existing) {
          throw conflict('conflict.grant_exists', 'This subject already has a grant on the project; change its level with PATCH', {
            grantId: existing.id,
          });
        }
        const row = await queries.insertGrant({ org_id: scopedOrg, project_id: projectId, level: input.level, ...subject }, trx);
        const grant = presentGrant(await grantOf(scopedOrg, projectId, row.id, trx));
        await recordAudit(trx, { orgId: scopedOrg, actor: actorOf(principal), action: 'project.grant_created', target: { type: 'project_grant', id: row.id }, after: grant });
        return grant;
      });
    },

    async updateGrant(principal: Principal, scope: ProjectAdminScope, grantId: string, level: GrantLevel) {
      const { orgId: scopedOrg, projectId } = scope;
      return db.transaction(async (trx) => {
        const before = presentGrant(await grantOf(scopedOrg, projectId, grantId, trx));
        await queries.updateGrantLevel(scopedOrg, projectId, grantId, level, trx);
        const after = presentGrant(await grantOf(scopedOrg, projectId, grantId, trx));
        await recordAudit(trx, { orgId: scopedOrg, actor: actorOf(principal), action: 'project.grant_updated', target: { type: 'project_grant', id: grantId }, before, after });
        return after;
      });
    },

    async removeGrant(principal: Principal, scope: ProjectAdminScope, grantId: string) {
      const { orgId: scopedOrg, projectId } = scope;
      await db.transaction(async (trx) => {
        const before = presentGrant(await grantOf(scopedOrg, projectId, grantId, trx));
        await queries.removeGrant(scopedOrg, projectId, grantId, trx);
        await recordAudit(trx, { orgId: scopedOrg, actor: actorOf(principal), action: 'project.grant_deleted', target: { type: 'project_grant', id: grantId }, before });
      });
    },

    /**
     * The projects a user can reach in an org, with level and reasons. The user
     * themself may ask (outside collaborators included); others need `projects:read`.
     */
    async forUser(principal: Principal, orgId: string, userId: string, sessionId: string | null, page: ListQuery) {
      if (!isUuid(orgId)) throw notFound('Organization');
      if (principal.kind === 'user' && principal.userId === userId) {
        if (!(await queries.orgExists(orgId))) throw notFound('Organization');
      } else {
        await authz.requireOrg(principal, orgId, 'projects:read');
      }
      if (!isUuid(userId)) throw notFound('User');
      const decisions = new Map(
        (await access.decideForUserInOrg(orgId, userId, sessionId)).filter((d) => d.level !== 'none').map((d) => [d.projectId, d]),
      );
      // Same keyset as the project list, restricted to what the user reaches.
      const after = page.after ? (decodeCursor(page.after, 2) as [string, string]) : undefined;
      if (after && !isUuid(after[1])) throw badRequest('validation.invalid_cursor', 'The `after` cursor is not valid');
      const rows = await queries.list(orgId, { after, limit: page.limit, onlyIds: [...decisions.keys()] });
      return toPage(rows, page.limit, (p) => [p.sort_name, p.id], (p) => {
        const d = decisions.get(p.id)!;
        return { ...presentProject(p), level: d.level, reasons: d.reasons };
      });
    },

  };
}
export type ProjectService = ReturnType<typeof createProjectService>;
