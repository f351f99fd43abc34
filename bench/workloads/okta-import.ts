import { expectStatus } from '../lib/http.js';
import { runConcurrent, Samples } from '../lib/stats.js';
import { SCIM_USER, scim, type BenchContext, type Directory } from './context.js';
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

/** Returns the SCIM ids (app directory) and the global user ids (raw directory) in import order. */
export async function runOktaImport(ctx: BenchContext, app: Directory, raw: Directory): Promise<{ scimIds: string[]; rawUserIds: string[] }> {
  const n = ctx.sizes.users;
  const scimIds: string[] = new Array(n);
  const samples = new Samples();
  ctx.log(`1 okta import: ${n} users at concurrency ${ctx.concurrency}`);
  const appFigures = await runConcurrent(n, ctx.concurrency, async (i) => {
    const email = emailOf(ctx, 'okta', i);
    const filter = encodeURIComponent(`userName eq "${email}"`);
    const found = expectStatus(await samples.time('get', () => scim(ctx, app, 'GET', `/Users?filter=${filter}`)), [200], 'lookup').body as {
      totalResults: number;
    };
    if (found.totalResults !== 0) throw new Error(`lookup found ${found.totalResults}`);
    const created = expectStatus(await samples.time('post', () => scim(ctx, app, 'POST', '/Users', oktaUser(email, i))), [201], 'create')
      .body as { id: string };
    scimIds[i] = created.id;
  });

  const rawUserIds: string[] = new Array(n);
  const rawFigures = await ctx.engine.withSql((sql) =>
    runConcurrent(n, ctx.concurrency, async (i) => {
      const email = emailOf(ctx, 'okta-raw', i);
      const found = await sql.query(`select id from scim_users where directory_id = $1 and lower(user_name) = lower($2)`, [raw.id, email]);
      if (found.length) throw new Error('raw lookup found a row');
      const { schemas: _schemas, ...attributes } = oktaUser(email, i);
      rawUserIds[i] = await sql.tx(async (q) => {
        const [user] = await q<{ id: string }>(
          `insert into users (email, name) values ($1, $2) on conflict ((lower(email))) do nothing returning id`,
          [email, attributes.displayName],
        );
        await q(`insert into memberships (org_id, user_id, role, status, source) values ($1, $2, 'member', 'active', 'scim') on conflict do nothing`, [
          raw.orgId,
          user!.id,
        ]);
        const [row] = await q<{ id: string }>(
          `insert into scim_users (org_id, directory_id, user_id, user_name, external_id, active, attributes)
           values ($1, $2, $3, $4, $5, true, $6) returning *`,
          [raw.orgId, raw.id, user!.id, email, attributes.externalId, JSON.stringify(attributes)],
        );
        await q(
          `insert into audit_events (org_id, actor_type, actor_id, action, target_type, target_id, after)
           values ($1, 'scim_directory', $2, 'scim_user.create', 'scim_user', $3, $4)`,
          [raw.orgId, raw.id, row!.id, JSON.stringify({ userName: email, active: true, userId: user!.id, version: 1, accountCreated: true })],
        );
        return user!.id;
      });
    }),
  );

  ctx.rows.push(rawRateRow('1 okta import: users/s (GET+POST)', appFigures, rawFigures));
  ctx.rows.push(p99Row('1 okta GET /Users?filter (absent)', samples.figures('get', appFigures.seconds)));
  ctx.rows.push(p99Row('1 okta POST /Users', samples.figures('post', appFigures.seconds)));
  return { scimIds, rawUserIds };
}
