import { Command } from 'commander';
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import { createContext } from './context.js';
import { createDb, migrateLatest, type Db } from './db/knex.js';
import { createLogger } from './logger.js';

/**
 * Operator commands. With the embedded database the CLI opens the same data
 * directory as the service, and PGlite allows one process per directory: stop
 * the service first (or point both at PostgreSQL with DATABASE_URL).
 */
const program = new Command()
  .name('idp-cli')
  .description('Identity provisioning service: operator commands')
  .showHelpAfterError();

async function withDb<T>(fn: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = createDb(config);
  try {
    return await fn(db, config);
  } finally {
    await db.destroy();
  }
}

program
  .command('migrate')
  .description('apply pending migrations (or roll back the last batch)')
  .option('--rollback', 'roll back the last batch instead')
  .option('--status', 'list applied and pending migrations')
  .action(async (opts: { rollback?: boolean; status?: boolean }) => {
    await withDb(async (db) => {
      if (opts.status) {
        const [done, pending] = (await db.migrate.list()) as [{ name: string }[], { file?: string; name?: string }[]];
        console.log(JSON.stringify({ applied: done.map((m) => m.name), pending: pending.map((m) => m.name ?? m.file) }, null, 2));
      } else if (opts.rollback) {
        const [, names] = (await db.migrate.rollback()) as [number, string[]];
        console.log(names.length ? `rolled back: ${names.join(', ')}` : 'nothing to roll back');
      } else {
        const names = await migrateLatest(db);
        console.log(names.length ? `applied: ${names.join(', ')}` : 'already up to date');
      }
    });
  });

const token = program.command('token').description('service tokens');
token
  .command('create')
  .description('mint a service token (printed once; only its hash is stored)')
  .option('--name <name>', 'a label for the token', 'cli')
  .action(async (opts: { name: string }) => {
    await withDb(async (db, config) => {
      await migrateLatest(db);
      const ctx = createContext({ config, db, logger: createLogger('silent') });
      const created = await ctx.services.serviceTokens.create(opts.name, { type: 'system', id: 'cli' });
      console.log(JSON.stringify(created, null, 2));
    });
  });

program
  .command('config')
  .description('print the effective configuration (secrets masked)')
  .action(() => {
    console.log(JSON.stringify(describeConfig(loadConfig()), null, 2));
  });

program.parseAsync().catch((err) => {
  process.stderr.write(`${err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
