import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Knex } from 'knex';
import { createDb, prepared, type Db } from '../../src/db/knex.js';
import { createTestDb, testBackends, type TestDb } from '../helpers/db.js';

const names = async (db: Db) => (await db.raw(`select name, statement from pg_prepared_statements order by name`)).rows as { name: string; statement: string }[];

if (testBackends().includes('postgres')) {
  describe('prepared hot statements [postgres]', () => {
    let t: TestDb;
    before(async () => {
      t = await createTestDb('postgres', { migrated: false });
    });
    after(() => t.destroy());

    const connect = (preparedStatements: boolean) => createDb({ databaseUrl: t.url!, dataDir: '.', databasePoolMax: 1, databasePreparedStatements: preparedStatements });

    it('are parsed once per connection under a name derived from their text', async () => {
      const db = connect(true);
      try {
        for (const v of [1, 2, 3]) assert.equal((await prepared(db, 'select ?::int + 1 as x', [v])).rows[0].x, v + 1);
        await prepared(db, 'select ?::int + 2 as x', [1]);
        const found = await names(db);
        assert.equal(found.length, 2, 'one per distinct text');
        assert.ok(found.every((s) => /^s_[0-9a-f]{24}$/.test(s.name)));
        assert.deepEqual(found.map((s) => s.statement).sort(), ['select $1::int + 1 as x', 'select $1::int + 2 as x']);
      } finally {
        await db.destroy();
      }
    });

    it('are plain statements when DATABASE_PREPARED_STATEMENTS=false (poolers that cannot keep them)', async () => {
      const db = connect(false);
      try {
        await prepared(db, 'select ?::int + 1 as x', [1]);
        assert.deepEqual(await names(db), []);
      } finally {
        await db.destroy();
      }
    });
  });
}

for (const backend of testBackends()) {
  describe(`prepared(): one statement on knex's client [${backend}]`, () => {
    let t: TestDb;
    before(async () => {
      t = await createTestDb(backend, { migrated: false });
      await t.db.raw('create table prepared_probe (id int primary key, note text)');
    });
    after(() => t.destroy());

    it('returns rows and rowCount, and reports every statement through the knex "query" event', async () => {
      const seen: string[] = [];
      const onQuery = (q: { sql: string }) => seen.push(q.sql);
      t.db.on('query', onQuery);
      try {
        const inserted = await prepared(t.db, 'insert into prepared_probe (id, note) values (?, ?), (?, ?) returning id', [1, 'a', 2, null]);
        assert.deepEqual(inserted.rows.map((r) => r.id).sort(), [1, 2]);
        assert.equal(inserted.rowCount, 2);
        const read = await prepared(t.db, 'select note from prepared_probe where id = ?', [1]);
        assert.deepEqual(read.rows, [{ note: 'a' }]);
        assert.equal(seen.length, 2);
        assert.match(seen[1]!, /where id = \$1/);
      } finally {
        t.db.removeListener('query', onQuery);
      }
    });

    it('runs on the transaction it is given: rolled back with it, refused once it has ended', async () => {
      let ended: Knex.Transaction | undefined;
      await assert.rejects(
        t.db.transaction(async (trx) => {
          ended = trx;
          await prepared(trx, 'insert into prepared_probe (id, note) values (?, ?)', [10, 'in trx']);
          assert.equal((await prepared(trx, 'select count(*)::int as n from prepared_probe where id = ?', [10])).rows[0].n, 1);
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal((await prepared(t.db, 'select count(*)::int as n from prepared_probe where id = ?', [10])).rows[0].n, 0);
      await assert.rejects(prepared(ended!, 'select 1 as x', []), /Transaction query already complete/);
    });

    it('passes database errors through with their code, and refuses undefined and array bindings before sending anything', async () => {
      await prepared(t.db, 'insert into prepared_probe (id, note) values (?, ?)', [20, 'x']);
      await assert.rejects(prepared(t.db, 'insert into prepared_probe (id, note) values (?, ?)', [20, 'y']), (err: { code?: string }) => err.code === '23505');
      await assert.rejects(prepared(t.db, 'select ? as x', [undefined as unknown as string]), /bind scalars only/);
      await assert.rejects(prepared(t.db, 'select ? as x', [[1, 2] as unknown as string]), /bind scalars only/);
      assert.equal((await prepared(t.db, 'select note from prepared_probe where id = ?', [20])).rows[0].note, 'x');
    });
  });
}
