import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { buildResponse, generateKeyPair } from '../test/helpers/idp.js';
import { Engine } from './lib/engine.js';
import { closeHttp, expectStatus, request } from './lib/http.js';
import { admin, createTenant, PATCH_OP, SCIM_GROUP, scim, runTag, type BenchContext } from './workloads/context.js';
import { oktaUser } from './workloads/okta-import.js';
import { accessSubjects, seedAccessStructure, seedAccessUsers } from './workloads/access-seed.js';
import { samplePairs } from './workloads/access.js';
import { directoryUsers } from './workloads/seed.js';

/**
 * SQL statements per request, read from the PostgreSQL server log: the bench
 * database gets `log_statement = all`, each request runs alone, and the log lines
 * of that database written meanwhile are counted (BEGIN and COMMIT included).
 * `npx tsx bench/query-counts.ts --pg-log <the server log file>`
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const opts = new Command()
  .requiredOption('--pg-log <file>', 'the PostgreSQL server log file (log_line_prefix must include %d)')
  .option('--show', 'print each statement under its request', false)
  .option('--database-url <url>', 'PostgreSQL server', process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres')
  .parse()
  .opts<{ pgLog: string; databaseUrl: string; show: boolean }>();

const engine = await Engine.create({ name: 'postgres', root: ROOT, adminUrl: opts.databaseUrl, concurrency: 4, databaseSettings: { log_statement: 'all' } });
const ctx: BenchContext = {
  engine,
  sizes: {} as BenchContext['sizes'],
  concurrency: 1,
  quick: true,
  rows: [],
  phases: [],
  tag: runTag(),
  log: () => undefined,
};
const counts: [string, number][] = [];
async function count(label: string, fn: () => Promise<unknown>) {
  const start = fs.statSync(opts.pgLog).size;
  await fn();
  await new Promise((r) => setTimeout(r, 300));
  const fd = fs.openSync(opts.pgLog, 'r');
  const buf = Buffer.alloc(fs.statSync(opts.pgLog).size - start);
  fs.readSync(fd, buf, 0, buf.length, start);
  fs.closeSync(fd);
  const lines = buf.toString('utf8').split('\n').filter((l) => l.includes(`@${engine.databaseName} `) && /LOG:\s+(statement|execute)/.test(l));
  counts.push([label, lines.length]);
  if (opts.show) console.log(`${label}\n${lines.map((l) => '  ' + l.replace(/^.*?LOG:\s+/, '').slice(0, 400)).join('\n')}`);
}

try {
  const { directory: dir } = await createTenant(ctx, 'count');
  const email = `count-1-${ctx.tag}@bench.example`;
  const filter = (e: string) => `/Users?filter=${encodeURIComponent(`userName eq "${e}"`)}`;
  await count('SCIM GET /Users?filter (absent)', async () => expectStatus(await scim(ctx, dir, 'GET', filter(email)), [200], 'filter'));
  let id = '';
  await count('SCIM POST /Users (new account)', async () => {
    id = (expectStatus(await scim(ctx, dir, 'POST', '/Users', oktaUser(email, 1)), [201], 'post').body as { id: string }).id;
  });
  await count('SCIM GET /Users?filter (present)', async () => expectStatus(await scim(ctx, dir, 'GET', filter(email)), [200], 'filter'));
  await count('SCIM GET /Users/:id', async () => expectStatus(await scim(ctx, dir, 'GET', `/Users/${id}`), [200], 'get'));
  await count('SCIM PATCH /Users/:id active=false', async () =>
    expectStatus(await scim(ctx, dir, 'PATCH', `/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] }), [200], 'patch'),
  );
  const members = await engine.withSql(async (sql) => {
    await seedAccessStructure(sql.query, dir, `cnt-${ctx.tag}`, { teams: 10, projects: 20 });
    await seedAccessUsers(sql.query, dir, `cnt-${ctx.tag}`, { teams: 10, projects: 20 }, 1, 60);
    return directoryUsers(sql.query, dir, 60);
  });
  let groupId = '';
  await count('SCIM POST /Groups (empty)', async () => {
    groupId = (expectStatus(await scim(ctx, dir, 'POST', '/Groups', { schemas: [SCIM_GROUP], displayName: `g-${ctx.tag}` }), [201], 'group').body as { id: string }).id;
  });
  await count('SCIM PATCH /Groups add 50 members', async () =>
    expectStatus(
      await scim(ctx, dir, 'PATCH', `/Groups/${groupId}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'Add', path: 'members', value: members.slice(0, 50).map((m) => ({ value: m.id })) }],
      }),
      [204],
      'add',
    ),
  );
  await count('SCIM PATCH /Groups 10 removals (members[value eq])', async () =>
    expectStatus(
      await scim(ctx, dir, 'PATCH', `/Groups/${groupId}`, {
        schemas: [PATCH_OP],
        Operations: members.slice(0, 10).map((m) => ({ op: 'Remove', path: `members[value eq "${m.id}"]` })),
      }),
      [204],
      'remove',
    ),
  );
  const subjects = await engine.withSql((sql) => accessSubjects(sql.query, dir.orgId, `cnt-${ctx.tag}`, 60));
  const [pair] = samplePairs(subjects, 1, 1);
  await count('GET .../access/:userId', async () => expectStatus(await admin(ctx, 'GET', `/orgs/${dir.orgId}/projects/${pair!.projectId}/access/${pair!.userId}`), [200], 'access'));
  await count('POST /access/check x1000', async () => expectStatus(await admin(ctx, 'POST', '/access/check', { checks: samplePairs(subjects, 1000, 2) }), [200], 'check'));

  const domain = `cnt-${ctx.tag}.example.com`;
  expectStatus(await admin(ctx, 'POST', `/orgs/${dir.orgId}/domains`, { domain }), [201], 'domain');
  expectStatus(await admin(ctx, 'POST', `/orgs/${dir.orgId}/domains/${domain}/verify`, { method: 'manual' }), [200], 'verify');
  const idp = await generateKeyPair('count-idp');
  const idpEntityId = `https://idp.bench.example/${ctx.tag}`;
  const conn = expectStatus(
    await admin(ctx, 'POST', `/orgs/${dir.orgId}/sso-connections`, {
      idpEntityId,
      idpSsoUrl: 'https://idp.bench.example/sso',
      idpCertificates: [idp.cert],
      allowedReturnUrls: ['https://app.bench.example/cb'],
      defaultReturnUrl: 'https://app.bench.example/cb',
    }),
    [201],
    'connection',
  ).body as { acsUrl: string; spEntityId: string };
  const acs = (nameId: string) =>
    request(engine.base, 'POST', new URL(conn.acsUrl).pathname, {
      form: { SAMLResponse: buildResponse({ acsUrl: conn.acsUrl, spEntityId: conn.spEntityId, idpEntityId, nameId }, idp).base64 },
    });
  await count('SAML ACS sign-in (new user, JIT)', async () => expectStatus(await acs(`p1@${domain}`), [302], 'acs'));
  await count('SAML ACS sign-in (returning user)', async () => expectStatus(await acs(`p1@${domain}`), [302], 'acs'));
} finally {
  await engine.close();
  await closeHttp();
}
const width = Math.max(...counts.map(([l]) => l.length));
for (const [label, n] of counts) console.log(`${label.padEnd(width)}  ${n}`);
