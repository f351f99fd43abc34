import { expectStatus } from '../lib/http.js';
import type { Sql } from '../lib/engine.js';
import { runConcurrent, Samples } from '../lib/stats.js';
import { phase, SCIM_USER, scim, warmup, type BenchContext, type Directory } from './context.js';
import { p99Row, rawRateRow } from './targets.js';

/**
 * Workload 1, Okta-style import: for each user a `userName eq` lookup that finds
 * nothing, then a POST. The raw baseline does the same lookup and writes the same
 * rows (users, memberships, scim_users, audit_events) in one transaction through pg.
 */
export const emailOf = (ctx: BenchContext, prefix: string, i: number) => `${prefix}-${i}-${ctx.tag}@bench.example`;

export function oktaUser(email: string, i: number) {
  return {
    schemas: [SCIM_USER],
    userName: email,
    externalId: `00u${i.toString(36).padStart(8, '0')}`,
    name: { givenName: `Given${i}`, familyName: `Family${i}` },
    displayName: `Given${i} Family${i}`,
    emails: [{ primary: true, value: email, type: 'work' }],
    locale: 'en-US',
    active: true,
  };
}

/** SCIM ids (app directories) and global user ids (raw directories) in import order, measured and warm-up. */
export type Imported = {
  scimIds: string[];
  rawUserIds: string[];
  warm: { app: Directory; raw: Directory; scimIds: string[]; rawUserIds: string[] };
};

/** The app side: lookup (absent) then POST for `count` users at the bench concurrency. */
function appImport(ctx: BenchContext, dir: Directory, prefix: string, count: number, ids: string[], samples?: Samples) {
  const time = <T>(label: string, fn: () => Promise<T>) => (samples ? samples.time(label, fn) : fn());
  return runConcurrent(count, ctx.concurrency, async (i) => {
    const email = emailOf(ctx, prefix, i);
    const filter = encodeURIComponent(`userName eq "${email}"`);
    const found = expectStatus(await time('get', () => scim(ctx, dir, 'GET', `/Users?filter=${filter}`)), [200], 'lookup').body as {
      totalResults: number;
    };
    if (found.totalResults !== 0) throw new Error(`lookup found ${found.totalResults}`);
    const created = expectStatus(await time('post', () => scim(ctx, dir, 'POST', '/Users', oktaUser(email, i))), [201], 'create').body as {
      id: string;
    };
    ids[i] = created.id;
  });
}

/** The raw side: the same lookup, then the same rows (users, memberships, scim_users, audit_events) in one transaction. */
function rawImport(ctx: BenchContext, sql: Sql, dir: Directory, prefix: string, count: number, ids: string[]) {
  return runConcurrent(count, ctx.concurrency, async (i) => {
    const email = emailOf(ctx, prefix, i);
    const found = await sql.query(`select id from scim_users where directory_id = $1 and lower(user_name) = lower($2)`, [dir.id, email]);
    if (found.length) throw new Error('raw lookup found a row');
    const { schemas: _schemas, ...attributes } = oktaUser(email, i);
    ids[i] = await sql.tx(async (q) => {
      const [user] = await q<{ id: string }>(
        `insert into users (email, name) values ($1, $2) on conflict ((lower(email))) do nothing returning id`,
        [email, attributes.displayName],
      );
      await q(`insert into memberships (org_id, user_id, role, status, source) values ($1, $2, 'member', 'active', 'scim') on conflict do nothing`, [
        dir.orgId,
        user!.id,
      ]);
      const [row] = await q<{ id: string }>(
        `insert into scim_users (org_id, directory_id, user_id, user_name, external_id, active, attributes)
         values ($1, $2, $3, $4, $5, true, $6) returning *`,
        [dir.orgId, dir.id, user!.id, email, attributes.externalId, JSON.stringify(attributes)],
      );
      await q(
        `insert into audit_events (org_id, actor_type, actor_id, action, target_type, target_id, after)
         values ($1, 'scim_directory', $2, 'scim_user.create', 'scim_user', $3, $4)`,
        [dir.orgId, dir.id, row!.id, JSON.stringify({ userName: email, active: true, userId: user!.id, version: 1, accountCreated: true })],
      );
      return user!.id;
    });
  });
}

/**
 * Warm-up first (unmeasured): `warm.users` users imported into the warm-up directories the
 * same way, so the measured import starts on a compiled service and a warmed pg driver.
 */
export async function runOktaImport(ctx: BenchContext, app: Directory, raw: Directory, warm: { app: Directory; raw: Directory }): Promise<Imported> {
  const n = ctx.sizes.users;
  const w = ctx.sizes.warm.users;
  const W = '1 okta import';
  const scimIds: string[] = new Array(n);
  const rawUserIds: string[] = new Array(n);
  const warmScimIds: string[] = new Array(w);
  const warmRawUserIds: string[] = new Array(w);
  const samples = new Samples();
  ctx.log(`1 okta import: ${n} users at concurrency ${ctx.concurrency} (after ${w} unmeasured into a warm-up directory)`);
  await warmup(ctx, W, 'app', 'users', () => appImport(ctx, warm.app, 'okta-warm', w, warmScimIds));
  const appFigures = await phase(ctx, W, 'app', { unit: 'users' }, () => appImport(ctx, app, 'okta', n, scimIds, samples));

  const rawFigures = await ctx.engine.withSql(async (sql) => {
    await warmup(ctx, W, 'raw', 'users', () => rawImport(ctx, sql, warm.raw, 'okta-raw-warm', w, warmRawUserIds));
    return phase(ctx, W, 'raw', { unit: 'users' }, () => rawImport(ctx, sql, raw, 'okta-raw', n, rawUserIds));
  });

  ctx.rows.push(rawRateRow('1 okta import: users/s (GET+POST)', appFigures, rawFigures));
  ctx.rows.push(p99Row('1 okta GET /Users?filter (absent)', samples.figures('get', appFigures.seconds)));
  ctx.rows.push(p99Row('1 okta POST /Users', samples.figures('post', appFigures.seconds)));
  return { scimIds, rawUserIds, warm: { ...warm, scimIds: warmScimIds, rawUserIds: warmRawUserIds } };
}
