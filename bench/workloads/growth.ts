import { expectStatus } from '../lib/http.js';
import { prng, runConcurrent, Samples, type Figures } from '../lib/stats.js';
import type { Row } from '../lib/report.js';
import type { Exec } from '../lib/engine.js';
import { admin, phase, scim, warmup, type BenchContext, type Directory } from './context.js';
import { seedAccessStructure, seedAccessUsers } from './access-seed.js';
import { ACCESS_SHAPE } from './access.js';
import { analyze } from './seed.js';

/**
 * Workload 6, growth: the same `userName eq` filter, single-user GET and access
 * decision on an org at a small and a large user count (users seeded set-based).
 * The large/small ratio of p50 latency should stay near 1 (index lookups, no scans).
 * Probes run one at a time (concurrency 1), the kinds interleaved, after a warm-up on other sampled users, so
 * latency is not queueing.
 */
const GROWTH_TARGET = 1.5;

type Probe = { userName: string; scimId: string; userId: string; projectId: string };

async function sampleProbes(q: Exec, dir: Directory, count: number, seed: number): Promise<Probe[]> {
  const users = await q<{ id: string; user_id: string; user_name: string }>(
    `select id, user_id, user_name from scim_users where directory_id = $1 order by md5(id::text || $2) limit $3`,
    [dir.id, String(seed), count],
  );
  const projects = await q<{ id: string }>(`select id from projects where org_id = $1`, [dir.orgId]);
  const rnd = prng(seed);
  return users.map((u) => ({ userName: u.user_name, scimId: u.id, userId: u.user_id, projectId: projects[Math.floor(rnd() * projects.length)]!.id }));
}

const KINDS = ['filter', 'get', 'access'] as const;
type Kind = (typeof KINDS)[number];

/**
 * The three kinds interleaved, one request at a time (filter, get, access for each
 * probe): a slow spell of a shared machine then touches every kind a little instead
 * of one kind's whole sample, as it did when each kind ran in a window of its own.
 */
async function measure(ctx: BenchContext, dir: Directory, at: string, warm: Probe[], probes: Probe[]) {
  const request = (kind: Kind, p: Probe) => {
    if (kind === 'filter') {
      return scim(ctx, dir, 'GET', `/Users?filter=${encodeURIComponent(`userName eq "${p.userName}"`)}`).then((res) => {
        expectStatus(res, [200], 'filter');
        if ((res.body as { totalResults: number }).totalResults !== 1) throw new Error('filter did not find the user');
      });
    }
    if (kind === 'get') return scim(ctx, dir, 'GET', `/Users/${p.scimId}`).then((res) => void expectStatus(res, [200], 'get'));
    return admin(ctx, 'GET', `/orgs/${dir.orgId}/projects/${p.projectId}/access/${p.userId}`).then((res) => void expectStatus(res, [200], 'access'));
  };
  const run = (list: Probe[], samples = new Samples()) =>
    runConcurrent(list.length * KINDS.length, 1, async (i) => {
      const kind = KINDS[i % KINDS.length]!;
      await samples.time(kind, () => request(kind, list[Math.floor(i / KINDS.length)]!));
    });
  const name = `6 growth @${at}`;
  await warmup(ctx, name, 'app', 'requests', () => run(warm));
  const samples = new Samples();
  const all = await phase(ctx, name, 'app', { unit: 'requests' }, () => run(probes, samples));
  const out = {} as Record<Kind, Figures>;
  // every kind's figures over the phase's wall time; CPU is per request of the mix
  for (const kind of KINDS) out[kind] = { ...samples.figures(kind, all.seconds), cpu: all.cpu };
  return { byKind: out, all };
}

/** Service CPU per request of the interleaved mix at both sizes: steadier than latency on a shared machine. */
function cpuRatio(small: Figures, large: Figures): string {
  const a = small.cpu?.service;
  const b = large.cpu?.service;
  if (a === undefined || b === undefined || a <= 0) return '';
  return `; svc cpu over the mix ${a} -> ${b} ms/request: ratio ${Math.round((b / a) * 100) / 100}`;
}

export async function runGrowth(ctx: BenchContext, tenant: { directory: Directory }, settle: () => Promise<void> = async () => {}) {
  const dir = tenant.directory;
  const prefix = `grow-${ctx.tag}`;
  const { growthSmall: small, growthLarge: large, growthProbes: count } = ctx.sizes;
  const w = ctx.sizes.warm.growthProbes;
  const label = (k: number) => (k >= 1000 ? `${k / 1000}k` : String(k));
  // the first `w` sampled users are the warm-up's, the next `count` are measured
  ctx.log(`6 growth: ${small} users (${count} probes of each kind, after ${w} unmeasured)`);
  const smallProbes = await ctx.engine.withSql(async (sql) => {
    await seedAccessStructure(sql.query, dir, prefix, ACCESS_SHAPE);
    await seedAccessUsers(sql.query, dir, prefix, ACCESS_SHAPE, 1, small);
    await analyze(sql.query);
    return sampleProbes(sql.query, dir, w + count, 6);
  });
  await settle();
  const atSmall = await measure(ctx, dir, label(small), smallProbes.slice(0, w), smallProbes.slice(w));
  ctx.log(`6 growth: ${large} users`);
  const largeProbes = await ctx.engine.withSql(async (sql) => {
    await seedAccessUsers(sql.query, dir, prefix, ACCESS_SHAPE, small + 1, large);
    await analyze(sql.query);
    return sampleProbes(sql.query, dir, w + count, 7);
  });
  await settle();
  const atLarge = await measure(ctx, dir, label(large), largeProbes.slice(0, w), largeProbes.slice(w));

  const names = { filter: 'SCIM GET ?filter=userName eq', get: 'SCIM GET /Users/:id', access: 'GET .../access/:userId' } as const;
  for (const kind of KINDS) {
    const [a, b] = [atSmall.byKind[kind], atLarge.byKind[kind]];
    const exact = b.p50 / Math.max(a.p50, 0.01);
    const ratio = Math.round(exact * 1000) / 1000;
    const row: Row = {
      workload: `6 growth ${names[kind]} @${label(large)}`,
      app: b,
      target: `p50 ${label(large)}/${label(small)} < ${GROWTH_TARGET}`,
      met: exact < GROWTH_TARGET && atLarge.all.errors === 0,
      note: `p50 ${a.p50} ms at ${label(small)} users -> ${b.p50} ms at ${label(large)}: ratio ${ratio}` + cpuRatio(atSmall.all, atLarge.all),
    };
    ctx.rows.push({ workload: `6 growth ${names[kind]} @${label(small)}`, app: a });
    ctx.rows.push(row);
  }
}
