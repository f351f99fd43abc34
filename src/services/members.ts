import type { CoreDeps } from '../context.js';
import type { Knex } from 'knex';
import { actorOf } from '../auth/principal.js';
import { recordAudit } from '../audit/record.js';
import type { BuiltinRole } from '../authz/permissions.js';
import { createMembershipQueries, type MemberRow, type MembershipRow } from '../db/queries/memberships.js';
import { createRoleQueries } from '../db/queries/roles.js';
import { createUserQueries } from '../db/queries/users.js';
import { badRequest, conflict, forbidden, notFound } from '../errors.js';
import { toPage, type ListQuery } from '../http/pagination.js';
import type { AuthzService, OrgAccess } from './authz.js';
import { assertHoldsAll } from './roles.js';
import { BUILTIN_ROLE_PERMISSIONS } from '../authz/permissions.js';
import { stringCursor } from './users.js';

export function presentMember(row: MemberRow) {
  return {
    userId: row.user_id,
    email: row.email,
    name: row.name,
    role: row.role,
    roles: row.roles,
    status: row.status,
    source: row.source,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export type NewMember = { userId: string; role: BuiltinRole; roles?: string[] };
export type MemberPatch = { role?: BuiltinRole; roles?: string[]; status?: 'active' | 'suspended' };

const isActiveOwner = (m: Pick<MembershipRow, 'role' | 'status'>) => m.role === 'owner' && m.status === 'active';

export function createMemberService(deps: CoreDeps, authz: AuthzService) {
  const { db } = deps;
  const memberships = createMembershipQueries(db);
  const roles = createRoleQueries(db);
  const users = createUserQueries(db);

  /** Granting, revoking, suspending or removing the owner role needs `ownership:manage`. */
  function requireOwnershipManage(access: OrgAccess): void {
    if (!access.permissions.has('ownership:manage')) {
      throw forbidden('forbidden', 'Missing permission ownership:manage (needed to grant, change or remove an owner)', {
        permission: 'ownership:manage',
      });
    }
  }

  /**
   * Custom role keys → role ids of this org. Unknown keys are a 400 naming them; roles
   * newly given must not carry permissions the caller lacks.
   */
  async function resolveCustomRoles(access: OrgAccess, keys: readonly string[], alreadyHeld: readonly string[], trx: Knex.Transaction) {
    const unique = [...new Set(keys)];
    const found = await roles.findByKeys(access.orgId, unique, trx);
    const unknown = unique.filter((k) => !found.some((r) => r.key === k));
    if (unknown.length > 0) {
      throw badRequest('validation.unknown_role', `Unknown role: ${unknown.join(', ')}`, { unknownRoles: unknown });
    }
    const granted = found.filter((r) => !alreadyHeld.includes(r.key)).flatMap((r) => r.permissions);
    assertHoldsAll(access, [...new Set(granted)], 'These roles');
    return found.map((r) => r.id);
  }

  /**
   * Every membership write starts here. It locks the org's active owners (in a fixed
   * order) so that two requests that each take ownership away from a different owner
   * are serialised: the second one reads the owners after the first committed and is
   * refused if nobody would be left. Then it resolves the caller's permissions again
   * inside the transaction: the check the route made may predate a concurrent change
   * to the caller's own membership (e.g. an owner demoted a moment ago).
   */
  async function begin(access: OrgAccess, trx: Knex.Transaction) {
    const activeOwners = await memberships.lockActiveOwners(access.orgId, trx);
    const current = await authz.requireOrg(access.principal, access.orgId, 'members:manage', trx);
    return { activeOwners, access: current };
  }

  async function lockTarget(access: OrgAccess, userId: string, trx: Knex.Transaction) {
    const { activeOwners, access: current } = await begin(access, trx);
    const target = await memberships.find(access.orgId, userId, trx, { forUpdate: true });
    if (!target) throw notFound('Member');
    return { access: current, target, otherActiveOwners: activeOwners.filter((id) => id !== userId).length };
  }

  function refuseLastOwner(): never {
    throw conflict('conflict.last_owner', 'An organization must keep at least one active owner');
  }

  async function member(orgId: string, userId: string, trx: Knex.Transaction) {
    const row = await memberships.findMember(orgId, userId, trx);
    if (!row) throw notFound('Member');
    return row;
  }

  return {
    async list(orgId: string, page: ListQuery) {
      const rows = await memberships.list(orgId, { afterEmail: stringCursor(page.after), limit: page.limit });
      return toPage(rows, page.limit, (r) => [r.sort_key], presentMember);
    },

    async get(orgId: string, userId: string) {
      const row = await memberships.findMember(orgId, userId);
      if (!row) throw notFound('Member');
      return presentMember(row);
    },

    async add(routeAccess: OrgAccess, input: NewMember) {
      if (input.role === 'owner') requireOwnershipManage(routeAccess);
      const row = await db.transaction(async (trx) => {
        const { access } = await begin(routeAccess, trx);
        if (input.role === 'owner') requireOwnershipManage(access);
        assertHoldsAll(access, [...BUILTIN_ROLE_PERMISSIONS[input.role]], `The role ${input.role}`);
        const user = await users.findById(input.userId, trx);
        if (!user) throw notFound('User');
        const roleIds = await resolveCustomRoles(access, input.roles ?? [], [], trx);
        // a second add of the same user fails on the primary key → 409 conflict.memberships_pkey
        await memberships.insert({ org_id: access.orgId, user_id: input.userId, role: input.role, status: 'active', source: 'manual' }, trx);
        await memberships.setCustomRoles(access.orgId, input.userId, roleIds, trx);
        const added = await member(access.orgId, input.userId, trx);
        await recordAudit(trx, {
          orgId: access.orgId,
          actor: actorOf(access.principal),
          action: 'member.added',
          target: { type: 'user', id: input.userId },
          after: presentMember(added),
        });
        return added;
      });
      return presentMember(row);
    },

    async update(routeAccess: OrgAccess, userId: string, patch: MemberPatch) {
      const row = await db.transaction(async (trx) => {
        const { access, target, otherActiveOwners } = await lockTarget(routeAccess, userId, trx);
        if (target.role === 'owner' || patch.role === 'owner') requireOwnershipManage(access);
        if (patch.role && patch.role !== target.role) {
          assertHoldsAll(access, [...BUILTIN_ROLE_PERMISSIONS[patch.role]], `The role ${patch.role}`);
        }
        const next = { role: patch.role ?? target.role, status: patch.status ?? target.status };
        if (isActiveOwner(target) && !isActiveOwner(next) && otherActiveOwners === 0) refuseLastOwner();

        const before = await member(access.orgId, userId, trx);
        await memberships.update(access.orgId, userId, next, trx); // also bumps updated_at when only `roles` change
        if (patch.roles !== undefined) {
          const roleIds = await resolveCustomRoles(access, patch.roles, before.roles, trx);
          await memberships.setCustomRoles(access.orgId, userId, roleIds, trx);
        }
        const after = await member(access.orgId, userId, trx);
        await recordAudit(trx, {
          orgId: access.orgId,
          actor: actorOf(access.principal),
          action: 'member.updated',
          target: { type: 'user', id: userId },
          before: presentMember(before),
          after: presentMember(after),
        });
        return after;
      });
      return presentMember(row);
    },

    /** Team memberships and custom role assignments go with the membership (FK cascades). */
    async remove(routeAccess: OrgAccess, userId: string) {
      await db.transaction(async (trx) => {
        const { access, target, otherActiveOwners } = await lockTarget(routeAccess, userId, trx);
        if (target.role === 'owner') requireOwnershipManage(access);
        if (isActiveOwner(target) && otherActiveOwners === 0) refuseLastOwner();
        const before = await member(access.orgId, userId, trx);
        await memberships.remove(access.orgId, userId, trx);
        await recordAudit(trx, {
          orgId: access.orgId,
          actor: actorOf(access.principal),
          action: 'member.removed',
          target: { type: 'user', id: userId },
          before: presentMember(before),
        });
      });
    },
  };
}
export type MemberService = ReturnType<typeof createMemberService>;
