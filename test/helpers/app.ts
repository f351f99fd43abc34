import supertest from 'supertest';
import type { Express } from 'express';
import { loadConfig, type Config } from '../../src/config.js';
import { createContext, type AppContext } from '../../src/context.js';
import { buildApp } from '../../src/app.js';
import { createLogger } from '../../src/logger.js';
import { createHttpServer } from '../../src/http/server.js';
import { createTestDb, type Backend, type TestDb } from './db.js';

export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const TEST_SECRET_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';

export type TestApp = {
  backend: Backend;
  testDb: TestDb;
  ctx: AppContext;
  app: Express;
  /** supertest bound to the app, on the http.Server the service itself builds */
  http: ReturnType<typeof supertest>;
  /** `Authorization` header value of the bootstrap service token */
  adminAuth: string;
  close(): Promise<void>;
};

/** The real app (buildApp) on a fresh per-file database; no listen, no environment. */
export async function createTestApp(backend: Backend, env: Record<string, string> = {}): Promise<TestApp> {
  const testDb = await createTestDb(backend);
  const config: Config = loadConfig({
    LOG_LEVEL: 'silent',
    PUBLIC_URL: 'http://sp.test',
    ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    SECRET_KEY: TEST_SECRET_KEY,
    ...env,
  });
  const ctx = createContext({ config, db: testDb.db, logger: createLogger(config.logLevel) });
  await ctx.services.serviceTokens.bootstrap(config.adminToken);
  const app = buildApp(ctx);
  return {
    backend,
    testDb,
    ctx,
    app,
    http: supertest(createHttpServer(app)),
    adminAuth: `Bearer ${TEST_ADMIN_TOKEN}`,
    close: () => testDb.destroy(),
  };
}
