import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { startService, type RunningService } from '../../src/server.js';
import { createTestDb, testBackends } from '../helpers/db.js';
import { TEST_SECRET_KEY } from '../helpers/app.js';

const ADMIN = 'lifecycle-admin-token-0123456789';

function captureLogs() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      cb();
    },
  });
  return { lines, logger: createLogger('info', stream) };
}

async function get(base: string, p: string, headers: Record<string, string> = {}) {
  const res = await fetch(new URL(p, base), { headers });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

describe('embedded database (PGlite on disk)', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-data-'));
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('When started without ADMIN_TOKEN, Then a token is generated once, stored hashed, and data survives a restart', async () => {
    const config = loadConfig({ DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' });
    const printed: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => {
      printed.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    let first: RunningService;
    try {
      first = await startService(config, createLogger('silent'));
    } finally {
      process.stdout.write = write;
    }
    const token = /svc_[A-Za-z0-9_-]{43}/.exec(printed.join(''))?.[0];
    assert.ok(token, 'the generated token is printed');
    const base = `http://127.0.0.1:${first.address.port}`;
    assert.equal((await get(base, '/readyz')).status, 200);
    const created = await fetch(`${base}/api/v1/service-tokens`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'survivor' }),
    });
    assert.equal(created.status, 201);
    const survivor = (await created.json()).token as string;
    await first.stop();

    const printedAgain: string[] = [];
    process.stdout.write = ((chunk: string) => {
      printedAgain.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    let second: RunningService;
    try {
      second = await startService(config, createLogger('silent'));
    } finally {
      process.stdout.write = write;
    }
    try {
      assert.doesNotMatch(printedAgain.join(''), /svc_/, 'no second token is generated');
      const base2 = `http://127.0.0.1:${second.address.port}`;
      for (const tok of [token, survivor]) {
        const res = await fetch(`${base2}/api/v1/service-tokens`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${tok}`, 'Content-Type': 'application/json' },
          body: JSON.stringify({ name: 'after-restart' }),
        });
        assert.equal(res.status, 201, 'tokens created before the restart still work');
      }
    } finally {
      await second.stop();
    }
  });
});

for (const backend of testBackends()) {
  describe(`running service [${backend}]`, () => {
    async function start(logger = createLogger('silent')) {
      const testDb = backend === 'postgres' ? await createTestDb('postgres', { migrated: false }) : undefined;
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-run-'));
      const config = loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
        ADMIN_TOKEN: ADMIN,
        DATA_DIR: dataDir,
        ...(testDb?.url ? { DATABASE_URL: testDb.url } : {}),
        SHUTDOWN_TIMEOUT_MS: '5000',
        SECRET_KEY: TEST_SECRET_KEY,
      });
      // the per-file database only provides the URL; the service opens its own pool and migrates it
      await testDb?.db.destroy();
      const service = await startService(config, logger);
      const cleanup = async () => {
        await service.stop();
        if (testDb) await testDb.destroy().catch(() => undefined);
        fs.rmSync(dataDir, { recursive: true, force: true });
      };
      return { service, base: `http://127.0.0.1:${service.address.port}`, cleanup };
    }

    it('migrates on start, answers /readyz 200 and authenticates ADMIN_TOKEN', async () => {
      const { base, cleanup } = await start();
      try {
        assert.equal((await get(base, '/readyz')).status, 200);
        assert.equal((await get(base, '/api/v1/anything')).status, 401);
        assert.equal((await get(base, '/api/v1/anything', { Authorization: `Bearer ${ADMIN}` })).status, 404);
      } finally {
        await cleanup();
      }
    });

    it('every log line of a request carries its request id', async () => {
      const { lines, logger } = captureLogs();
      const { base, cleanup } = await start(logger);
      try {
        await get(base, '/api/v1/x', { 'X-Request-Id': 'trace-me-1' });
        const mine = lines.filter((l) => l.reqId === 'trace-me-1');
        assert.ok(mine.length >= 1);
        assert.ok(lines.filter((l) => (l.req as { url?: string } | undefined)?.url === '/api/v1/x').every((l) => l.reqId === 'trace-me-1'));
      } finally {
        await cleanup();
      }
    });

    it('graceful shutdown lets an in-flight request finish, then refuses new connections and closes the pool', async () => {
      const { service, base, cleanup } = await start();
      const url = new URL('/api/v1/service-tokens', base);
      // A request whose body is still being sent when shutdown begins.
      const inFlight = new Promise<number>((resolve, reject) => {
        const req = http.request(url, {
          method: 'POST',
          headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json', 'Content-Length': '16' },
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.write('{"name":');
        setTimeout(() => req.end('"drain"}'), 300);
      });
      await new Promise((r) => setTimeout(r, 100));
      const stopped = cleanup();
      assert.equal(await inFlight, 201);
      await stopped;
      await assert.rejects(fetch(`${base}/healthz`));
      await assert.rejects(service.db.raw('select 1'));
    });
  });
}

describe('readiness when the database is gone', () => {
  it('answers 503 once the pool is closed', async () => {
    const { createTestApp } = await import('../helpers/app.js');
    const t = await createTestApp('pglite');
    await t.testDb.db.destroy();
    const res = await t.http.get('/readyz');
    assert.equal(res.status, 503);
    assert.equal(res.body.error.code, 'not_ready');
  });
});
