import type { Db } from '../db/knex.js';
import type { ServiceTokenQueries, ServiceTokenRow } from '../db/queries/service-tokens.js';
import { createTokenCache } from '../auth/token-cache.js';
import { digestsEqual, hashToken, mintToken } from '../auth/tokens.js';
import type { AuditActor, ServicePrincipal } from '../auth/principal.js';
import { recordAudit } from '../audit/record.js';

const TOUCH_INTERVAL_MS = 60_000;
// Serialises first-start bootstrap across instances that boot at the same moment.
const BOOTSTRAP_LOCK_KEY = 7_401_001;

export function createServiceTokenService(db: Db, queries: ServiceTokenQueries, cacheMs: number) {
  // Tokens have no revoke endpoint (revoked_at is set in the database): a revoked token stops within cacheMs.
  const tokenCache = createTokenCache<ServiceTokenRow>(cacheMs);
  return {
    /**
     * Resolves a presented bearer token to a service principal, or undefined. Found rows are
     * reused for SERVICE_TOKEN_CACHE_SECONDS (see token-cache.ts): the product's backend calls
     * the admin API all day, and the lookup was a round trip per call.
     */
    async authenticate(token: string): Promise<ServicePrincipal | undefined> {
      const hash = hashToken(token);
      const row = await tokenCache.lookup(hash, () => queries.findActiveByHash(hash));
      if (!row || !digestsEqual(row.token_hash, hash)) return undefined;
      if (!row.last_used_at || Date.now() - row.last_used_at.getTime() > TOUCH_INTERVAL_MS) {
        row.last_used_at = new Date(); // the cached copy too: one touch per interval
        await queries.touch(row.id);
      }
      return { kind: 'service', tokenId: row.id, name: row.name };
    },

    async create(name: string, actor: AuditActor): Promise<{ id: string; name: string; token: string }> {
      const { token, hash } = mintToken('svc');
      const row = await db.transaction(async (trx) => {
        const inserted = await queries.insert({ name, token_hash: hash }, trx);
        await recordAudit(trx, {
          orgId: null,
          actor,
          action: 'service_token.created',
          target: { type: 'service_token', id: inserted.id },
          after: { name },
        });
        return inserted;
      });
      return { id: row.id, name: row.name, token };
    },

    /**
     * First start: honour ADMIN_TOKEN when set (store its hash once); otherwise,
     * when no service token exists yet, mint one and hand it back to be printed once.
     */
    async bootstrap(adminToken: string | undefined): Promise<{ generatedToken?: string }> {
      return db.transaction(async (trx) => {
        await trx.raw('select pg_advisory_xact_lock(?)', [BOOTSTRAP_LOCK_KEY]);
        const system: AuditActor = { type: 'system', id: null };
        if (adminToken) {
          const hash = hashToken(adminToken);
          if (await queries.findActiveByHash(hash, trx)) return {};
          const row = await queries.insert({ name: 'ADMIN_TOKEN', token_hash: hash }, trx);
          await recordAudit(trx, { orgId: null, actor: system, action: 'service_token.created', target: { type: 'service_token', id: row.id }, after: { name: row.name, source: 'env' } });
          return {};
        }
        if ((await queries.countActive(trx)) > 0) return {};
        const { token, hash } = mintToken('svc');
        const row = await queries.insert({ name: 'bootstrap', token_hash: hash }, trx);
        await recordAudit(trx, { orgId: null, actor: system, action: 'service_token.created', target: { type: 'service_token', id: row.id }, after: { name: row.name, source: 'generated' } });
        return { generatedToken: token };
      });
    },
  };
}
export type ServiceTokenService = ReturnType<typeof createServiceTokenService>;
