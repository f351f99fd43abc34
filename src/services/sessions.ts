import type { Config } from '../config.js';
import type { Db } from '../db/knex.js';
import type { SessionQueries, SessionRow } from '../db/queries/sessions.js';
import { digestsEqual, hashToken, mintToken } from '../auth/tokens.js';
import type { AuditActor, UserPrincipal } from '../auth/principal.js';
import { recordAudit } from '../audit/record.js';
import { notFound } from '../errors.js';

const TOUCH_INTERVAL_MS = 60_000;

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

export function createSessionService(db: Db, config: Config, queries: SessionQueries) {
  return {
    /** Opens a session (token returned once, stored hashed). Runs in the caller's transaction when given one. */
    async create(input: NewSession, actor: AuditActor, trx?: Parameters<typeof recordAudit>[0]) {
      const run = async (t: Parameters<typeof recordAudit>[0]) => {
        const user = await t('users').where({ id: input.userId }).first('id', 'status');
        if (!user) throw notFound('User');
        const { token, hash } = mintToken('ses');
        const row = await queries.insert(
          {
            token_hash: hash,
            user_id: input.userId,
            amr: [...new Set(input.amr)],
            sso_connection_id: input.ssoConnectionId ?? null,
            sso_org_id: input.ssoOrgId ?? null,
            expires_at: new Date(Date.now() + config.sessionAbsoluteTtlMs),
          },
          t,
        );
        await recordAudit(t, {
          orgId: input.ssoOrgId ?? null,
          actor,
          action: 'session.created',
          target: { type: 'user', id: input.userId },
          after: { sessionId: row.id, amr: row.amr },
        });
        return { token, session: row };
      };
      return trx ? run(trx) : db.transaction(run);
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
