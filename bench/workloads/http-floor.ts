import { expectStatus, request } from '../lib/http.js';
import { runConcurrent } from '../lib/stats.js';
import type { BenchContext } from './context.js';

/**
 * Workload 0, the HTTP floor: `GET /healthz` (no database) through the same
 * middleware stack and the same client, at the bench concurrency. Every SCIM or
 * admin request costs at least this much, which bounds any app/raw ratio.
 */
export async function runHttpFloor(ctx: BenchContext) {
  const count = ctx.quick ? 2_000 : 5_000;
  ctx.log(`0 http floor: ${count} GET /healthz at concurrency ${ctx.concurrency}`);
  const figures = await runConcurrent(count, ctx.concurrency, async () => {
    expectStatus(await request(ctx.engine.base, 'GET', '/healthz'), [200], 'healthz');
  });
  ctx.rows.push({ workload: '0 http floor GET /healthz (no database)', app: figures, note: 'the cheapest request the service answers: a ceiling for every HTTP workload' });
}
