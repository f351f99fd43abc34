import { expectStatus } from '../lib/http.js';
import { runConcurrent } from '../lib/stats.js';
import { PATCH_OP, scim, type BenchContext, type Directory } from './context.js';
import { p99Row, rawRateRow } from './targets.js';

/**
 * Workload 3, deprovisioning wave: PATCH `active: false` for every 10th imported
 * user. Raw: lock the link row, flip it, suspend the membership, audit.
 */
export async function runDeprovision(ctx: BenchContext, app: Directory, raw: Directory, imported: { scimIds: string[]; rawUserIds: string[] }) {
  const appTargets = imported.scimIds.filter((_, i) => i % 10 === 0);
  const rawTargets = imported.rawUserIds.filter((_, i) => i % 10 === 0);
  ctx.log(`3 deprovision: ${appTargets.length} users at concurrency ${ctx.concurrency}`);
  const appFigures = await runConcurrent(appTargets.length, ctx.concurrency, async (i) => {
    const res = expectStatus(
      await scim(ctx, app, 'PATCH', `/Users/${appTargets[i]}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] }),
      [200],
      'deactivate',
    );
    if ((res.body as { active: boolean }).active !== false) throw new Error('still active');
  });
  const rawFigures = await ctx.engine.withSql((sql) =>
    runConcurrent(rawTargets.length, ctx.concurrency, (i) =>
      sql.tx(async (q) => {
        const [before] = await q<{ id: string; user_id: string }>(`select * from scim_users where directory_id = $1 and user_id = $2 for update`, [
          raw.id,
          rawTargets[i],
        ]);
        const [after] = await q<{ id: string; version: number }>(
          `update scim_users set active = false, attributes = attributes || '{"active": false}'::jsonb, version = version + 1, updated_at = now()
            where id = $1 returning *`,
          [before!.id],
        );
        await q(
          `update memberships set status = 'suspended', updated_at = now()
            where org_id = $1 and user_id = $2 and role <> 'owner' and status <> 'suspended'`,
          [raw.orgId, before!.user_id],
        );
        await q(
          `insert into audit_events (org_id, actor_type, actor_id, action, target_type, target_id, before, after)
           values ($1, 'scim_directory', $2, 'scim_user.deactivate', 'scim_user', $3, $4, $5)`,
          [raw.orgId, raw.id, before!.id, JSON.stringify({ active: true }), JSON.stringify({ active: false, version: after!.version })],
        );
      }),
    ),
  );
  ctx.rows.push(rawRateRow('3 deprovision PATCH active=false: users/s', appFigures, rawFigures));
  ctx.rows.push(p99Row('3 deprovision PATCH /Users/:id', appFigures));
}
