import fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import knexFactory, { type Knex } from 'knex';
import { createDbFromPglite, type Db } from '../../src/db/knex.js';
import { migrationSource } from '../../src/db/migrations.js';

/**
 * Per-test-file databases. `test/run.ts` prepares one migrated template per
 * engine; each file gets its own copy: a PGlite instance loaded from the
 * template's data-dir dump, or a PostgreSQL database created `TEMPLATE` it.
 */
export type Backend = 'pglite' | 'postgres';

export function testBackends(): Backend[] {
  const backends: Backend[] = [];
  if (process.env.TEST_BACKENDS?.includes('pglite') ?? true) backends.push('pglite');
  if (process.env.TEST_PG_ADMIN_URL && (process.env.TEST_BACKENDS?.includes('postgres') ?? true)) backends.push('postgres');
  return backends;
}

export type TestDb = { db: Db; backend: Backend; url?: string; destroy(): Promise<void> };

export async function createTestDb(backend: Backend, opts: { migrated?: boolean } = {}): Promise<TestDb> {
  const migrated = opts.migrated ?? true;
  return backend === 'pglite' ? createPgliteDb(migrated) : createPostgresDb(migrated);
}

async function createPgliteDb(migrated: boolean): Promise<TestDb> {
  const template = process.env.TEST_PGLITE_TEMPLATE;
  const pglite =
    migrated && template ? new PGlite({ loadDataDir: new Blob([fs.readFileSync(template)]) }) : new PGlite();
  const db = createDbFromPglite(pglite);
  if (migrated && !template) await db.migrate.latest();
  return { db, backend: 'pglite', destroy: () => db.destroy() };
}

async function createPostgresDb(migrated: boolean): Promise<TestDb> {
  const adminUrl = process.env.TEST_PG_ADMIN_URL;
  if (!adminUrl) throw new Error('TEST_PG_ADMIN_URL is not set (run the suite through `npm test`)');
  const name = `idp_t_${randomBytes(6).toString('hex')}`;
  const template = migrated ? process.env.TEST_PG_TEMPLATE_DB : undefined;
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  try {
    await admin.raw(`create database ?? ${template ? 'template ??' : ''}`, template ? [name, template] : [name]);
  } finally {
    await admin.destroy();
  }
  const url = withDatabase(adminUrl, name);
  const db = knexFactory({
    client: 'pg',
    connection: url,
    pool: { min: 0, max: 10 },
    acquireConnectionTimeout: 5_000,
    migrations: { migrationSource },
    // as the service's createDb does by default: hot statements go as named prepared statements
    preparedStatements: true,
  } as Knex.Config);
  if (migrated && !template) await db.migrate.latest();
  return {
    db,
    backend: 'postgres',
    url,
    async destroy() {
      await db.destroy();
      await dropDatabase(adminUrl, name);
    },
  };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  try {
    await admin.raw('drop database if exists ?? with (force)', [name]);
  } finally {
    await admin.destroy();
  }
}
