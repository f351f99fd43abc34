import { expectStatus } from '../lib/http.js';
import { runConcurrent, Samples, type Figures } from '../lib/stats.js';
import type { Exec, Sql } from '../lib/engine.js';
import { PATCH_OP, phase, SCIM_GROUP, scim, warmup, type BenchContext, type Directory } from './context.js';
import type { Imported } from './okta-import.js';
import { directoryUsers, seedDirectoryUsers } from './seed.js';
import { p99Row, rawRateRow } from './targets.js';

/**
 * Workload 2, Entra-style group sync:
 *  a. 200 groups, each created empty then filled with one PATCH adding 50 members (concurrency N);
 *  b. one group of `bigGroup` members built in PATCHes of 1,000 members (in order, one group);
 *  c. 1,000 of them removed by `members[value eq "..."]` paths, one removal per operation,
 *     10 operations per request, as Entra batches them.
 * Each part runs after an unmeasured warm-up of the same shape in the warm-up directories
 * (a few groups of 50; a group built from 2 PATCHes of 1,000 and trimmed by 10 PATCHes).
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

/** 2a, app side: `count` groups created empty, then filled with one PATCH adding 50 of `members` (SCIM ids). */
function appGroups(ctx: BenchContext, dir: Directory, label: string, members: string[], count: number, samples?: Samples) {
  const time = <T>(l: string, fn: () => Promise<T>) => (samples ? samples.time(l, fn) : fn());
  return runConcurrent(count, ctx.concurrency, async (g) => {
    const name = `${label}-${g}-${ctx.tag}`;
    const created = expectStatus(
      await time('post', () => scim(ctx, dir, 'POST', '/Groups', { schemas: [SCIM_GROUP], displayName: name, externalId: name })),
      [201],
      'group create',
    ).body as { id: string };
    const value = Array.from({ length: MEMBERS_PER_GROUP }, (_, k) => ({ value: members[(g * MEMBERS_PER_GROUP + k) % members.length] }));
    expectStatus(
      await time('patch', () => scim(ctx, dir, 'PATCH', `/Groups/${created.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Add', path: 'members', value }] })),
      [204],
      'group fill',
    );
  });
}

/** 2a, raw side: the same groups (user ids), one transaction for the create and one for the fill. */
function rawGroups(ctx: BenchContext, sql: Sql, dir: Directory, label: string, members: string[], count: number) {
  return runConcurrent(count, ctx.concurrency, async (g) => {
    const group = await sql.tx((q) => rawGroupCreate(q, dir, `${label}-${g}-${ctx.tag}`));
    const users = Array.from({ length: MEMBERS_PER_GROUP }, (_, k) => members[(g * MEMBERS_PER_GROUP + k) % members.length]!);
    await sql.tx((q) => rawMemberChange(q, dir, group, users, 'add'));
  });
}

/** 2b + 2c on one group: `members` added in PATCHes of 1,000, then the first `removals` removed 10 operations per PATCH. */
async function appBigGroup(ctx: BenchContext, dir: Directory, name: string, members: string[], removals: number, measure: (part: 'b' | 'c', fn: () => Promise<Figures>) => Promise<Figures>) {
  const group = expectStatus(
    await scim(ctx, dir, 'POST', '/Groups', { schemas: [SCIM_GROUP], displayName: `${name}-${ctx.tag}`, externalId: `${name}-${ctx.tag}` }),
    [201],
    'big group',
  ).body as { id: string };
  const batches = chunks(members, BATCH);
  const b = await measure('b', () =>
    sequential(
      batches.length,
      async (i) => {
        const value = batches[i]!.map((id) => ({ value: id }));
        expectStatus(
          await scim(ctx, dir, 'PATCH', `/Groups/${group.id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Add', path: 'members', value }] }),
          [204],
          'batch add',
        );
      },
      members.length,
    ),
  );
  const removeRequests = chunks(members.slice(0, removals), OPS_PER_REMOVE_REQUEST);
  const c = await measure('c', () =>
    sequential(
      removeRequests.length,
      async (i) => {
        const Operations = removeRequests[i]!.map((id) => ({ op: 'Remove', path: `members[value eq "${id}"]` }));
        expectStatus(await scim(ctx, dir, 'PATCH', `/Groups/${group.id}`, { schemas: [PATCH_OP], Operations }), [204], 'remove');
      },
      removals,
    ),
  );
  return { groupId: group.id, b, c, requests: { b: batches.length, c: removeRequests.length } };
}

async function rawBigGroup(ctx: BenchContext, sql: Sql, dir: Directory, name: string, members: string[], removals: number, measure: (part: 'b' | 'c', fn: () => Promise<Figures>) => Promise<Figures>) {
  const batches = chunks(members, BATCH);
  const removeRequests = chunks(members.slice(0, removals), OPS_PER_REMOVE_REQUEST);
  const group = await sql.tx((q) => rawGroupCreate(q, dir, `${name}-${ctx.tag}`));
  const b = await measure('b', () => sequential(batches.length, (i) => sql.tx((q) => rawMemberChange(q, dir, group, batches[i]!, 'add')), members.length));
  const c = await measure('c', () => sequential(removeRequests.length, (i) => sql.tx((q) => rawMemberChange(q, dir, group, removeRequests[i]!, 'remove')), removals));
  return { b, c };
}

export async function runEntraGroups(ctx: BenchContext, app: Directory, raw: Directory, imported: Imported) {
  const c = ctx.concurrency;
  const warm = imported.warm;
  const ws = ctx.sizes.warm;

  // ---------- a. 200 groups of 50 (after `warm.groups` unmeasured ones in the warm-up directory) ----------
  const A = '2a entra groups';
  ctx.log(`2a entra: ${GROUPS} groups + PATCH add ${MEMBERS_PER_GROUP} at concurrency ${c} (after ${ws.groups} unmeasured)`);
  const samples = new Samples();
  await warmup(ctx, A, 'app', 'groups', () => appGroups(ctx, warm.app, 'entra-warm', warm.scimIds, ws.groups));
  const appA = await phase(ctx, A, 'app', { unit: 'groups' }, () => appGroups(ctx, app, 'entra', imported.scimIds, GROUPS, samples));

  // ---------- b/c need `bigGroup` users in each directory: seed the missing ones set-based ----------
  const big = ctx.sizes.bigGroup;
  const { appMembers, rawMembers, warmAppMembers, warmRawMembers, rawA } = await ctx.engine.withSql(async (sql) => {
    await warmup(ctx, A, 'raw', 'groups', () => rawGroups(ctx, sql, warm.raw, 'entra-raw-warm', warm.rawUserIds, ws.groups));
    const rawA = await phase(ctx, A, 'raw', { unit: 'groups' }, () => rawGroups(ctx, sql, raw, 'entra-raw', imported.rawUserIds, GROUPS));
    const n = imported.scimIds.length;
    if (n < big) {
      await seedDirectoryUsers(sql.query, app, `seed-app-${ctx.tag}`, n, big - 1);
      await seedDirectoryUsers(sql.query, raw, `seed-raw-${ctx.tag}`, n, big - 1);
    }
    const w = warm.scimIds.length;
    if (w < ws.bigGroup) {
      await seedDirectoryUsers(sql.query, warm.app, `seed-app-warm-${ctx.tag}`, w, ws.bigGroup - 1);
      await seedDirectoryUsers(sql.query, warm.raw, `seed-raw-warm-${ctx.tag}`, w, ws.bigGroup - 1);
    }
    return {
      rawA,
      appMembers: (await directoryUsers(sql.query, app, big)).map((r) => r.id),
      rawMembers: (await directoryUsers(sql.query, raw, big)).map((r) => r.user_id),
      warmAppMembers: (await directoryUsers(sql.query, warm.app, ws.bigGroup)).map((r) => r.id),
      warmRawMembers: (await directoryUsers(sql.query, warm.raw, ws.bigGroup)).map((r) => r.user_id),
    };
  });
  ctx.rows.push(rawRateRow('2a entra group create + add 50: groups/s', appA, rawA));
  ctx.rows.push(p99Row('2a entra POST /Groups', samples.figures('post', appA.seconds)));
  ctx.rows.push(p99Row('2a entra PATCH add 50 members', samples.figures('patch', appA.seconds)));

  // ---------- b. one big group in batches of 1,000; c. 1,000 removals, 10 operations per request ----------
  // warm-up: a group in the warm-up directory built and trimmed the same way (fewer batches)
  ctx.log(`2b/2c entra: one group of ${big} members in PATCHes of ${BATCH}, then ${REMOVALS} removals (after a warm-up group of ${warmAppMembers.length})`);
  const warmRemovals = Math.min(REMOVALS / 10, warmAppMembers.length);
  const unit = { b: 'members', c: 'removals' } as const;
  const phaseName = { b: '2b entra add 1000', c: '2c entra removals' } as const;
  await appBigGroup(ctx, warm.app, 'entra-big-warm', warmAppMembers, warmRemovals, (part, fn) => warmup(ctx, phaseName[part], 'app', unit[part], fn));
  const appBig = await appBigGroup(ctx, app, 'entra-big', appMembers, REMOVALS, (part, fn) => phase(ctx, phaseName[part], 'app', { unit: unit[part] }, fn));
  const { rawB, rawC, memberCount } = await ctx.engine.withSql(async (sql) => {
    await rawBigGroup(ctx, sql, warm.raw, 'entra-raw-big-warm', warmRawMembers, warmRemovals, (part, fn) => warmup(ctx, phaseName[part], 'raw', unit[part], fn));
    const { b: rawB, c: rawC } = await rawBigGroup(ctx, sql, raw, 'entra-raw-big', rawMembers, REMOVALS, (part, fn) =>
      phase(ctx, phaseName[part], 'raw', { unit: unit[part] }, fn),
    );
    const [row] = await sql.query<{ n: number }>(
      `select count(*)::int as n from team_members tm join scim_groups sg on sg.team_id = tm.team_id where sg.id = $1`,
      [appBig.groupId],
    );
    return { rawB, rawC, memberCount: row!.n };
  });
  const appB = appBig.b;
  const appC = appBig.c;
  const expected = appMembers.length - REMOVALS;
  const check = memberCount === expected ? `group holds ${memberCount} members as expected` : `group holds ${memberCount}, expected ${expected}`;

  const batchRow = rawRateRow(`2b entra PATCH add ${BATCH}: members/s`, appB, rawB, `${appBig.requests.b} sequential PATCHes; ${check}`);
  ctx.rows.push(batchRow);
  ctx.rows.push({
    workload: `2b entra PATCH add ${BATCH}: slowest`,
    app: appB,
    target: 'max < 1000 ms',
    met: appB.errors === 0 && appB.p99 < 1000,
    note: 'p99 over the batches is the slowest batch here',
  });
  ctx.rows.push(rawRateRow(`2c entra remove by members[value eq]: ops/s`, appC, rawC, `${appBig.requests.c} sequential PATCHes of ${OPS_PER_REMOVE_REQUEST} ops`));
  ctx.rows.push(p99Row(`2c entra PATCH ${OPS_PER_REMOVE_REQUEST} removals`, appC));
  if (memberCount !== expected) throw new Error(check);
}
