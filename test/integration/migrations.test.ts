import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Knex } from 'knex';
import { createTestDb, testBackends, type TestDb } from '../helpers/db.js';
import { migrateLatest } from '../../src/db/knex.js';
import { migrationSource } from '../../src/db/migrations.js';

const allMigrations = async () => (await migrationSource.getMigrations([])).map((m) => migrationSource.getMigrationName(m));

async function schemaSnapshot(db: Knex) {
  const columns = await db.raw(
    `select table_name, column_name, data_type, is_nullable, column_default
       from information_schema.columns where table_schema = current_schema() and table_name not like 'knex_%'
      order by table_name, column_name`,
  );
  const indexes = await db.raw(
    `select tablename, indexname, indexdef from pg_indexes where schemaname = current_schema() and tablename not like 'knex_%' order by indexname`,
  );
  const constraints = await db.raw(
    `select c.conrelid::regclass::text as tbl, c.conname, pg_get_constraintdef(c.oid) as def
       from pg_constraint c join pg_namespace n on n.oid = c.connamespace
      where n.nspname = current_schema() and c.conrelid::regclass::text not like 'knex_%' order by tbl, conname`,
  );
  return { columns: columns.rows, indexes: indexes.rows, constraints: constraints.rows };
}

const userTables = async (db: Knex) =>
  (await db.raw(`select tablename from pg_tables where schemaname = current_schema() and tablename not like 'knex_%'`)).rows.length;

for (const backend of testBackends()) {
  describe(`migrations [${backend}]`, () => {
    let t: TestDb;
    before(async () => {
      t = await createTestDb(backend, { migrated: false });
    });
    after(() => t.destroy());

    it('When applied, rolled back completely and applied again, Then the schema is identical', async () => {
      const names = await allMigrations();
      assert.equal(names[0], '0001_init');
      assert.deepEqual(await migrateLatest(t.db), names);
      const first = await schemaSnapshot(t.db);
      assert.ok(first.columns.length > 100, 'the whole domain model is created');
      assert.ok((await userTables(t.db)) >= 25);

      await t.db.migrate.rollback(undefined, true);
      assert.equal(await userTables(t.db), 0, 'down removes every table');

      assert.deepEqual(await migrateLatest(t.db), names);
      assert.deepEqual(await schemaSnapshot(t.db), first);
      assert.deepEqual(await migrateLatest(t.db), [], 'a second run applies nothing');
    });
  });
}
