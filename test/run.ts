/**
 * `npm test`: prepares one migrated template database per engine, then runs
 * every test file with node's test runner; each file copies the templates into
 * databases of its own, so files run in parallel.
 *
 * PostgreSQL is used when TEST_DATABASE_URL or DATABASE_URL names a server
 * (any database on it; per-file databases are created beside it), or when the
 * local default postgres://postgres@127.0.0.1:5432/postgres answers.
 * TEST_REQUIRE_POSTGRES=1 (set by .ci/run) makes a missing server an error.
 * Arguments are test files or folders to run instead of all of test/.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import knexFactory from 'knex';
import pg from 'pg';
import { createDbFromPglite, migrateLatest } from '../src/db/knex.js';
import { migrationSource } from '../src/db/migrations.js';
import { dropDatabase, withDatabase } from './helpers/db.js';

const root = path.resolve(import.meta.dirname, '..');

function findTests(target: string): string[] {
  const stat = fs.statSync(target);
  if (stat.isFile()) return [target];
  return fs
    .readdirSync(target, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? findTests(path.join(target, e.name)) : e.name.endsWith('.test.ts') ? [path.join(target, e.name)] : []))
    .sort();
}

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function preparePglite(dir: string): Promise<string> {
  const pglite = new PGlite();
  const db = createDbFromPglite(pglite, 30_000);
  await migrateLatest(db);
  const dump = await pglite.dumpDataDir('none');
  const file = path.join(dir, 'pglite-template.tar');
  fs.writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
  await db.destroy();
  return file;
}

async function preparePostgres(adminUrl: string): Promise<string> {
  const name = `idp_tpl_${randomBytes(4).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  await admin.raw('create database ??', [name]);
  await admin.destroy();
  const db = knexFactory({ client: 'pg', connection: withDatabase(adminUrl, name), migrations: { migrationSource } });
  await migrateLatest(db);
  await db.destroy();
  return name;
}

async function main(): Promise<number> {
  const targets = process.argv.slice(2);
  const files = (targets.length ? targets : ['test']).flatMap((t) => findTests(path.resolve(root, t)));
  if (!files.length) {
    console.error('no test files found');
    return 1;
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-test-'));
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' };
  delete env.DATABASE_URL; // the service under test never reads it; helpers use TEST_PG_ADMIN_URL
  let pgAdminUrl: string | undefined;
  let pgTemplate: string | undefined;
  try {
    const candidate = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    if (await reachable(candidate)) {
      pgAdminUrl = candidate;
      pgTemplate = await preparePostgres(candidate);
      env.TEST_PG_ADMIN_URL = candidate;
      env.TEST_PG_TEMPLATE_DB = pgTemplate;
      console.log(`PostgreSQL: ${new URL(candidate).host} (template ${pgTemplate})`);
    } else if (process.env.TEST_REQUIRE_POSTGRES === '1') {
      console.error(`PostgreSQL is required (TEST_REQUIRE_POSTGRES=1) but ${new URL(candidate).host} does not answer`);
      return 1;
    } else {
      console.log('PostgreSQL: not reachable, running on PGlite only');
    }
    env.TEST_PGLITE_TEMPLATE = await preparePglite(tmp);

    const concurrency = process.env.TEST_CONCURRENCY ?? String(Math.max(2, os.availableParallelism()));
    const args = ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files];
    return await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, args, { stdio: 'inherit', env, cwd: root });
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
  } finally {
    if (pgAdminUrl && pgTemplate) await dropDatabase(pgAdminUrl, pgTemplate).catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
