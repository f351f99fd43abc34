import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import type { Db, Queryable } from '../db/knex.js';
import type { SessionQueries, SessionRow } from '../db/queries/sessions.js';
import { digestsEqual, hashToken, mintToken } from '../auth/tokens.js';
import { actorOf, type AuditActor, type Principal, type UserPrincipal } from '../auth/principal.js';
import { auditInsert, recordAudit, type AuditEvent } from '../audit/record.js';
import { forbidden, notFound } from '../errors.js';
import { mfaState } from './authz.js';

const TOUCH_INTERVAL_MS = 60_000;

/**
 * Methods the product's backend can vouch for when it opens a session. `sso` and `otp` are
 * facts this service establishes itself (SAML ACS, TOTP verify), so a caller cannot claim them.
 */
export const PRODUCT_AMR = ['pwd', 'passkey', 'hwk', 'swk', 'email', 'sms'] as const;

export type NewSession = {
  userId: string;
  amr: string[];
  ssoConnectionId?: string | null;
  ssoOrgId?: string | null;
};

export function presentSession(row: SessionRow) {
  return {
    id: row.id,
    userId: row.user_id,
    amr: row.amr,
    ssoConnectionId: row.sso_connection_id,
    ssoOrgId: row.sso_org_id,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
  };
}

/** What decides a session's MFA standing: how it was authenticated, and which org's SSO signed it in. */
type SessionFacts = { userId: string; amr: string[]; ssoOrgId: string | null };

export function createSessionService(db: Db, config: Config, queries: SessionQueries) {
  /** The user's organizations, each with whether this session satisfies the org's MFA policy. */
  async function organizationsFor(session: SessionFacts, q: Queryable = db) {
    const orgs = await queries.organizationsOfUser(session.userId, q);
    const now = Date.now();
    return orgs.map((o) => ({
      id: o.id,
      slug: o.slug,
      name: o.name,
      role: o.role,
      status: o.status,
      mfa: mfaState(session, o.id, o, o.mfa_enrolled, now),
    }));
  }

  /**
   * A new session: its row (id chosen here; the token is returned once and stored only hashed)
   * and its `session.created` audit event. `create` writes both; the SSO ACS writes them inside
   * its own sign-in statement.
   */
  function prepare(input: NewSession, actor: AuditActor) {
    const { token, hash } = mintToken('ses');
    const values = {
      id: randomUUID(),
      token_hash: hash,
      user_id: input.userId,
      amr: [...new Set(input.amr)],
      sso_connection_id: input.ssoConnectionId ?? null,
      sso_org_id: input.ssoOrgId ?? null,
      expires_at: new Date(Date.now() + config.sessionAbsoluteTtlMs),
    };
    const audit: AuditEvent = {
      orgId: input.ssoOrgId ?? null,
      actor,
      action: 'session.created',
      target: { type: 'user', id: input.userId },
      after: { sessionId: values.id, amr: values.amr },
    };
    return { token, values, audit };
  }

  async function describe(row: SessionRow, q: Queryable = db) {
    const user = await q('users').where({ id: row.user_id }).first('id', 'email', 'name', 'avatar_url', 'status');
    if (!user) throw notFound('User');
    return {
      user: { id: user.id, email: user.email, name: user.name, avatarUrl: user.avatar_url, status: user.status },
      session: presentSession(row),
      organizations: await organizationsFor({ userId: row.user_id, amr: row.amr, ssoOrgId: row.sso_org_id }, q),
    };
  }

  return {
    organizationsFor,
    prepare,

    /** Records a further authentication method on a live session (e.g. `otp` after a verified code). */
    async addMethod(sessionId: string, method: 'otp', q: Queryable = db) {
      const row = await queries.addAmr(sessionId, method, q);
      if (!row) throw notFound('Session');
      return row;
    },

    /** Who am I: the user, the calling session, and per org whether the session meets its MFA policy. */
    async whoami(principal: UserPrincipal, q: Queryable = db) {
      const row = await queries.findById(principal.sessionId, q);
      if (!row) throw notFound('Session');
      return describe(row, q);
    },

    /** Sign out: revokes the calling session (audited). */
    async revokeCurrent(principal: UserPrincipal) {
      await db.transaction(async (trx) => {
        const revoked = await queries.revoke(principal.sessionId, trx);
        if (!revoked) throw notFound('Session');
        await recordAudit(trx, {
          orgId: null,
          actor: actorOf(principal),
          action: 'session.revoked',
          target: { type: 'session', id: principal.sessionId },
          after: { userId: principal.userId, reason: 'sign_out' },
        });
      });
    },

    /**
     * Revokes every live session of a user (audited): the product's backend (service token),
     * or the user itself ("sign out everywhere"). Another user's id is refused before any lookup,
     * so the answer tells nothing about that user.
     */
    async revokeAll(principal: Principal, userId: string) {
      if (principal.kind === 'user' && principal.userId !== userId) {
        throw forbidden('forbidden', 'A session may only revoke the sessions of its own user');
      }
      return db.transaction(async (trx) => {
        const user = await trx('users').where({ id: userId }).first('id');
        if (!user) throw notFound('User');
        const revoked = await queries.revokeAllForUser(userId, trx);
        await recordAudit(trx, {
          orgId: null,
          actor: actorOf(principal),
          action: 'session.revoked_all',
          target: { type: 'user', id: userId },
          after: { revoked },
        });
        return { revoked };
      });
    },

    /**
     * Opens a session (token returned once, stored hashed): the user check, the insert and its
     * audit event are one statement; then the org list with each org's MFA standing. Runs in
     * the caller's transaction when given one.
     */
    async create(input: NewSession, actor: AuditActor, trx?: Queryable) {
      const q = trx ?? db;
      const { token, values, audit } = prepare(input, actor);
      const { userStatus, row } = await queries.insertForActiveUser(values, (onlyIf) => auditInsert(audit, { onlyIf }), q);
      if (userStatus === undefined) throw notFound('User');
      if (!row) throw forbidden('user.suspended', 'The user is suspended and cannot sign in');
      return { token, session: row, organizations: await organizationsFor({ userId: row.user_id, amr: row.amr, ssoOrgId: row.sso_org_id }, q) };
    },

    /** A bearer session token → the user principal, or undefined when unknown, revoked, expired, idle or suspended. */
    async authenticate(token: string): Promise<UserPrincipal | undefined> {
      const hash = hashToken(token);
      const row = await queries.findLiveByHash(hash);
      if (!row || !digestsEqual(row.token_hash, hash)) return undefined;
      if (row.user_status !== 'active') return undefined;
      const idleFor = Date.now() - row.last_seen_at.getTime();
      if (idleFor > config.sessionIdleTtlMs) return undefined;
      if (idleFor > TOUCH_INTERVAL_MS) await queries.touch(row.id);
      return { kind: 'user', sessionId: row.id, userId: row.user_id, amr: row.amr, ssoOrgId: row.sso_org_id };
    },
  };
}
export type SessionService = ReturnType<typeof createSessionService>;
