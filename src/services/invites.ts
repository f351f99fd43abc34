import { assertHoldsAll } from './roles.js';
import { BUILTIN_ROLE_PERMISSIONS } from '../authz/permissions.js';
import type { CoreDeps } from '../context.js';
import type { InviteQueries, InviteStatus, InviteView } from '../db/queries/invites.js';
import type { OrgAccess } from './authz.js';
import type { UserPrincipal } from '../auth/principal.js';
import { actorOf } from '../auth/principal.js';
import type { BuiltinRole } from '../authz/permissions.js';
import { digestsEqual, hashToken, mintToken } from '../auth/tokens.js';
import { recordAudit } from '../audit/record.js';
import { AppError, badRequest, conflict, forbidden, notFound } from '../errors.js';
import { decodeCursor, toPage } from '../http/pagination.js';
import { isUuid } from '../http/params.js';

export const DEFAULT_INVITE_EXPIRY_HOURS = 7 * 24;
export const MAX_INVITE_EXPIRY_HOURS = 30 * 24;

export type NewInvite = { email: string; role: BuiltinRole; roles?: string[]; expiresInHours?: number };
export type InviteListQuery = { status?: InviteStatus; email?: string; after?: string; limit: number };

/** The public shape of an invite. The token never appears here: it is shown once, by `create`. */
export function presentInvite(row: InviteView) {
  return {
    id: row.id,
    orgId: row.org_id,
    email: row.email,
    role: row.role,
    roles: row.custom_role_keys,
    status: row.status,
    invitedByUserId: row.invited_by_user_id,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    acceptedAt: row.accepted_at,
    acceptedByUserId: row.accepted_by_user_id,
    revokedAt: row.revoked_at,
  };
}
export type Invite = ReturnType<typeof presentInvite>;

const gone = (code: string, message: string) => new AppError(code, 410, message);

/** Why a token that matched an invite cannot be accepted (410: the link is dead for good). */
function refusal(status: InviteStatus): AppError {
  switch (status) {
    case 'accepted':
      return gone('invite.already_accepted', 'This invite has already been accepted');
    case 'revoked':
      return gone('invite.revoked', 'This invite has been revoked');
    case 'expired':
      return gone('invite.expired', 'This invite has expired');
    case 'pending':
      // only reachable if the row changed between two reads of the same transaction
      return new AppError('conflict.retry', 409, 'The invite changed meanwhile; retry the request');
  }
}

// cursor: [created_at with microseconds, id]
const CREATED_KEY_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export function createInviteService({ db }: CoreDeps, queries: InviteQueries) {
  return {
    /**
     * Creates an invite; the token comes back only here. Owner invites need `ownership:manage`,
     * custom role keys must exist in the org, and the invitee must not be a member already
     * nor hold another pending invite of the org.
     */
    async create(access: OrgAccess, input: NewInvite): Promise<Invite & { token: string }> {
      if (input.role === 'owner' && !access.permissions.has('ownership:manage')) {
        throw forbidden('forbidden', 'Missing permission ownership:manage (needed to invite an owner)', { permission: 'ownership:manage' });
      }
      const roleKeys = [...new Set(input.roles ?? [])];
      const expiresAt = new Date(Date.now() + (input.expiresInHours ?? DEFAULT_INVITE_EXPIRY_HOURS) * 3_600_000);
      const actor = actorOf(access.principal);
      const { token, hash } = mintToken('inv');

      const row = await db.transaction(async (trx) => {
        const found = await queries.customRolesByKeys(access.orgId, roleKeys, trx);
        const known = new Set(found.map((r) => r.key));
        const missing = roleKeys.findIndex((k) => !known.has(k));
        if (missing >= 0) {
          const key = roleKeys[missing]!;
          throw badRequest('invite.unknown_role', `Unknown role key "${key}" in this organization`, [
            { path: `roles.${(input.roles ?? []).indexOf(key)}`, message: `role "${key}" does not exist`, code: 'unknown_role' },
          ]);
        }
        // An invite hands out its roles later, so it may carry only what the inviter holds.
        const granted = new Set<string>([...BUILTIN_ROLE_PERMISSIONS[input.role], ...found.flatMap((r) => r.permissions)]);
        assertHoldsAll(access, [...granted], 'This invite');
        await queries.lockEmail(access.orgId, input.email, trx);
        const existing = await queries.userByEmail(input.email, trx);
        if (existing && (await queries.isMember(access.orgId, existing.id, trx))) {
          throw conflict('invite.already_member', 'A user with this email is already a member of the organization');
        }
        if (await queries.pendingExists(access.orgId, input.email, trx)) {
          throw conflict('invite.pending_exists', 'A pending invite for this email already exists; revoke it first to send a new one');
        }
        const inserted = await queries.insert(
          {
            org_id: access.orgId,
            email: input.email,
            role: input.role,
            custom_role_keys: roleKeys,
            token_hash: hash,
            expires_at: expiresAt,
            invited_by_user_id: access.principal.kind === 'user' ? access.principal.userId : null,
          },
          trx,
        );
        await recordAudit(trx, {
          orgId: access.orgId,
          actor,
          action: 'invite.created',
          target: { type: 'invite', id: inserted.id },
          after: { email: inserted.email, role: inserted.role, roles: inserted.custom_role_keys, expiresAt: inserted.expires_at },
        });
        return inserted;
      });
      return { ...presentInvite(row), token };
    },

    async list(access: OrgAccess, input: InviteListQuery) {
      let after: { createdKey: string; id: string } | undefined;
      if (input.after) {
        const [createdKey, id] = decodeCursor(input.after, 2);
        if (typeof createdKey !== 'string' || !CREATED_KEY_RE.test(createdKey) || !isUuid(id)) {
          throw badRequest('validation.invalid_cursor', 'The `after` cursor is not valid');
        }
        after = { createdKey, id };
      }
      const rows = await queries.list(access.orgId, { status: input.status, email: input.email, after, limit: input.limit });
      return toPage(rows, input.limit, (r) => [r.created_key, r.id], presentInvite);
    },

    async get(access: OrgAccess, inviteId: string): Promise<Invite> {
      const row = isUuid(inviteId) ? await queries.findInOrg(access.orgId, inviteId) : undefined;
      if (!row) throw notFound('Invite');
      return presentInvite(row);
    },

    /** Revokes a pending (or expired) invite. Revoking twice is a no-op; an accepted invite cannot be revoked (409). */
    async revoke(access: OrgAccess, inviteId: string): Promise<void> {
      if (!isUuid(inviteId)) throw notFound('Invite');
      await db.transaction(async (trx) => {
        const revoked = await queries.revoke(access.orgId, inviteId, trx);
        if (!revoked) {
          const current = await queries.findInOrg(access.orgId, inviteId, trx);
          if (!current) throw notFound('Invite');
          if (current.status === 'accepted') throw conflict('invite.already_accepted', 'An accepted invite cannot be revoked; remove the member instead');
          return; // already revoked
        }
        await recordAudit(trx, {
          orgId: access.orgId,
          actor: actorOf(access.principal),
          action: 'invite.revoked',
          target: { type: 'invite', id: revoked.id },
          before: { email: revoked.email, role: revoked.role, roles: revoked.custom_role_keys },
        });
      });
    },

    /**
     * The invited user accepts with their own session. One transaction claims the invite,
     * creates the membership (with the invite's custom roles that still exist) and writes
     * the audit events; any refusal rolls all of it back and leaves the invite pending.
     */
    async accept(principal: UserPrincipal, token: string) {
      const hash = hashToken(token);
      const found = await queries.findByTokenHash(hash);
      if (!found || !digestsEqual(found.token_hash, hash)) throw notFound('Invite');
      // The email check comes first, so a wrong account learns nothing about the invite's state.
      const email = await queries.userEmail(principal.userId);
      if (!email || email.toLowerCase() !== found.email.toLowerCase()) {
        throw forbidden('invite.email_mismatch', 'This invite was sent to a different email address than the signed-in user’s');
      }
      if (found.status !== 'pending') throw refusal(found.status);

      return db.transaction(async (trx) => {
        const claimed = await queries.claim(found.org_id, found.id, principal.userId, trx);
        if (!claimed) {
          const current = await queries.findInOrg(found.org_id, found.id, trx);
          if (!current) throw notFound('Invite');
          throw refusal(current.status);
        }
        // Roles deleted since the invite was sent are skipped rather than blocking the invitee.
        const roles = await queries.customRolesByKeys(claimed.org_id, claimed.custom_role_keys, trx);
        const added = await queries.insertMembership(
          { org_id: claimed.org_id, user_id: principal.userId, role: claimed.role, source: 'invite' },
          roles.map((r) => r.id),
          trx,
        );
        if (!added) throw conflict('invite.already_member', 'You are already a member of this organization');
        const m = (await queries.memberView(claimed.org_id, principal.userId, trx))!;
        // Same shape as the members API, so `member.added` events read alike whatever added the member.
        const membership = {
          userId: m.user_id,
          email: m.email,
          name: m.name,
          role: m.role,
          roles: m.roles,
          status: m.status,
          source: m.source,
          createdAt: m.created_at,
          updatedAt: m.updated_at,
        };
        const actor = actorOf(principal);
        await recordAudit(trx, {
          orgId: claimed.org_id,
          actor,
          action: 'invite.accepted',
          target: { type: 'invite', id: claimed.id },
          before: { status: 'pending' },
          after: { status: 'accepted', userId: principal.userId },
        });
        await recordAudit(trx, {
          orgId: claimed.org_id,
          actor,
          action: 'member.added',
          target: { type: 'user', id: principal.userId },
          after: { ...membership, inviteId: claimed.id },
        });
        const accepted = await queries.findInOrg(claimed.org_id, claimed.id, trx);
        return { invite: presentInvite(accepted!), membership: { orgId: claimed.org_id, ...membership } };
      });
    },
  };
}
export type InviteService = ReturnType<typeof createInviteService>;
