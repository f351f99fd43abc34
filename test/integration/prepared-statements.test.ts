import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
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
