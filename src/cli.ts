import { Command } from 'commander';
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import { createContext } from './context.js';
import { createDb, migrateLatest, type Db } from './db/knex.js';
import { createLogger } from './logger.js';
import { UUID_RE } from './http/params.js';
import { PRODUCT_AMR } from './services/sessions.js';

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

const session = program.command('session').description('user sessions (local testing)');
session
  .command('create')
  .description('open a session for a user and print its token (as the product would after checking a password)')
  .requiredOption('--user <id|email>', 'the user, by id or email')
  .option('--amr <methods>', `comma-separated authentication methods (${[...PRODUCT_AMR, 'otp'].join(', ')})`, 'pwd')
  .action(async (opts: { user: string; amr: string }) => {
    const amr = opts.amr.split(',').map((m) => m.trim()).filter(Boolean);
    const allowed: readonly string[] = [...PRODUCT_AMR, 'otp'];
    const unknown = amr.filter((m) => !allowed.includes(m));
    if (!amr.length || unknown.length) throw new Error(`--amr: unknown method(s) ${unknown.join(', ') || '(none given)'}; use ${allowed.join(', ')}`);
    await withDb(async (db, config) => {
      await migrateLatest(db);
      const ref = opts.user.trim();
      const user = await db('users')
        .where((w) => (UUID_RE.test(ref) ? w.where({ id: ref }) : w.whereRaw('lower(email) = lower(?)', [ref])))
        .first('id');
      if (!user) throw new Error(`no user ${opts.user}`);
      const ctx = createContext({ config, db, logger: createLogger('silent') });
      const { token, session: row, organizations } = await ctx.services.sessions.create({ userId: user.id, amr }, { type: 'system', id: 'cli' });
      console.log(JSON.stringify({ token, sessionId: row.id, userId: row.user_id, amr: row.amr, expiresAt: row.expires_at, organizations }, null, 2));
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
