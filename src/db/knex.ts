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

/**
 * A hot statement as `q.raw(sql, bindings)`, sent on PostgreSQL as a named prepared
 * statement: each pooled connection parses it once instead of on every request
 * (a third of the database time of a SCIM create), and PostgreSQL may reuse its plan.
 * The name is derived from the text, so texts never share one. For fixed texts only:
 * select explicit columns, never `*`, so a column added by a later migration cannot
 * invalidate a prepared statement of a running instance. PGlite ignores the name.
 */
export function prepared(q: Queryable, sql: string, bindings: readonly Knex.RawBinding[]): Knex.Raw {
  const raw = q.raw(sql, bindings);
  if (!(q.client.config as { preparedStatements?: boolean }).preparedStatements) return raw;
  let name = statementNames.get(sql);
  if (!name) {
    if (statementNames.size >= MAX_NAMED_STATEMENTS) return raw;
    name = `s_${createHash('sha1').update(sql).digest('hex').slice(0, 24)}`;
    statementNames.set(sql, name);
  }
  return raw.options({ name } as never);
}
