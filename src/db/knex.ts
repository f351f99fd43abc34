import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import type { PGlite } from '@electric-sql/pglite';
import type { Config } from '../config.js';
import { migrationSource } from './migrations.js';

export type Db = Knex;
/** Either the root connection or a transaction; every query function accepts one so transactions are threaded down. */
export type Queryable = Knex | Knex.Transaction;
/** SQL with knex `?` bindings, to be embedded (e.g. as a CTE) in a larger statement. */
export type SqlPart = { sql: string; bindings: Knex.RawBinding[] };

/**
 * A PostgreSQL array literal bound as ONE parameter (`?::text[]`, `?::uuid[]`).
 * knex expands a JS array binding into a list of parameters, which `= any(?)` cannot take.
 */
export function pgArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}

// int8 (count(*), identity ids) arrives as a string from pg and as a number from PGlite: align on number.
pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number(v));

const common = {
  migrations: { migrationSource, tableName: 'knex_migrations' },
  acquireConnectionTimeout: 10_000,
} satisfies Partial<Knex.Config>;

export function createDb(config: Pick<Config, 'databaseUrl' | 'dataDir' | 'databasePoolMax'> & Partial<Pick<Config, 'databasePreparedStatements'>>): Db {
  if (config.databaseUrl) {
    return knexFactory({
      client: 'pg',
      connection: config.databaseUrl,
      pool: { min: 0, max: config.databasePoolMax },
      ...common,
      preparedStatements: config.databasePreparedStatements ?? true,
    } as Knex.Config);
  }
  const dir = path.join(config.dataDir, 'pglite');
  fs.mkdirSync(dir, { recursive: true });
  // knex-pglite forces a single connection and rejects a `pool` key.
  return knexFactory({ client: ClientPgLite, connection: { filename: dir }, ...common });
}

/** Wrap an already-open PGlite instance (tests clone a migrated template into one per file). */
export function createDbFromPglite(pglite: PGlite, acquireConnectionTimeout = 5_000): Db {
  return knexFactory({
    client: ClientPgLite,
    connection: (() => ({ pglite })) as object,
    ...common,
    acquireConnectionTimeout,
  });
}

export async function migrateLatest(db: Db): Promise<string[]> {
  const [, names] = (await db.migrate.latest()) as [number, string[]];
  return names;
}

export const isPglite = (db: Db): boolean => db.client.config.client === ClientPgLite;

const statementNames = new Map<string, string>();
const MAX_NAMED_STATEMENTS = 500;

/** What a pg (or PGlite) query resolves to: the rows and, for writes, how many were touched. */
export type QueryResult = { rows: any[]; rowCount: number | null };

/** The parts of knex's client that run one statement on a pooled (or the transaction's) connection. */
type KnexClient = {
  config: { preparedStatements?: boolean };
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown>;
  query(connection: unknown, query: object): Promise<unknown>;
  processResponse(query: object, runner: undefined): QueryResult;
};

function statementName(sql: string): string | undefined {
  let name = statementNames.get(sql);
  if (!name && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `s_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`;
    statementNames.set(sql, name);
  }
  return name;
}

/**
 * A hot statement with knex `?` bindings, sent on PostgreSQL as a named prepared
 * statement: each pooled connection parses it once instead of on every request
 * (a third of the database time of a SCIM create), and PostgreSQL may reuse its plan.
 * The name is derived from the text, so texts never share one. For fixed texts only:
 * select explicit columns, never `*`, so a column added by a later migration cannot
 * invalidate a prepared statement of a running instance. PGlite ignores the name.
 *
 * It goes to knex's client directly (`client.query`: the same 'query' and 'query-error'
 * events, error messages and transaction checks) without building a `knex.raw`: the
 * builder, its runner and their copies of the bindings cost more CPU than the pg driver
 * itself for a one-row read. Bindings are scalars; arrays go in as `pgArray` literals.
 */
export async function prepared(q: Queryable, sql: string, bindings: readonly Knex.RawBinding[]): Promise<QueryResult> {
  for (const b of bindings) {
    if (b === undefined || Array.isArray(b)) throw new TypeError(`prepared(): bind scalars only (no undefined, arrays as pgArray) in: ${sql.slice(0, 120)}`);
  }
  const client = q.client as unknown as KnexClient;
  const name = client.config.preparedStatements ? statementName(sql) : undefined;
  const query = { method: 'raw', sql, bindings, ...(name ? { options: { name } } : {}) };
  const connection = await client.acquireConnection();
  try {
    await client.query(connection, query);
    return client.processResponse(query, undefined);
  } finally {
    await client.releaseConnection(connection);
  }
}
