import { expectStatus, request } from '../lib/http.js';
import { runConcurrent } from '../lib/stats.js';
import { phase, warmup, type BenchContext } from './context.js';

/**
 * Workload 0, the HTTP floor: `GET /healthz` (no database) through the same
 * middleware stack and the same client, at the bench concurrency. Every SCIM or
 * admin request costs at least this much, which bounds any app/raw ratio.
 */
export async function runHttpFloor(ctx: BenchContext) {
  const count = ctx.quick ? 2_000 : 5_000;
  const healthz = async () => {
    expectStatus(await request(ctx.engine.base, 'GET', '/healthz'), [200], 'healthz');
  };
  ctx.log(`0 http floor: ${count} GET /healthz at concurrency ${ctx.concurrency} (after ${ctx.sizes.warm.healthz} unmeasured)`);
  await warmup(ctx, '0 http floor', 'app', 'requests', () => runConcurrent(ctx.sizes.warm.healthz, ctx.concurrency, healthz), { database: false });
  const figures = await phase(ctx, '0 http floor', 'app', { unit: 'requests', database: false }, () => runConcurrent(count, ctx.concurrency, healthz));
  ctx.rows.push({ workload: '0 http floor GET /healthz (no database)', app: figures, note: 'the cheapest request the service answers: a ceiling for every HTTP workload' });
}
