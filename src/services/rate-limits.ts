import type { Queryable } from '../db/knex.js';

/**
 * Failure counters with a lockout, kept in the database (table rate_limits) so that
 * every instance behind the load balancer sees the same count and the same lock.
 * A counter lives for one window; reaching `maxFailures` within it locks the key
 * until `locked_until`. The row update is one atomic upsert, so concurrent failures
 * on several instances still add up exactly.
 */
export type LockoutPolicy = { maxFailures: number; windowMs: number; lockMs: number };
export type LockState = { locked: boolean; retryAfterSeconds: number; failures: number };

type RateLimitRow = { key: string; hits: number; window_started_at: Date; locked_until: Date | null };

function stateOf(row: RateLimitRow | undefined, now: Date): LockState {
  if (!row) return { locked: false, retryAfterSeconds: 0, failures: 0 };
  const lockedMs = row.locked_until ? row.locked_until.getTime() - now.getTime() : 0;
  return { locked: lockedMs > 0, retryAfterSeconds: Math.max(0, Math.ceil(lockedMs / 1000)), failures: row.hits };
}

export function createRateLimiter(db: Queryable) {
  /** The database clock decides, so instances with skewed clocks agree. */
  async function dbNow(q: Queryable): Promise<Date> {
    const result = await q.raw('select now() as now');
    return new Date(result.rows[0].now);
  }

  return {
    async state(key: string, q: Queryable = db): Promise<LockState> {
      const [row, now] = await Promise.all([q<RateLimitRow>('rate_limits').where({ key }).first(), dbNow(q)]);
      return stateOf(row, now);
    },

    /** Counts one failure; returns the state after it (locked when this failure reached the limit). */
    async fail(key: string, policy: LockoutPolicy, q: Queryable = db): Promise<LockState> {
      const windowSeconds = policy.windowMs / 1000;
      const lockSeconds = policy.lockMs / 1000;
      // A window that has ended (or a lock that has expired) starts a fresh count.
      const stale = `(rate_limits.window_started_at < now() - make_interval(secs => ?::double precision) or rate_limits.locked_until <= now())`;
      const hits = `case when ${stale} then 1 else rate_limits.hits + 1 end`;
      const result = await q.raw(
        `insert into rate_limits (key, hits, window_started_at, locked_until)
         values (?, 1, now(), case when 1 >= ? then now() + make_interval(secs => ?::double precision) end)
         on conflict (key) do update set
           hits = ${hits},
           window_started_at = case when ${stale} then now() else rate_limits.window_started_at end,
           locked_until = case when ${hits} >= ? then now() + make_interval(secs => ?::double precision)
                               when ${stale} then null
                               else rate_limits.locked_until end
         returning key, hits, window_started_at, locked_until, now() as now`,
        [
          key,
          policy.maxFailures,
          lockSeconds,
          windowSeconds,
          windowSeconds,
          windowSeconds,
          policy.maxFailures,
          lockSeconds,
          windowSeconds,
        ],
      );
      const row = result.rows[0] as RateLimitRow & { now: Date };
      return stateOf(row, new Date(row.now));
    },

    async reset(key: string, q: Queryable = db): Promise<void> {
      await q('rate_limits').where({ key }).delete();
    },
  };
}
export type RateLimiter = ReturnType<typeof createRateLimiter>;
