import { randomBytes } from 'node:crypto';
import type { Engine, Usage } from '../lib/engine.js';
import { expectStatus, request, type HttpResult } from '../lib/http.js';
import { cpuText, type Row } from '../lib/report.js';
import type { CpuPerOp, Figures } from '../lib/stats.js';

export type Sizes = {
  /** users imported in workload 1 */
  users: number;
  /** members of the big group in workload 2 */
  bigGroup: number;
  /** users of the access-decision org (workload 4) */
  accessUsers: number;
  /** growth points (workload 6) */
  growthSmall: number;
  growthLarge: number;
  /** request counts of the read workloads */
  accessSingles: number;
  accessBatches: number;
  signIns: number;
  growthProbes: number;
  /**
   * Unmeasured warm-up before every measured phase (app and raw alike, same request and
   * statement shapes, in warm-up tenants/directories so the measured part sees the same data):
   * without it the first workloads mostly measure V8 compiling the service's hot paths.
   */
  warm: {
    healthz: number;
    /** users imported into the warm-up directories before workload 1 (later warm-ups reuse them) */
    users: number;
    /** groups created and filled with 50 warm-up users before 2a */
    groups: number;
    /** users seeded into the warm-up directories so 2b/2c can warm up on a group built in PATCHes of 1,000 */
    bigGroup: number;
    /** warm-up users deactivated before workload 3 */
    deactivations: number;
    accessSingles: number;
    accessBatches: number;
    /** sign-ins of warm-up people (their own signed responses) before workload 5 */
    signIns: number;
    growthProbes: number;
  };
};

/** One unmeasured or measured phase: its figures, what it cost in CPU, and the service's VmRSS over it. */
export type PhaseRecord = {
  workload: string;
  side: 'app' | 'raw';
  warmup: boolean;
  unit: string;
  figures: Figures;
  usage: Usage;
  rss: { startMb: number; maxMb: number; endMb: number };
};

export type BenchContext = {
  engine: Engine;
  sizes: Sizes;
  concurrency: number;
  quick: boolean;
  rows: Row[];
  /** every phase run so far, warm-ups included (written to the JSON) */
  phases: PhaseRecord[];
  /** a run-unique tag for emails, slugs and names */
  tag: string;
  /** prints a timestamped line; unless `rss: false`, with the service's VmRSS now and its highest since the previous line */
  log(msg: string, opts?: { rss?: boolean }): void;
};

const roundUsage = (u: Usage): Usage =>
  Object.fromEntries(Object.entries(u).map(([k, v]) => [k, typeof v === 'number' ? Math.round(v * 10) / 10 : v])) as Usage;

/**
 * Runs one phase (`fn` returns its figures, `count` counted units) and measures around it:
 * the service's and the PostgreSQL server's CPU from /proc, this process's CPU, and the
 * service's VmRSS (start, highest sample, end). The figures come back with `cpu` per unit;
 * the phase is logged (warm-ups too) and recorded in `ctx.phases`.
 */
export async function phase(
  ctx: BenchContext,
  workload: string,
  side: 'app' | 'raw',
  opts: { unit: string; warmup?: boolean; /** false: the phase does not touch the database, leave PostgreSQL CPU out */ database?: boolean },
  fn: () => Promise<Figures>,
): Promise<Figures> {
  const engine = ctx.engine;
  const startMb = engine.memory().rssMb;
  const window = engine.openRssWindow();
  const mark = engine.mark();
  let figures: Figures;
  try {
    figures = await fn();
  } finally {
    engine.closeRssWindow(window);
  }
  const usage = roundUsage(engine.usageSince(mark));
  const per = (ms: number | undefined) => (ms === undefined || !figures.count ? undefined : Math.round((ms / figures.count) * 1000) / 1000);
  const cpu: CpuPerOp = {
    service: per(usage.serviceCpuMs),
    postgres: opts.database === false ? undefined : per(usage.pgCpuMs),
    bench: per(usage.benchCpuMs) ?? 0,
  };
  figures = { ...figures, cpu };
  const endMb = engine.memory().rssMb;
  const rss = { startMb, maxMb: Math.max(window.maxMb, startMb, endMb), endMb };
  ctx.phases.push({ workload, side, warmup: !!opts.warmup, unit: opts.unit, figures, usage, rss });

  const cpuLine = [
    cpu.service !== undefined ? `svc ${cpuText(cpu.service)}` : '',
    cpu.postgres !== undefined ? `pg ${cpuText(cpu.postgres)}` : '',
    `bench ${cpuText(cpu.bench)}`,
  ]
    .filter(Boolean)
    .join(', ');
  const rssText = rss.startMb || rss.endMb ? `service RSS ${rss.startMb}->${rss.endMb} MB, max ${rss.maxMb}` : 'service stopped';
  ctx.log(
    `  ${workload} ${side}${opts.warmup ? ' warm-up' : ''}: ${figures.count} ${opts.unit} in ${figures.seconds} s = ${figures.perSecond}/s, ` +
      `p50 ${figures.p50} p99 ${figures.p99} ms${figures.errors ? `, ${figures.errors} ERRORS` : ''} | cpu ms/${opts.unit.replace(/s$/, '')}: ${cpuLine} | ${rssText}`,
    { rss: false },
  );
  return figures;
}

/** `phase` for an unmeasured warm-up. Failures still fail the run: a warm-up that errors warms the wrong paths. */
export async function warmup(
  ctx: BenchContext,
  workload: string,
  side: 'app' | 'raw',
  unit: string,
  fn: () => Promise<Figures>,
  opts: { database?: boolean } = {},
): Promise<Figures> {
  const figures = await phase(ctx, workload, side, { ...opts, unit, warmup: true }, fn);
  if (figures.errors) throw new Error(`${workload} ${side} warm-up: ${figures.errors} errors`);
  return figures;
}

export const SCIM_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCIM_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export function admin(ctx: BenchContext, method: string, path: string, json?: unknown): Promise<HttpResult> {
  return request(ctx.engine.base, method, `/api/v1${path}`, { headers: { authorization: `Bearer ${ctx.engine.adminToken}` }, json });
}

export function scim(ctx: BenchContext, dir: Directory, method: string, path: string, json?: unknown): Promise<HttpResult> {
  return request(ctx.engine.base, method, `/scim/v2/${dir.id}${path}`, {
    headers: { authorization: `Bearer ${dir.token}`, ...(json !== undefined ? { 'content-type': 'application/scim+json' } : {}) },
    json,
  });
}

export type Directory = { id: string; token: string; orgId: string };

/** An org (with an owner, as the API requires) and a SCIM directory, created through the admin API. */
export async function createTenant(ctx: BenchContext, label: string): Promise<{ orgId: string; ownerId: string; directory: Directory }> {
  const owner = expectStatus(
    await admin(ctx, 'POST', '/users', { email: `owner-${label}-${ctx.tag}@bench.example`, name: `Owner ${label}` }),
    [201],
    'create owner',
  ).body as { id: string };
  const org = expectStatus(
    await admin(ctx, 'POST', '/orgs', { name: `Bench ${label}`, slug: `bench-${label}-${ctx.tag}`, ownerUserId: owner.id }),
    [201],
    'create org',
  ).body as { id: string };
  const dir = expectStatus(await admin(ctx, 'POST', `/orgs/${org.id}/scim-directories`, { name: `Bench ${label}` }), [201], 'create directory')
    .body as { id: string; token: string };
  return { orgId: org.id, ownerId: owner.id, directory: { id: dir.id, token: dir.token, orgId: org.id } };
}

export const runTag = () => randomBytes(3).toString('hex');
