import type { Sql } from '../lib/engine.js';
import { expectStatus } from '../lib/http.js';
import { runConcurrent } from '../lib/stats.js';
import { PATCH_OP, phase, scim, warmup, type BenchContext, type Directory } from './context.js';
import type { Imported } from './okta-import.js';
import { p99Row, rawRateRow } from './targets.js';

/**
 * Workload 3, deprovisioning wave: PATCH `active: false` for every 10th imported
 * user. Raw: lock the link row, flip it, suspend the membership, audit.
 * Warm-up (unmeasured): a few users of the warm-up directories deactivated the same way.
 */
function appDeactivate(ctx: BenchContext, dir: Directory, scimIds: string[]) {
  return runConcurrent(scimIds.length, ctx.concurrency, async (i) => {
    const res = expectStatus(
      await scim(ctx, dir, 'PATCH', `/Users/${scimIds[i]}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] }),
      [200],
      'deactivate',
    );
    if ((res.body as { active: boolean }).active !== false) throw new Error('still active');
  });
}

function rawDeactivate(ctx: BenchContext, sql: Sql, dir: Directory, userIds: string[]) {
  return runConcurrent(userIds.length, ctx.concurrency, (i) =>
    sql.tx(async (q) => {
      const [before] = await q<{ id: string; user_id: string }>(`select * from scim_users where directory_id = $1 and user_id = $2 for update`, [
        dir.id,
        userIds[i],
      ]);
      const [after] = await q<{ id: string; version: number }>(
        `update scim_users set active = false, attributes = attributes || '{"active": false}'::jsonb, version = version + 1, updated_at = now()
          where id = $1 returning *`,
        [before!.id],
      );
      await q(
        `update memberships set status = 'suspended', updated_at = now()
          where org_id = $1 and user_id = $2 and role <> 'owner' and status <> 'suspended'`,
        [dir.orgId, before!.user_id],
      );
      await q(
        `insert into audit_events (org_id, actor_type, actor_id, action, target_type, target_id, before, after)
         values ($1, 'scim_directory', $2, 'scim_user.deactivate', 'scim_user', $3, $4, $5)`,
        [dir.orgId, dir.id, before!.id, JSON.stringify({ active: true }), JSON.stringify({ active: false, version: after!.version })],
      );
    }),
  );
}

export async function runDeprovision(ctx: BenchContext, app: Directory, raw: Directory, imported: Imported) {
  const W = '3 deprovision';
  const every10th = <T>(list: T[]) => list.filter((_, i) => i % 10 === 0);
  const appTargets = every10th(imported.scimIds);
  const rawTargets = every10th(imported.rawUserIds);
  const w = ctx.sizes.warm.deactivations;
  const warmApp = every10th(imported.warm.scimIds).slice(0, w);
  const warmRaw = every10th(imported.warm.rawUserIds).slice(0, w);
  ctx.log(`3 deprovision: ${appTargets.length} users at concurrency ${ctx.concurrency} (after ${warmApp.length} unmeasured)`);
  await warmup(ctx, W, 'app', 'users', () => appDeactivate(ctx, imported.warm.app, warmApp));
  const appFigures = await phase(ctx, W, 'app', { unit: 'users' }, () => appDeactivate(ctx, app, appTargets));
  const rawFigures = await ctx.engine.withSql(async (sql) => {
    await warmup(ctx, W, 'raw', 'users', () => rawDeactivate(ctx, sql, imported.warm.raw, warmRaw));
    return phase(ctx, W, 'raw', { unit: 'users' }, () => rawDeactivate(ctx, sql, raw, rawTargets));
  });
  ctx.rows.push(rawRateRow('3 deprovision PATCH active=false: users/s', appFigures, rawFigures));
  ctx.rows.push(p99Row('3 deprovision PATCH /Users/:id', appFigures));
}
