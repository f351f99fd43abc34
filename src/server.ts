import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import { createContext } from './context.js';
import { createDb, migrateLatest, type Db } from './db/knex.js';
import { createLogger, type Logger } from './logger.js';
import { settleSecretKey } from './auth/secret-key.js';
import { createHttpServer } from './http/server.js';

export type RunningService = { server: Server; address: AddressInfo; db: Db; stop(): Promise<void> };

/** boot: database → migrations → first service token → app → listen. Returns a handle whose stop() drains and closes. */
export async function startService(given: Config, logger: Logger = createLogger(given.logLevel)): Promise<RunningService> {
  const { config, generatedFile } = settleSecretKey(given);
  if (generatedFile) logger.warn({ file: generatedFile }, 'SECRET_KEY was not set: generated one and stored it in this file (keep it with the data)');
  const db = createDb(config);
  try {
    const applied = await migrateLatest(db);
    if (applied.length) logger.info({ migrations: applied }, 'migrations applied');
    const ctx = createContext({ config, db, logger });
    const { generatedToken } = await ctx.services.serviceTokens.bootstrap(config.adminToken);
    if (generatedToken) {
      // Printed once, straight to stdout (not through the logger, whose output may be shipped elsewhere).
      process.stdout.write(
        `\nNo ADMIN_TOKEN was set and no service token existed, so one was generated.\n` +
          `It is shown only this once; only its hash is stored:\n\n  ${generatedToken}\n\n`,
      );
    }
    const app = buildApp(ctx);
    const server = createHttpServer(app).listen(config.port, config.host);
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    const address = server.address() as AddressInfo;
    logger.info({ port: address.port, publicUrl: config.publicUrl, database: config.databaseUrl ? 'postgresql' : 'pglite' }, 'listening');

    let stopping: Promise<void> | undefined;
    const stop = () =>
      (stopping ??= (async () => {
        // Stop accepting, let in-flight requests finish, then force-close what is left.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
        await closed;
        clearTimeout(timer);
        await db.destroy();
        logger.info('stopped');
      })());
    return { server, address, db, stop };
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err;
  }
}
