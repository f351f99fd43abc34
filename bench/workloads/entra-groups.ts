import { expectStatus } from '../lib/http.js';
import { runConcurrent, Samples, type Figures } from '../lib/stats.js';
import type { Exec } from '../lib/engine.js';
import { PATCH_OP, SCIM_GROUP, scim, type BenchContext, type Directory } from './context.js';
import { directoryUsers, seedDirectoryUsers } from './seed.js';
import { p99Row, rawRateRow } from './targets.js';

/**
 * Workload 2, Entra-style group sync:
 *  a. 200 groups, each created empty then filled with one PATCH adding 50 members (concurrency N);
 *  b. one group of `bigGroup` members built in PATCHes of 1,000 members (in order, one group);
 *  c. 1,000 of them removed by `members[value eq "..."]` paths, one removal per operation,
 *     10 operations per request, as Entra batches them.
 * The raw baseline writes the same rows (teams, scim_groups, team_members, audit_events,
 * version bumps) in the same transactions through pg.
 */
const GROUPS = 200;
const MEMBERS_PER_GROUP = 50;
const BATCH = 1000;
const REMOVALS = 1000;
const OPS_PER_REMOVE_REQUEST = 10;

const chunks = <T>(list: T[], size: number) => Array.from({ length: Math.ceil(list.length / size) }, (_, i) => list.slice(i * size, (i + 1) * size));

/** Sequential tasks with per-task latency (one group's changes go in order). */
async function sequential(total: number, task: (i: number) => Promise<void>, units: number): Promise<Figures> {
  return runConcurrent(total, 1, task, units / total);
}

async function rawGroupCreate(q: Exec, dir: Directory, name: string) {
  const [team] = await q<{ id: string }>(`insert into teams (org_id, name, scim_directory_id) values ($1, $2, $3) returning id`, [dir.orgId, name, dir.id]);
  const [group] = await q<{ id: string }>(
    `insert into scim_groups (org_id, directory_id, team_id, display_name, external_id) values ($1, $2, $3, $4, $5) returning *`,
    [dir.orgId, dir.id, team!.id, name, name],
  );
  await q(
    `insert into audit_events (org_id, actor_type, actor_id, action, target_type, target_id, after)
     values ($1, 'scim_directory', $2, 'scim_group.create', 'scim_group', $3, $4)`,
    [dir.orgId, dir.id, group!.id, JSON.stringify({ displayName: name, teamId: team!.id, version: 1 })],
  );
  return { groupId: group!.id, teamId: team!.id };
}

async function rawMemberChange(q: Exec, dir: Directory, group: { groupId: string; teamId: string }, userIds: string[], kind: 'add' | 'remove') {
  await q(`select id from scim_groups where id = $1 for update`, [group.groupId]);
  if (kind === 'add') {
    await q(
      `insert into team_members (org_id, team_id, user_id) select $1, $2, u from unnest($3::uuid[]) u on conflict do nothing`,
      [dir.orgId, group.teamId, userIds],
    );
  } else {
    await q(`delete from team_members where org_id = $1 and team_id = $2 and user_id = any($3::uuid[])`, [dir.orgId, group.teamId, userIds]);
  }
  await q(`update scim_groups set version = version + 1, updated_at = now() where id = $1 returning *`, [group.groupId]);
  await q(
    `insert into audit_events (org_id, actor_type, actor_id, action, target_type, target_id, after)
     values ($1, 'scim_directory', $2, 'scim_group.update', 'scim_group', $3, $4)`,
    [dir.orgId, dir.id, group.groupId, JSON.stringify({ [kind === 'add' ? 'membersAdded' : 'membersRemoved']: { count: userIds.length, userIds: userIds.slice(0, 100) } })],
  );
}

export async function runEntraGroups(ctx: BenchContext, app: Directory, raw: Directory, imported: { scimIds: string[]; rawUserIds: string[] }) {
  const n = imported.scimIds.length;
  const c = ctx.concurrency;
  const memberIndex = (g: number, k: number) => (g * MEMBERS_PER_GROUP + k) % n;

  // ---------- a. 200 groups of 50 ----------
  ctx.log(`2a entra: ${GROUPS} groups + PATCH add ${MEMBERS_PER_GROUP} at concurrency ${c}`);
  const samples = new Samples();
  const appA = await runConcurrent(GROUPS, c, async (g) => {
    const name = `entra-${g}-${ctx.tag}`;
    const created = expectStatus(
      await samples.time('post', () => scim(ctx, app, 'POST', '/Groups', { schemas: [SCIM_GROUP], displayName: name, externalId: name })),
      [201],
      'group create',
    ).body as { id: string };
    const value = Array.from({ length: MEMBERS_PER_GROUP }, (_, k) => ({ value: imported.scimIds[memberIndex(g, k)] }));
    expectStatus(
      await samples.time('patch', () =>
        scim(ctx, app, 'PATCH', `/Groups/${created.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Add', path: 'members', value }] }),
      ),
      [204],
      'group fill',
    );
  });

  // ---------- b/c need `bigGroup` users in each directory: seed the missing ones set-based ----------
  const big = ctx.sizes.bigGroup;
  const { appMembers, rawMembers, rawA } = await ctx.engine.withSql(async (sql) => {
    const rawA = await runConcurrent(GROUPS, c, async (g) => {
      const name = `entra-raw-${g}-${ctx.tag}`;
      const group = await sql.tx((q) => rawGroupCreate(q, raw, name));
      const users = Array.from({ length: MEMBERS_PER_GROUP }, (_, k) => imported.rawUserIds[memberIndex(g, k)]!);
      await sql.tx((q) => rawMemberChange(q, raw, group, users, 'add'));
    });
    if (n < big) {
      await seedDirectoryUsers(sql.query, app, `seed-app-${ctx.tag}`, n, big - 1);
      await seedDirectoryUsers(sql.query, raw, `seed-raw-${ctx.tag}`, n, big - 1);
    }
    const appMembers = (await directoryUsers(sql.query, app, big)).map((r) => r.id);
    const rawMembers = (await directoryUsers(sql.query, raw, big)).map((r) => r.user_id);
    return { appMembers, rawMembers, rawA };
  });
  ctx.rows.push(rawRateRow('2a entra group create + add 50: groups/s', appA, rawA));
  ctx.rows.push(p99Row('2a entra POST /Groups', samples.figures('post', appA.seconds)));
  ctx.rows.push(p99Row('2a entra PATCH add 50 members', samples.figures('patch', appA.seconds)));

  // ---------- b. one big group in batches of 1,000 ----------
  ctx.log(`2b entra: one group of ${big} members in PATCHes of ${BATCH}`);
  const bigGroup = expectStatus(
    await scim(ctx, app, 'POST', '/Groups', { schemas: [SCIM_GROUP], displayName: `entra-big-${ctx.tag}`, externalId: `big-${ctx.tag}` }),
    [201],
    'big group',
  ).body as { id: string };
  const appBatches = chunks(appMembers, BATCH);
  const appB = await sequential(
    appBatches.length,
    async (i) => {
      const value = appBatches[i]!.map((id) => ({ value: id }));
      expectStatus(
        await scim(ctx, app, 'PATCH', `/Groups/${bigGroup.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Add', path: 'members', value }] }),
        [204],
        'batch add',
      );
    },
    appMembers.length,
  );

  // ---------- c. 1,000 removals, one per operation, 10 operations per request ----------
  const removeRequests = chunks(appMembers.slice(0, REMOVALS), OPS_PER_REMOVE_REQUEST);
  const appC = await sequential(
    removeRequests.length,
    async (i) => {
      const Operations = removeRequests[i]!.map((id) => ({ op: 'Remove', path: `members[value eq "${id}"]` }));
      expectStatus(await scim(ctx, app, 'PATCH', `/Groups/${bigGroup.id}`, { schemas: [PATCH_OP], Operations }), [204], 'remove');
    },
    REMOVALS,
  );
  let rawB: Figures | undefined;
  let rawC: Figures | undefined;
  const memberCount = await ctx.engine.withSql(async (sql) => {
    const rawBatches = chunks(rawMembers, BATCH);
    const rawRemovals = chunks(rawMembers.slice(0, REMOVALS), OPS_PER_REMOVE_REQUEST);
    const group = await sql.tx((q) => rawGroupCreate(q, raw, `entra-raw-big-${ctx.tag}`));
    rawB = await sequential(rawBatches.length, (i) => sql.tx((q) => rawMemberChange(q, raw, group, rawBatches[i]!, 'add')), rawMembers.length);
    rawC = await sequential(rawRemovals.length, (i) => sql.tx((q) => rawMemberChange(q, raw, group, rawRemovals[i]!, 'remove')), REMOVALS);
    const [row] = await sql.query<{ n: number }>(
      `select count(*)::int as n from team_members tm join scim_groups sg on sg.team_id = tm.team_id where sg.id = $1`,
      [bigGroup.id],
    );
    return row!.n;
  });
  const expected = appMembers.length - REMOVALS;
  const check = memberCount === expected ? `group holds ${memberCount} members as expected` : `group holds ${memberCount}, expected ${expected}`;

  const batchRow = rawRateRow(`2b entra PATCH add ${BATCH}: members/s`, appB, rawB, `${appBatches.length} sequential PATCHes; ${check}`);
  ctx.rows.push(batchRow);
  ctx.rows.push({
    workload: `2b entra PATCH add ${BATCH}: slowest`,
    app: appB,
    target: 'max < 1000 ms',
    met: appB.errors === 0 && appB.p99 < 1000,
    note: 'p99 over the batches is the slowest batch here',
  });
  ctx.rows.push(rawRateRow(`2c entra remove by members[value eq]: ops/s`, appC, rawC, `${removeRequests.length} sequential PATCHes of ${OPS_PER_REMOVE_REQUEST} ops`));
  ctx.rows.push(p99Row(`2c entra PATCH ${OPS_PER_REMOVE_REQUEST} removals`, appC));
  if (memberCount !== expected) throw new Error(check);
}
