import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { Engine, type EngineName, type RssWindow } from './lib/engine.js';
import { printTable, writeJson } from './lib/report.js';
import { closeHttp } from './lib/http.js';
import { createTenant, runTag, type BenchContext, type Sizes } from './workloads/context.js';
import { runOktaImport } from './workloads/okta-import.js';
import { runEntraGroups } from './workloads/entra-groups.js';
import { runDeprovision } from './workloads/deprovision.js';
import { runAccess } from './workloads/access.js';
import { runSso } from './workloads/sso.js';
import { runGrowth } from './workloads/growth.js';
import { runHttpFloor } from './workloads/http-floor.js';

/**
 * `npm run bench`: starts the real service as a child process on 127.0.0.1, drives
 * it over HTTP from this process with bounded request counts and a fixed
 * concurrency, measures the same work as plain SQL (or plain xml-crypto) for a raw
 * limit, prints a table and writes JSON to bench/results/.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RSS_LIMIT_MB = 300;

const program = new Command()
  .name('bench')
  .description('Throughput and latency of the identity service against raw SQL / xml-crypto limits')
  .addOption(new Option('--db <engine>', 'database engine').choices(['postgres', 'pglite']).default('postgres'))
  .option('--database-url <url>', 'PostgreSQL server to create the bench database on', process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres')
  .option('--quick', 'small sizes; finishes in under 2 minutes on PostgreSQL', false)
  .option('--large', 'workload 1 imports 100,000 users', false)
  .option('--users <n>', 'users imported in workload 1 (overrides --quick/--large)', (v) => parsePositive(v))
  .option('--concurrency <n>', 'requests in flight', (v) => parsePositive(v), 16)
  .option('--only <list>', 'workloads to run, e.g. 0,1,2,4 (0 is the HTTP floor; 2 and 3 need 1)', (v) => new Set(v.split(',').map((s) => Number(s.trim()))))
  .option('--out <dir>', 'where the JSON goes', path.join(ROOT, 'bench/results'))
  .option('--log-level <level>', 'the service LOG_LEVEL', 'warn')
  .option('--cpu-prof <dir>', 'run the service with --cpu-prof into this directory')
  .option('--node-arg <arg>', 'extra node option for the service process, repeatable (e.g. --node-arg=--trace-gc, --node-arg=--max-semi-space-size=4)', (v: string, all: string[] = []) => [...all, v])
  .option('--keep-db', 'keep the PostgreSQL bench database for EXPLAIN ANALYZE afterwards (prints its name)', false);

function parsePositive(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`not a positive integer: ${v}`);
  return n;
}

function sizesFor(opts: { quick: boolean; large: boolean; users?: number }): Sizes {
  const quick = opts.quick;
  const users = opts.users ?? (quick ? 1_000 : opts.large ? 100_000 : 10_000);
  return {
    users,
    bigGroup: 10_000,
    accessUsers: 10_000,
    growthSmall: quick ? 2_000 : 10_000,
    growthLarge: quick ? 20_000 : 100_000,
    // measured in 4 rounds that alternate app and raw (workload 4): 1,000 / 2,500 per round and side
    accessSingles: quick ? 4_000 : 10_000,
    // at least three rounds of the 16 connections: 20 batches measured mostly the ramp-down of one round
    accessBatches: quick ? 48 : 100,
    signIns: quick ? 600 : 2_000,
    growthProbes: quick ? 200 : 500,
    // Measured back to back in 250-user chunks, the service's CPU per imported user falls until about
    // 1,250-1,500 users (3.9 -> 1.5 ms) and is flat after: the warm-up import is that long in every mode.
    warm: {
      healthz: 500,
      users: 1_500,
      // as many as measured: 2a follows the raw import, during which the service sits idle and V8 drops
      // optimised code (after the 100,000-user raw import, 50 warm-up groups left 2a measured JIT-cold)
      groups: 200,
      bigGroup: 2_000,
      deactivations: 100,
      // the access route and its statement are new to V8 here: in 4 alternating rounds after 500, the service's CPU
      // per decision still fell 0.62 -> 0.45 -> 0.32 -> 0.23 ms (and the raw client's 0.25 -> 0.09)
      accessSingles: 3_000,
      // one batch per pooled connection, app and raw: a backend's first run of the statement loads its catalog caches
      accessBatches: 16,
      // after 200 warm-up sign-ins, V8 still compiled ~780 functions (xml-crypto, xpath, xmldom) during the
      // 2,000 measured ones (--trace-opt), at 8 ms of service CPU per sign-in; after 1,000, 5-6 ms
      signIns: quick ? 600 : 1000,
      // of each kind, interleaved like the measured probes
      growthProbes: quick ? 60 : 100,
    },
  };
}

async function main() {
  const opts = program.parse().opts<{
    db: EngineName;
    databaseUrl: string;
    quick: boolean;
    large: boolean;
    users?: number;
    concurrency: number;
    only?: Set<number>;
    out: string;
    logLevel: string;
    cpuProf?: string;
    nodeArg?: string[];
    keepDb: boolean;
  }>();
  const sizes = sizesFor(opts);
  const wants = (n: number) => !opts.only || opts.only.has(n) || (n === 1 && (opts.only.has(2) || opts.only.has(3)));
  const started = performance.now();
  let engineRef: Engine | undefined;
  // the service's highest VmRSS between two log lines (sampled every 100 ms), so the log shows where the peak is made
  let rssSinceLastLine: RssWindow | undefined;
  const log = (msg: string, o: { rss?: boolean } = {}) => {
    const engine = engineRef;
    let rss = '';
    if (engine && o.rss !== false) {
      const mem = engine.memory();
      const max = rssSinceLastLine ? engine.closeRssWindow(rssSinceLastLine).maxMb : mem.rssMb;
      rssSinceLastLine = engine.openRssWindow();
      rss = ` (service RSS ${mem.rssMb ? `${mem.rssMb} MB` : 'stopped'}, max since the previous line ${max} MB, peak ${mem.peakMb} MB)`;
    }
    console.log(`[${((performance.now() - started) / 1000).toFixed(1)}s] ${msg}${rss}`);
  };

  log(`starting the service on ${opts.db}${opts.quick ? ' (quick)' : ''}`);
  const engine = await Engine.create({
    name: opts.db,
    root: ROOT,
    adminUrl: opts.databaseUrl,
    concurrency: opts.concurrency,
    logLevel: opts.logLevel,
    nodeArgs: [...(opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(opts.cpuProf)}`] : []), ...(opts.nodeArg ?? [])],
  });
  engineRef = engine;
  const ctx: BenchContext = { engine, sizes, concurrency: opts.concurrency, quick: opts.quick, rows: [], phases: [], tag: runTag(), log };
  const skipped: Record<string, string> = {};
  let failure: unknown;
  try {
    if (wants(0)) await runHttpFloor(ctx);
    const settle = async () => {
      log('settling the database (vacuum analyze, checkpoint, no autovacuum running)');
      await engine.settle();
    };
    if (wants(1)) {
      const app = await createTenant(ctx, 'okta');
      const raw = await createTenant(ctx, 'raw');
      // warm-ups write into their own tenants, so the measured directories hold exactly what they did before
      const warm = { app: (await createTenant(ctx, 'okta-warm')).directory, raw: (await createTenant(ctx, 'raw-warm')).directory };
      // no settle before the import: the database is fresh, and ANALYZE of still-empty tables leaves
      // statistics of zero rows behind, with which the first connections' cached plans (foreign-key
      // checks included) scan tables that then grow to 100k rows
      const imported = await runOktaImport(ctx, app.directory, raw.directory, warm);
      if (wants(2)) await settle(), await runEntraGroups(ctx, app.directory, raw.directory, imported);
      if (wants(3)) await settle(), await runDeprovision(ctx, app.directory, raw.directory, imported);
    }
    if (wants(4)) await runAccess(ctx, await createTenant(ctx, 'access'), settle);
    if (wants(5)) {
      await settle();
      const reason = await runSso(ctx);
      if (reason) skipped['5 sso'] = reason;
    }
    if (wants(6)) await runGrowth(ctx, await createTenant(ctx, 'growth'), settle);
    log('done');
  } catch (err) {
    failure = err;
    console.error(err);
  }
  const peakRssMb = engine.peakRssMb();
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  try {
    // stops the service and closes this process's pools before it drops the database
    await engine.close({ keepDatabase: opts.keepDb });
    await closeHttp();
    if (opts.keepDb && engine.databaseName) console.log(`kept database ${engine.databaseName}`);
  } catch (err) {
    console.error('cleanup failed:', err);
  }
  engineRef = undefined;

  console.log('');
  console.log(
    `engine ${opts.db}, ${opts.quick ? 'quick' : opts.large ? 'large' : 'default'} sizes (${JSON.stringify(sizes)}), concurrency ${opts.concurrency}, ` +
      `${os.cpus().length} cpus, ${seconds} s`,
  );
  printTable(ctx.rows);
  for (const [name, reason] of Object.entries(skipped)) console.log(`  ${name}: skipped: ${reason}`);
  const growthUsers = sizes.growthLarge;
  const rssMet = peakRssMb < RSS_LIMIT_MB;
  console.log(`service peak RSS (VmHWM, every service process of the run): ${peakRssMb} MB at ${growthUsers} users; target < ${RSS_LIMIT_MB} MB at 100k users: ${rssMet ? 'yes' : 'NO'}`);
  const byRss = [...ctx.phases].filter((p) => p.rss.maxMb > 0).sort((a, b) => b.rss.maxMb - a.rss.maxMb);
  if (byRss.length) {
    const top = byRss
      .slice(0, 4)
      .map((p) => `${p.workload} ${p.side}${p.warmup ? ' warm-up' : ''} ${p.rss.maxMb} MB (${p.rss.startMb}->${p.rss.endMb})`)
      .join('; ');
    console.log(`highest service VmRSS by phase: ${top}`);
    // RSS only falls when V8 runs a full GC, so the highest phase may just be the last before one: show what grew it
    const rises = [...ctx.phases]
      .filter((p) => p.rss.maxMb - p.rss.startMb >= 5)
      .sort((a, b) => b.rss.maxMb - b.rss.startMb - (a.rss.maxMb - a.rss.startMb))
      .slice(0, 5)
      .map((p) => `${p.workload} ${p.side}${p.warmup ? ' warm-up' : ''} +${p.rss.maxMb - p.rss.startMb} MB`)
      .join('; ');
    if (rises) console.log(`largest service VmRSS rises by phase: ${rises}`);
  }
  const file = writeJson(opts.out, {
    engine: opts.db,
    mode: opts.quick ? 'quick' : opts.large ? 'large' : 'default',
    sizes,
    concurrency: opts.concurrency,
    seconds,
    peakRssMb,
    rssTarget: { limitMb: RSS_LIMIT_MB, met: rssMet },
    skipped,
    rows: ctx.rows,
    phases: ctx.phases,
    error: failure ? String(failure) : undefined,
  });
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
  if (failure) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
