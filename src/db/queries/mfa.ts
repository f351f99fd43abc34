import type { Queryable } from '../knex.js';

export type UserTotpRow = {
  user_id: string;
  secret_encrypted: string;
  confirmed_at: Date | null;
  last_used_step: number | null;
  created_at: Date;
};

/** TOTP factors and recovery codes (global, per user: not tenant-owned). */
export function createMfaQueries(db: Queryable) {
  return {
    async totpOf(userId: string, q: Queryable = db) {
      const row = await q<UserTotpRow>('user_totp').where({ user_id: userId }).first();
      // bigint: a string from pg unless parsed; keep it a number either way
      return row ? { ...row, last_used_step: row.last_used_step === null ? null : Number(row.last_used_step) } : undefined;
    },

    /** Starts (or restarts) an enrolment; never replaces a confirmed factor (undefined then). */
    async upsertPendingTotp(userId: string, secretEncrypted: string, q: Queryable = db) {
      const result = await q.raw(
        `insert into user_totp (user_id, secret_encrypted) values (?, ?)
         on conflict (user_id) do update
           set secret_encrypted = excluded.secret_encrypted, confirmed_at = null, last_used_step = null, created_at = now()
           where user_totp.confirmed_at is null
         returning user_id`,
        [userId, secretEncrypted],
      );
      return result.rows.length > 0;
    },

    /** Marks the pending factor confirmed with the step of its first code; false when there is none to confirm. */
    async confirmTotp(userId: string, step: number, q: Queryable = db) {
      const n = await q('user_totp').where({ user_id: userId }).whereNull('confirmed_at').update({ confirmed_at: q.fn.now(), last_used_step: step });
      return n > 0;
    },

    /**
     * Records a used step, atomically refusing a step at or before the last one: two instances
     * that accept the same code at the same moment cannot both succeed.
     */
    async consumeStep(userId: string, step: number, q: Queryable = db) {
      const n = await q('user_totp')
        .where({ user_id: userId })
        .whereNotNull('confirmed_at')
        .andWhere((w) => w.whereNull('last_used_step').orWhere('last_used_step', '<', step))
        .update({ last_used_step: step });
      return n > 0;
    },

    async deleteTotp(userId: string, q: Queryable = db) {
      await q('user_recovery_codes').where({ user_id: userId }).delete();
      return q('user_totp').where({ user_id: userId }).delete();
    },

    async replaceRecoveryCodes(userId: string, codeHashes: string[], q: Queryable = db) {
      await q('user_recovery_codes').where({ user_id: userId }).delete();
      await q('user_recovery_codes').insert(codeHashes.map((code_hash) => ({ user_id: userId, code_hash })));
    },

    /** Spends an unused recovery code; false when it is unknown or already spent. */
    async useRecoveryCode(userId: string, codeHash: string, q: Queryable = db) {
      const n = await q('user_recovery_codes').where({ user_id: userId, code_hash: codeHash }).whereNull('used_at').update({ used_at: q.fn.now() });
      return n > 0;
    },

    async unusedRecoveryCodes(userId: string, q: Queryable = db): Promise<number> {
      const row = await q('user_recovery_codes').where({ user_id: userId }).whereNull('used_at').count<{ n: number | string }[]>({ n: '*' }).first();
      return Number(row?.n ?? 0);
    },
  };
}
export type MfaQueries = ReturnType<typeof createMfaQueries>;
