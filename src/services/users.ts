import type { CoreDeps } from '../context.js';
import type { Principal } from '../auth/principal.js';
import { actorOf } from '../auth/principal.js';
import { recordAudit } from '../audit/record.js';
import { createUserQueries, type UserPatch, type UserRow } from '../db/queries/users.js';
import { createOrgQueries, type OrgWithMembershipRow } from '../db/queries/orgs.js';
import type { SessionQueries } from '../db/queries/sessions.js';
import { badRequest, forbidden, notFound } from '../errors.js';
import { decodeCursor, toPage, type ListQuery } from '../http/pagination.js';
import { isUuid } from '../http/params.js';

export function presentUser(row: UserRow) {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    avatarUrl: row.avatar_url,
    status: row.status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** One user's membership of one org (role, custom role keys, status, source). */
export function presentMembershipOf(row: OrgWithMembershipRow) {
  return {
    role: row.member_role,
    roles: row.member_roles,
    status: row.member_status,
    source: row.member_source,
    createdAt: row.member_since,
  };
}

export function presentUserMembership(row: OrgWithMembershipRow) {
  return { orgId: row.id, orgSlug: row.slug, orgName: row.name, ...presentMembershipOf(row) };
}

/** Decodes a one-key string cursor (emails, slugs, role keys); anything else is a 400. */
export function stringCursor(after: string | undefined): string | undefined {
  if (after === undefined) return undefined;
  const [key] = decodeCursor(after, 1);
  if (typeof key !== 'string') throw badRequest('validation.invalid_cursor', 'The `after` cursor is not valid');
  return key;
}

export type UserUpdate = { name?: string | null; avatarUrl?: string | null; status?: 'active' | 'suspended' };

export function createUserService(deps: CoreDeps, sessions: SessionQueries) {
  const { db } = deps;
  const users = createUserQueries(db);
  const orgs = createOrgQueries(db);

  /**
   * A user may see itself; a service token sees anyone. Anyone else gets 404, the
   * same answer as an unknown id, so ids reveal nothing.
   */
  function assertVisible(principal: Principal, userId: string): void {
    if (!isUuid(userId)) throw notFound('User');
    if (principal.kind === 'user' && principal.userId !== userId) throw notFound('User');
  }

  return {
    async create(principal: Principal, input: { email: string; name: string }) {
      const row = await db.transaction(async (trx) => {
        const user = await users.insert({ email: input.email, name: input.name }, trx);
        await recordAudit(trx, {
          orgId: null,
          actor: actorOf(principal),
          action: 'user.created',
          target: { type: 'user', id: user.id },
          after: presentUser(user),
        });
        return user;
      });
      return presentUser(row);
    },

    async list(page: ListQuery & { email?: string }) {
      const rows = await users.list({ email: page.email, afterEmail: stringCursor(page.after), limit: page.limit });
      return toPage(rows, page.limit, (r) => [r.email.toLowerCase()], presentUser);
    },

    async get(principal: Principal, userId: string) {
      assertVisible(principal, userId);
      const row = await users.findById(userId);
      if (!row) throw notFound('User');
      return presentUser(row);
    },

    /**
     * Users edit their own profile; only a service token changes `status`.
     * Suspending revokes every open session in the same transaction (the session
     * check also refuses suspended users, so nothing slips through in between).
     */
    async update(principal: Principal, userId: string, input: UserUpdate) {
      assertVisible(principal, userId);
      if (input.status !== undefined && principal.kind !== 'service') {
        throw forbidden('auth.service_token_required', 'Only a service token may change a user status');
      }
      const row = await db.transaction(async (trx) => {
        const before = await users.findById(userId, trx, { forUpdate: true });
        if (!before) throw notFound('User');
        const patch: UserPatch = {};
        if (input.name !== undefined) patch.name = input.name;
        if (input.avatarUrl !== undefined) patch.avatar_url = input.avatarUrl;
        if (input.status !== undefined) patch.status = input.status;
        const after = await users.update(userId, patch, trx);
        const revokedSessions =
          before.status === 'active' && after.status === 'suspended' ? await sessions.revokeAllForUser(userId, trx) : undefined;
        await recordAudit(trx, {
          orgId: null,
          actor: actorOf(principal),
          action: 'user.updated',
          target: { type: 'user', id: userId },
          before: presentUser(before),
          after: { ...presentUser(after), ...(revokedSessions === undefined ? {} : { revokedSessions }) },
        });
        return after;
      });
      return presentUser(row);
    },

    /** Every org the user belongs to, with role, custom roles, status and source of each membership. */
    async memberships(principal: Principal, userId: string, page: ListQuery) {
      assertVisible(principal, userId);
      const user = await users.findById(userId);
      if (!user) throw notFound('User');
      const rows = await orgs.listForUser(userId, { afterSlug: stringCursor(page.after), limit: page.limit });
      return toPage(rows, page.limit, (r) => [r.slug], presentUserMembership);
    },
  };
}
export type UserService = ReturnType<typeof createUserService>;
