import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { recordAudit } from '../../src/audit/record.js';
import { hashToken } from '../../src/auth/tokens.js';
import { createTestDb, testBackends, type TestDb } from '../helpers/db.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
const cli = (args: string[], env: Record<string, string>) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } });

for (const backend of testBackends()) {
  describe(`audit helper [${backend}]`, () => {
    let t: TestDb;
    before(async () => {
      t = await createTestDb(backend);
    });
    after(() => t.destroy());

    it('writes the event with the request id when the transaction commits', async () => {
      await t.db.transaction((trx) =>
        recordAudit(trx, {
          orgId: null,
          actor: { type: 'system', id: null, requestId: 'req-commit' },
          action: 'test.committed',
          target: { type: 'thing', id: '1' },
          before: { a: 1 },
          after: { a: 2 },
        }),
      );
      const [row] = await t.db('audit_events').where({ action: 'test.committed' });
      assert.equal(row.request_id, 'req-commit');
      assert.deepEqual(row.before, { a: 1 });
      assert.deepEqual(row.after, { a: 2 });
    });

    it('leaves nothing when the transaction rolls back', async () => {
      await assert.rejects(
        t.db.transaction(async (trx) => {
          await recordAudit(trx, { orgId: null, actor: { type: 'system', id: null }, action: 'test.rolled_back' });
          throw new Error('change failed halfway');
        }),
      );
      assert.equal((await t.db('audit_events').where({ action: 'test.rolled_back' })).length, 0);
    });
  });
}

describe('CLI', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-cli-'));
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('config prints the effective configuration with secrets masked', async () => {
    const { stdout } = await cli(['config'], { DATABASE_URL: 'postgres://u:hunter2@db/x', ADMIN_TOKEN: 'z'.repeat(40), PORT: '4001' });
    const printed = JSON.parse(stdout);
    assert.equal(printed.port, 4001);
    assert.equal(printed.database, 'postgresql');
    assert.doesNotMatch(stdout, /hunter2|zzzz/);
  });

  it('a config error exits 2 with the bad key named', async () => {
    await assert.rejects(cli(['config'], { PORT: 'abc' }), (err: { code?: number; stderr?: string }) => {
      assert.equal(err.code, 2);
      assert.match(err.stderr ?? '', /PORT/);
      return true;
    });
  });

  it('migrate and token create work on the embedded database', async () => {
    const env = { DATA_DIR: dataDir };
    const migrated = await cli(['migrate'], env);
    assert.match(migrated.stdout, /applied: 0001_init/);
    const status = JSON.parse((await cli(['migrate', '--status'], env)).stdout);
    assert.deepEqual(status.pending, []);
    assert.equal(status.applied[0], '0001_init');
    const created = JSON.parse((await cli(['token', 'create', '--name', 'ops'], env)).stdout);
    assert.match(created.token, /^svc_/);
    // only the hash is on disk: reopen the data dir and look
    const t = await import('../../src/db/knex.js');
    const db = t.createDb({ dataDir, databaseUrl: undefined, databasePoolMax: 1 });
    try {
      const row = await db('service_tokens').where({ id: created.id }).first();
      assert.equal(row.token_hash, hashToken(created.token));
    } finally {
      await db.destroy();
    }
  });
});
