import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import { createDbFromPglite } from '../../src/db/knex.js';
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
  ) {}

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
      const admin = new pg.Client({ connectionString: opts.adminUrl });
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

  /** Current and peak resident memory of the running service, in MB. */
  memory(): { rssMb: number; peakMb: number } {
    if (!this.service) return { rssMb: 0, peakMb: this.peakMb };
    try {
      const status = fs.readFileSync(`/proc/${this.service.pid}/status`, 'utf8');
      const mb = (key: string) => Math.round(Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
      return { rssMb: mb('VmRSS'), peakMb: Math.max(this.peakRssMb(), mb('VmHWM')) };
    } catch {
      return { rssMb: 0, peakMb: this.peakMb };
    }
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

  async close(opts: { keepDatabase?: boolean } = {}): Promise<void> {
    await this.stopService();
    await this.pgSql?.close();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    if (this.databaseName && this.adminUrl && !opts.keepDatabase) {
      const admin = new pg.Client({ connectionString: this.adminUrl });
      await admin.connect();
      try {
        await admin.query(`drop database if exists ${this.databaseName} with (force)`);
      } finally {
        await admin.end();
      }
    }
  }
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function pgSql(url: string, concurrency: number): Sql & { close(): Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: concurrency });
  const knex = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: concurrency } });
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
      await pool.end();
      await knex.destroy();
    },
  };
}
