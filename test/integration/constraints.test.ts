import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDb, testBackends, type TestDb } from '../helpers/db.js';
import { fromDbError } from '../../src/errors.js';

/** The database itself refuses bad rows, whatever the application code does. */
async function rejectsWith(promise: PromiseLike<unknown>, sqlState: string, constraint?: string) {
  await assert.rejects(Promise.resolve(promise), (err: { code?: string; constraint?: string }) => {
    assert.equal(err.code, sqlState, `expected SQLSTATE ${sqlState}, got ${err.code}: ${String(err)}`);
    if (constraint) assert.equal(err.constraint, constraint);
    return true;
  });
}

const hash = (c: string) => c.repeat(64);

for (const backend of testBackends()) {
  describe(`database constraints [${backend}]`, () => {
    let t: TestDb;
    let orgA: string;
    let orgB: string;
    let alice: string;
    before(async () => {
      t = await createTestDb(backend);
      const db = t.db;
      [{ id: orgA }] = await db('organizations').insert({ slug: 'acme', name: 'Acme' }).returning('id');
      [{ id: orgB }] = await db('organizations').insert({ slug: 'globex', name: 'Globex' }).returning('id');
      [{ id: alice }] = await db('users').insert({ email: 'Alice@Example.com', name: 'Alice' }).returning('id');
      await db('memberships').insert({ org_id: orgA, user_id: alice, role: 'owner' });
    });
    after(() => t.destroy());

    it('user email is unique case-insensitively and must look like an email', async () => {
      await rejectsWith(t.db('users').insert({ email: 'alice@EXAMPLE.com' }), '23505', 'users_email_lower_key');
      await rejectsWith(t.db('users').insert({ email: 'not-an-email' }), '23514');
      await rejectsWith(t.db('users').insert({ email: 'x@y.z', status: 'deleted' }), '23514');
    });

    it('org slug is unique and well-formed; visibility is an enum', async () => {
      await rejectsWith(t.db('organizations').insert({ slug: 'acme', name: 'Dup' }), '23505', 'organizations_slug_key');
      await rejectsWith(t.db('organizations').insert({ slug: 'Bad Slug', name: 'x' }), '23514');
      await rejectsWith(t.db('organizations').insert({ slug: 'trailing-', name: 'x' }), '23514');
      await rejectsWith(t.db('organizations').insert({ slug: 'ok', name: 'x', visibility: 'secret' }), '23514');
    });

    it('membership role, status and source are enums; user and org must exist', async () => {
      const [{ id: bob }] = await t.db('users').insert({ email: 'bob@example.com' }).returning('id');
      await rejectsWith(t.db('memberships').insert({ org_id: orgA, user_id: bob, role: 'superuser' }), '23514');
      await rejectsWith(t.db('memberships').insert({ org_id: orgA, user_id: bob, role: 'member', status: 'gone' }), '23514');
      await rejectsWith(t.db('memberships').insert({ org_id: orgA, user_id: bob, role: 'member', source: 'ldap' }), '23514');
      await rejectsWith(
        t.db('memberships').insert({ org_id: orgA, user_id: '00000000-0000-0000-0000-000000000000', role: 'member' }),
        '23503',
      );
    });

    it('a custom role key cannot shadow a built-in role and is unique per org', async () => {
      await rejectsWith(t.db('roles').insert({ org_id: orgA, key: 'admin', name: 'x' }), '23514');
      await t.db('roles').insert({ org_id: orgA, key: 'maintainer', name: 'Maintainer' });
      await t.db('roles').insert({ org_id: orgB, key: 'maintainer', name: 'Maintainer' });
      await rejectsWith(t.db('roles').insert({ org_id: orgA, key: 'maintainer', name: 'x' }), '23505', 'roles_org_key_key');
    });

    it('team members must be members of the team org (no cross-tenant rows)', async () => {
      const [{ id: teamB }] = await t.db('teams').insert({ org_id: orgB, name: 'eng' }).returning('id');
      // alice belongs to org A only
      await rejectsWith(t.db('team_members').insert({ org_id: orgB, team_id: teamB, user_id: alice }), '23503');
      // claiming org A for org B's team does not help either
      await rejectsWith(t.db('team_members').insert({ org_id: orgA, team_id: teamB, user_id: alice }), '23503');
    });

    it('a grant names exactly one subject of the same org at a valid level', async () => {
      const [{ id: projectA }] = await t.db('projects').insert({ org_id: orgA, name: 'p' }).returning('id');
      const [{ id: teamB }] = await t.db('teams').insert({ org_id: orgB, name: 'ops' }).returning('id');
      await rejectsWith(
        t.db('project_grants').insert({ org_id: orgA, project_id: projectA, subject_type: 'team', team_id: teamB, level: 'read' }),
        '23503',
      );
      await rejectsWith(
        t.db('project_grants').insert({ org_id: orgA, project_id: projectA, subject_type: 'user', user_id: alice, level: 'owner' }),
        '23514',
      );
      await rejectsWith(
        t.db('project_grants').insert({ org_id: orgA, project_id: projectA, subject_type: 'user', level: 'read' }),
        '23514',
      );
      await rejectsWith(
        t.db('project_grants').insert({
          org_id: orgA, project_id: projectA, subject_type: 'role', builtin_role: 'member',
          role_id: (await t.db('roles').where({ org_id: orgA, key: 'maintainer' }).first()).id, level: 'read',
        }),
        '23514',
      );
      await t.db('project_grants').insert({ org_id: orgA, project_id: projectA, subject_type: 'user', user_id: alice, level: 'read' });
      await rejectsWith(
        t.db('project_grants').insert({ org_id: orgA, project_id: projectA, subject_type: 'user', user_id: alice, level: 'write' }),
        '23505',
        'project_grants_user_key',
      );
    });

    it('an org that owns projects cannot be deleted; an empty one cascades', async () => {
      await rejectsWith(t.db('organizations').where({ id: orgA }).delete(), '23503');
      const [{ id: orgC }] = await t.db('organizations').insert({ slug: 'temp', name: 'Temp' }).returning('id');
      await t.db('memberships').insert({ org_id: orgC, user_id: alice, role: 'owner' });
      await t.db('teams').insert({ org_id: orgC, name: 't' });
      await t.db('organizations').where({ id: orgC }).delete();
      assert.equal((await t.db('memberships').where({ org_id: orgC })).length, 0);
      assert.equal((await t.db('teams').where({ org_id: orgC })).length, 0);
    });

    it('a domain is verified by at most one org, and stored normalised', async () => {
      await t.db('domains').insert({ org_id: orgA, domain: 'example.com', verification_token: 'a', status: 'verified', verified_at: new Date() });
      await t.db('domains').insert({ org_id: orgB, domain: 'example.com', verification_token: 'b' }); // pending claim is fine
      await rejectsWith(
        t.db('domains').where({ org_id: orgB, domain: 'example.com' }).update({ status: 'verified', verified_at: new Date() }),
        '23505',
        'domains_verified_key',
      );
      await rejectsWith(t.db('domains').insert({ org_id: orgB, domain: 'Example.ORG', verification_token: 'c' }), '23514');
      await rejectsWith(t.db('domains').insert({ org_id: orgB, domain: 'example.org.', verification_token: 'c' }), '23514');
      await rejectsWith(t.db('domains').insert({ org_id: orgB, domain: 'x.org', verification_token: 'c', status: 'verified' }), '23514');
    });

    it('SCIM userName is unique per directory case-insensitively', async () => {
      const [{ id: dir }] = await t.db('scim_directories').insert({ org_id: orgA, name: 'okta', token_hash: hash('a') }).returning('id');
      const [{ id: dir2 }] = await t.db('scim_directories').insert({ org_id: orgA, name: 'entra', token_hash: hash('b') }).returning('id');
      await t.db('scim_users').insert({ org_id: orgA, directory_id: dir, user_id: alice, user_name: 'Alice@example.com' });
      const [{ id: bob }] = await t.db('users').insert({ email: 'bob2@example.com' }).returning('id');
      await rejectsWith(
        t.db('scim_users').insert({ org_id: orgA, directory_id: dir, user_id: bob, user_name: 'ALICE@example.com' }),
        '23505',
        'scim_users_user_name_key',
      );
      await t.db('scim_users').insert({ org_id: orgA, directory_id: dir2, user_id: bob, user_name: 'alice@example.com' });
      await rejectsWith(t.db('scim_directories').insert({ org_id: orgA, name: 'dup', token_hash: hash('a') }), '23505');
    });

    it('audit actions and actor types are constrained; sessions need an amr', async () => {
      await rejectsWith(t.db('audit_events').insert({ actor_type: 'robot', action: 'org.created' }), '23514');
      await rejectsWith(t.db('audit_events').insert({ actor_type: 'system', action: 'Not An Action' }), '23514');
      await rejectsWith(
        t.db('sessions').insert({ token_hash: hash('c'), user_id: alice, amr: [], expires_at: new Date() }),
        '23514',
      );
    });

    it('database errors map to API errors by SQLSTATE and constraint name', async () => {
      const err = await t.db('users').insert({ email: 'ALICE@example.com' }).catch((e: unknown) => e);
      const mapped = fromDbError(err);
      assert.equal(mapped?.status, 409);
      assert.equal(mapped?.code, 'conflict.users_email_lower_key');
    });
  });
}
