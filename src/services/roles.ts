import type { CoreDeps } from '../context.js';
import { actorOf } from '../auth/principal.js';
import { recordAudit } from '../audit/record.js';
import { createRoleQueries, type RoleRow } from '../db/queries/roles.js';
import { BUILTIN_ROLE_PERMISSIONS, BUILTIN_ROLES, PERMISSIONS, isPermission, type Permission } from '../authz/permissions.js';
import { badRequest, conflict, forbidden, notFound } from '../errors.js';
import { toPage, type ListQuery } from '../http/pagination.js';
import type { OrgAccess } from './authz.js';
import { stringCursor } from './users.js';

export function presentRole(row: RoleRow) {
  return {
    id: row.id,
    key: row.key,
    name: row.name,
    description: row.description,
    permissions: row.permissions,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** The permission catalogue and what each built-in role holds (GET /permissions). */
export function permissionCatalogue() {
  return {
    data: Object.entries(PERMISSIONS).map(([key, description]) => ({ key, description })),
    builtinRoles: Object.fromEntries(BUILTIN_ROLES.map((r) => [r, [...BUILTIN_ROLE_PERMISSIONS[r]]])),
  };
}

/** Unknown permissions are a 400 that names them; the result is deduplicated and sorted. */
export function checkPermissions(permissions: readonly string[]): Permission[] {
  const unknown = permissions.filter((p) => !isPermission(p));
  if (unknown.length > 0) {
    throw badRequest('validation.unknown_permission', `Unknown permission: ${unknown.join(', ')}`, { unknownPermissions: unknown });
  }
  return [...new Set(permissions as Permission[])].sort();
}

/**
 * Nobody hands out more than they hold: a caller may only put into a role, or
 * assign to a member, permissions it has itself. Otherwise an admin could create a
 * role with `ownership:manage` or `org:delete`, take it, and act as an owner.
 */
export function assertHoldsAll(access: OrgAccess, permissions: readonly string[], what: string): void {
  const missing = permissions.filter((p) => !isPermission(p) || !access.permissions.has(p));
  if (missing.length > 0) {
    throw forbidden('forbidden.permission_escalation', `${what} would grant permissions you do not hold: ${missing.join(', ')}`, {
      permissions: missing,
    });
  }
}

export type NewRole = { key: string; name: string; permissions: string[]; description?: string | null };
export type RolePatch = { name?: string; permissions?: string[]; description?: string | null };

export function createRoleService(deps: CoreDeps) {
  const { db } = deps;
  const roles = createRoleQueries(db);

  return {
    async list(orgId: string, page: ListQuery) {
      const rows = await roles.list(orgId, { afterKey: stringCursor(page.after), limit: page.limit });
      return toPage(rows, page.limit, (r) => [r.key], presentRole);
    },

    async get(orgId: string, key: string) {
      const row = await roles.findByKey(orgId, key);
      if (!row) throw notFound('Role');
      return presentRole(row);
    },

    async create(access: OrgAccess, input: NewRole) {
      const permissions = checkPermissions(input.permissions);
      assertHoldsAll(access, permissions, 'This role');
      const row = await db.transaction(async (trx) => {
        const role = await roles.insert(
          { org_id: access.orgId, key: input.key, name: input.name, description: input.description ?? null, permissions },
          trx,
        );
        await recordAudit(trx, {
          orgId: access.orgId,
          actor: actorOf(access.principal),
          action: 'role.created',
          target: { type: 'role', id: role.id },
          after: presentRole(role),
        });
        return role;
      });
      return presentRole(row);
    },

    async update(access: OrgAccess, key: string, input: RolePatch) {
      const permissions = input.permissions === undefined ? undefined : checkPermissions(input.permissions);
      const row = await db.transaction(async (trx) => {
        const before = await roles.findByKey(access.orgId, key, trx, { forUpdate: true });
        if (!before) throw notFound('Role');
        if (permissions) {
          const added = permissions.filter((p) => !before.permissions.includes(p));
          assertHoldsAll(access, added, 'This change');
        }
        const after = await roles.update(
          access.orgId,
          before.id,
          {
            ...(input.name === undefined ? {} : { name: input.name }),
            ...(input.description === undefined ? {} : { description: input.description }),
            ...(permissions === undefined ? {} : { permissions }),
          },
          trx,
        );
        await recordAudit(trx, {
          orgId: access.orgId,
          actor: actorOf(access.principal),
          action: 'role.updated',
          target: { type: 'role', id: before.id },
          before: presentRole(before),
          after: presentRole(after),
        });
        return after;
      });
      return presentRole(row);
    },

    /**
     * A role still assigned (members, teams, project grants) is only deleted with
     * `force`; the FK cascades then drop the assignments. The role row is locked
     * first so an assignment inserted concurrently (its FK check) waits for us.
     */
    async remove(access: OrgAccess, key: string, force: boolean) {
      await db.transaction(async (trx) => {
        const before = await roles.findByKey(access.orgId, key, trx, { forUpdate: true });
        if (!before) throw notFound('Role');
        const usage = await roles.usage(access.orgId, before.id, trx);
        const inUse = usage.members + usage.teams + usage.grants > 0;
        if (inUse && !force) {
          throw conflict('conflict.role_in_use', `Role ${key} is still assigned; pass ?force=true to delete it with its assignments`, usage);
        }
        await roles.remove(access.orgId, before.id, trx);
        await recordAudit(trx, {
          orgId: access.orgId,
          actor: actorOf(access.principal),
          action: 'role.deleted',
          target: { type: 'role', id: before.id },
          before: { ...presentRole(before), usage },
          after: { force, removedAssignments: usage },
        });
      });
    },
  };
}
export type RoleService = ReturnType<typeof createRoleService>;
