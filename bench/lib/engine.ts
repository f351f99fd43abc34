import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { createDbFromPglite } from '../../src/db/knex.js';
import { PgCpu, processCpuMs, processMemoryMb } from './procfs.js';
import { freePort, startServiceProcess, type ServiceHandle } from './service.js';

/**
 * Direct SQL access for seeding and for the raw baselines. `query` and `tx`
 * take `$1` parameters (pg and PGlite alike); `knex` is there to run the
 * service's own query functions (the access decision query) without HTTP.
 */
export type Exec = <T = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<T[]>;
export type Sql = {
  query: Exec;
  tx<T>(fn: (q: Exec) => Promise<T>): Promise<T>;
  knex: Knex;
};

export type EngineName = 'postgres' | 'pglite';

/** Counters at one moment; `usageSince` turns two of them into what a phase cost. */
export type UsageMark = { at: number; servicePid: number; serviceCpuMs?: number; pg?: { backends: number; background: number }; benchCpuMs: number };
/** CPU milliseconds spent during a phase: by the service process, by PostgreSQL (when it is a server), by this process. */
export type Usage = {
  seconds: number;
  serviceCpuMs?: number;
  pgCpuMs?: number;
  pgBackendCpuMs?: number;
  pgBackgroundCpuMs?: number;
  benchCpuMs: number;
};
/** Highest VmRSS seen by the sampler while the window was open. */
export type RssWindow = { maxMb: number };

const SAMPLE_MS = 100;

/**
 * The database under test and the service process on it.
 * PostgreSQL: a fresh `idp_bench_<random>` database, dropped at the end; SQL runs beside the service.
 * PGlite: the service owns its data dir (one process at a time), so `withSql` stops the
 * service, opens the data dir in this process, and starts the service again on the same port.
 */
export class Engine {
  private service?: ServiceHandle;
  private peakMb = 0;
  private pgSql?: Sql & { close(): Promise<void> };
  private readonly pgCpu?: PgCpu;
  private readonly sampler: NodeJS.Timeout;
  private readonly rssWindows = new Set<RssWindow>();
  private constructor(
    readonly name: EngineName,
    private readonly root: string,
    private readonly env: Record<string, string>,
    readonly adminToken: string,
    private readonly port: number,
    private readonly dataDir: string,
    private readonly adminUrl: string | undefined,
    readonly databaseName: string | undefined,
    private readonly concurrency: number,
    private readonly nodeArgs: string[],
  ) {
    if (databaseName && PgCpu.available()) {
      this.pgCpu = new PgCpu(databaseName);
      this.pgCpu.sample();
    }
    // VmRSS per phase and PostgreSQL CPU (a backend that exits takes its counters along: sample often)
    this.sampler = setInterval(() => this.sample(), SAMPLE_MS);
    this.sampler.unref();
  }

  static async create(opts: {
    name: EngineName;
    root: string;
    adminUrl: string;
    concurrency: number;
    nodeArgs?: string[];
    logLevel?: string;
    /** PostgreSQL settings for the bench database (`alter database ... set`), e.g. log_statement for query counts */
    databaseSettings?: Record<string, string>;
  }): Promise<Engine> {
    const adminToken = `bench_${randomBytes(24).toString('hex')}`;
    const env: Record<string, string> = { SECRET_KEY: randomBytes(32).toString('hex'), LOG_LEVEL: opts.logLevel ?? 'warn' };
    let databaseName: string | undefined;
    if (opts.name === 'postgres') {
      databaseName = `idp_bench_${randomBytes(6).toString('hex')}`;
      const admin = adminClient(opts.adminUrl);
      await admin.connect();
      try {
        await admin.query(`create database ${databaseName}`);
        for (const [key, value] of Object.entries(opts.databaseSettings ?? {})) {
          if (!/^[a-z_]+$/.test(key)) throw new Error(`bad setting name ${key}`);
          await admin.query(`alter database ${databaseName} set ${key} = ${pg.escapeLiteral(value)}`);
        }
      } finally {
        await admin.end();
      }
      env.DATABASE_URL = withDatabase(opts.adminUrl, databaseName);
      // the service's pool must not be the bottleneck at the bench's concurrency
      env.DATABASE_POOL_MAX = String(Math.max(10, opts.concurrency));
    }
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-bench-'));
    const engine = new Engine(opts.name, opts.root, env, adminToken, await freePort(), dataDir, opts.adminUrl, databaseName, opts.concurrency, opts.nodeArgs ?? []);
    await engine.start();
    return engine;
  }

  get base(): string {
    if (!this.service) throw new Error('service not running');
    return this.service.base;
  }
  get pid(): number {
    return this.service?.pid ?? 0;
  }

  /** Highest VmHWM seen over every service process of this run. */
  peakRssMb(): number {
    if (this.service) this.peakMb = Math.max(this.peakMb, this.service.peakRssMb());
    return this.peakMb;
  }

  /** Current and peak resident memory of the running service, in MB (rssMb 0 while it is stopped). */
  memory(): { rssMb: number; peakMb: number } {
    const mem = this.service ? processMemoryMb(this.service.pid) : undefined;
    if (!mem) return { rssMb: 0, peakMb: this.peakMb };
    this.peakMb = Math.max(this.peakMb, mem.hwmMb);
    return { rssMb: mem.rssMb, peakMb: this.peakMb };
  }

  /** Starts tracking the service's highest VmRSS (sampled every 100 ms); `closeRssWindow` ends it. */
  openRssWindow(): RssWindow {
    const w = { maxMb: this.memory().rssMb };
    this.rssWindows.add(w);
    return w;
  }

  closeRssWindow(w: RssWindow): RssWindow {
    this.sample();
    this.rssWindows.delete(w);
    return w;
  }

  private sample() {
    if (this.rssWindows.size) {
      const { rssMb } = this.memory();
      for (const w of this.rssWindows) w.maxMb = Math.max(w.maxMb, rssMb);
    }
    this.pgCpu?.sample();
  }

  /** CPU counters now (service, PostgreSQL server, this process). */
  mark(): UsageMark {
    this.pgCpu?.sample();
    const cpu = process.cpuUsage();
    return {
      at: performance.now(),
      servicePid: this.pid,
      serviceCpuMs: this.service ? processCpuMs(this.service.pid) : undefined,
      pg: this.pgCpu?.totalMs(),
      benchCpuMs: (cpu.user + cpu.system) / 1000,
    };
  }

  /** What was spent since `from`. The service figure is left out if the service restarted or was stopped meanwhile. */
  usageSince(from: UsageMark): Usage {
    const to = this.mark();
    const usage: Usage = { seconds: (to.at - from.at) / 1000, benchCpuMs: to.benchCpuMs - from.benchCpuMs };
    if (from.serviceCpuMs !== undefined && to.serviceCpuMs !== undefined && from.servicePid === to.servicePid) {
      usage.serviceCpuMs = to.serviceCpuMs - from.serviceCpuMs;
    }
    if (from.pg && to.pg) {
      usage.pgBackendCpuMs = to.pg.backends - from.pg.backends;
      usage.pgBackgroundCpuMs = to.pg.background - from.pg.background;
      usage.pgCpuMs = usage.pgBackendCpuMs + usage.pgBackgroundCpuMs;
    }
    return usage;
  }

  private async start() {
    this.service = await startServiceProcess({
      root: this.root,
      env: this.env,
      adminToken: this.adminToken,
      port: this.port,
      dataDir: this.dataDir,
      nodeArgs: this.nodeArgs,
    });
  }

  private async stopService() {
    if (!this.service) return;
    this.peakRssMb();
    await this.service.stop();
    this.service = undefined;
  }

  /**
   * Between workloads: VACUUM ANALYZE and CHECKPOINT the bench database, then wait
   * (up to 30 s) until no autovacuum worker runs on it, so the cleanup of one
   * workload's bulk writes never runs during (and is never billed to) the next
   * workload's measurement, app or raw. PGlite: nothing to do.
   *
   * Only tables holding rows are vacuumed: VACUUM or ANALYZE of an empty table records
   * it as empty, and every connection then plans for an empty table until autovacuum
   * analyzes it again (the foreign-key checks into `teams` of the group workload ran as
   * sequential scans, app and raw alike). A service in production never has its empty
   * tables analyzed by hand.
   */
  async settle(): Promise<void> {
    if (this.name !== 'postgres') return;
    await this.withSql(async (sql) => {
      const tables = await sql.query<{ name: string }>(`select format('%I.%I', schemaname, relname) as name from pg_stat_user_tables`);
      const filled: string[] = [];
      for (const { name } of tables) {
        if ((await sql.query<{ any: boolean }>(`select exists (select 1 from ${name}) as any`))[0]?.any) filled.push(name);
      }
      if (filled.length) await sql.query(`vacuum (analyze) ${filled.join(', ')}`);
      await sql.query('checkpoint');
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
        const busy = await sql.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where backend_type = 'autovacuum worker' and datname = current_database()`,
        );
        if (!busy[0]?.n) return;
        await new Promise((r) => setTimeout(r, 250));
      }
    });
  }

  async withSql<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    if (this.name === 'postgres') {
      this.pgSql ??= pgSql(this.env.DATABASE_URL!, this.concurrency);
      return fn(this.pgSql);
    }
    await this.stopService();
    const pglite = await PGlite.create(path.join(this.dataDir, 'pglite'));
    const knex = createDbFromPglite(pglite, 60_000);
    try {
      return await fn({
        knex,
        query: async (sql, params) => (await pglite.query(sql, params)).rows as never[],
        tx: (f) => pglite.transaction((t) => f(async (sql, params) => (await t.query(sql, params)).rows as never[])),
      });
    } finally {
      await knex.destroy();
      if (!pglite.closed) await pglite.close();
      await this.start();
    }
  }

  /**
   * Stops the service and closes every pool of this process before the database is
   * dropped: `drop database ... with (force)` terminates whatever is still connected
   * (57P01), and a pooled connection that dies with nobody listening for 'error' would
   * crash the bench. Each step runs even if an earlier one failed; the first error is rethrown.
   */
  async close(opts: { keepDatabase?: boolean } = {}): Promise<void> {
    clearInterval(this.sampler);
    const errors: unknown[] = [];
    const step = async (fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    await step(() => this.stopService());
    await step(async () => {
      const sql = this.pgSql;
      this.pgSql = undefined;
      await sql?.close();
    });
    await step(() => fs.rmSync(this.dataDir, { recursive: true, force: true }));
    if (this.databaseName && this.adminUrl && !opts.keepDatabase) {
      await step(async () => {
        const admin = adminClient(this.adminUrl!);
        await admin.connect();
        try {
          await admin.query(`drop database if exists ${this.databaseName} with (force)`);
        } finally {
          await admin.end();
        }
      });
    }
    if (errors.length) throw errors[0];
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A terminated connection (57P01 when a database is dropped, a server restart) is reported, never left to crash the bench. */
const onConnectionError = (err: Error) => console.error(`bench: database connection error (ignored): ${err.message}`);

function adminClient(url: string): pg.Client {
  const client = new pg.Client({ connectionString: url });
  client.on('error', onConnectionError);
  return client;
}

function pgSql(url: string, concurrency: number): Sql & { close(): Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: concurrency });
  // pg-pool re-emits an idle client's error on the pool: without a listener that is an uncaught 'error' event
  pool.on('error', onConnectionError);
  const knex = knexFactory({
    client: 'pg',
    connection: url,
    // as the service's knex (src/db/knex.ts): raw baselines that run the service's statements prepare them the same way
    preparedStatements: true,
    pool: {
      min: 0,
      max: concurrency,
      afterCreate(conn: pg.Client, done: (err: Error | null, conn: pg.Client) => void) {
        conn.on('error', onConnectionError);
        done(null, conn);
      },
    },
  } as Knex.Config);
  return {
    knex,
    query: async (sql, params) => (await pool.query(sql, params as unknown[])).rows,
    async tx(fn) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const result = await fn(async (sql, params) => (await client.query(sql, params as unknown[])).rows);
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },
    async close() {
      try {
        await pool.end();
      } finally {
        await knex.destroy();
      }
    },
  };
}
