import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Response } from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertOrg, insertUser, memberWithSession, sessionAuth } from '../helpers/fixtures.js';

const MISSING = '00000000-0000-4000-8000-000000000000';
const uniqSlug = (p: string) => `${p}-${Math.random().toString(36).slice(2, 8)}`;

for (const backend of testBackends()) {
  describe(`organizations API [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    describe('POST /orgs', () => {
      it('a user creates an org and becomes its active owner; audited', async () => {
        const user = await insertUser(t);
        const auth = await sessionAuth(t, user.id);
        const slug = uniqSlug('acme');
        const res = await t.http.post('/api/v1/orgs').set('Authorization', auth).send({ name: 'Acme', slug }).expect(201);
        assert.equal(res.body.slug, slug);
        assert.equal(res.body.name, 'Acme');
        assert.equal(res.body.visibility, 'private');
        const membership = await t.testDb.db('memberships').where({ org_id: res.body.id }).first();
        assert.deepEqual([membership.user_id, membership.role, membership.status, membership.source], [user.id, 'owner', 'active', 'manual']);
        const [event] = await auditEvents(t, 'org.created', res.body.id);
        assert.equal(event.actor_type, 'user');
        assert.equal(event.actor_id, user.id);
        assert.equal(event.org_id, res.body.id);
        assert.equal(event.after.ownerUserId, user.id);
        assert.equal(event.after.slug, slug);
      });

      it('a service token may create an org without an owner and add the owner later', async () => {
        const slug = uniqSlug('ownerless');
        const res = await t.http.post('/api/v1/orgs').set('Authorization', t.adminAuth).send({ name: 'Svc', slug }).expect(201);
        assert.equal((await t.testDb.db('memberships').where({ org_id: res.body.id })).length, 0);
        const owner = await insertUser(t);
        await t.http
          .post(`/api/v1/orgs/${res.body.id}/members`)
          .set('Authorization', t.adminAuth)
          .send({ userId: owner.id, role: 'owner' })
          .expect(201);
        const demote = await t.http
          .patch(`/api/v1/orgs/${res.body.id}/members/${owner.id}`)
          .set('Authorization', t.adminAuth)
          .send({ role: 'member' })
          .expect(409);
        assert.equal(demote.body.error.code, 'conflict.last_owner');
      });

      it('a service token naming ownerUserId makes that user owner', async () => {
        const owner = await insertUser(t);
        const slug = uniqSlug('svc');

        const res = await t.http
          .post('/api/v1/orgs')
          .set('Authorization', t.adminAuth)
          .send({ name: 'Svc', slug, visibility: 'public', ownerUserId: owner.id })
          .expect(201);
        assert.equal(res.body.visibility, 'public');
        const m = await t.testDb.db('memberships').where({ org_id: res.body.id, user_id: owner.id }).first();
        assert.equal(m.role, 'owner');
        const [event] = await auditEvents(t, 'org.created', res.body.id);
        assert.equal(event.actor_type, 'service_token');

        await t.http
          .post('/api/v1/orgs')
          .set('Authorization', t.adminAuth)
          .send({ name: 'Svc', slug: uniqSlug('nouser'), ownerUserId: MISSING })
          .expect(404);
      });

      it('bad input is a 400 with the field path; a user may not name another owner; missing auth is 401', async () => {
        const user = await insertUser(t);
        const other = await insertUser(t);
        const auth = await sessionAuth(t, user.id);
        const bad = await t.http.post('/api/v1/orgs').set('Authorization', auth).send({ name: 'X', slug: '-bad slug' }).expect(400);
        assert.equal(bad.body.error.code, 'validation.failed');
        assert.ok(bad.body.error.details.some((d: { path: string }) => d.path === 'slug'));
        const unknownField = await t.http.post('/api/v1/orgs').set('Authorization', auth).send({ name: 'X', slug: uniqSlug('x'), plan: 'pro' }).expect(400);
        assert.match(unknownField.body.error.message, /plan/);
        await t.http.post('/api/v1/orgs').set('Authorization', auth).send({ name: '', slug: uniqSlug('x') }).expect(400);
        await t.http.post('/api/v1/orgs').set('Authorization', auth).send({ name: 'X', slug: uniqSlug('x'), visibility: 'secret' }).expect(400);
        const slug = uniqSlug('notmine');
        await t.http.post('/api/v1/orgs').set('Authorization', auth).send({ name: 'X', slug, ownerUserId: other.id }).expect(403);
        await t.http.post('/api/v1/orgs').send({ name: 'X', slug }).expect(401);
        assert.equal(await t.testDb.db('organizations').where({ slug }).first(), undefined);
        assert.equal((await auditEvents(t, 'org.created')).filter((e) => e.after.slug === slug).length, 0);
      });

      it('a taken slug (any case) is a 409 and writes nothing', async () => {
        const user = await insertUser(t);
        const auth = await sessionAuth(t, user.id);
        const slug = uniqSlug('dup');
        await t.http.post('/api/v1/orgs').set('Authorization', auth).send({ name: 'One', slug }).expect(201);
        const before = (await auditEvents(t, 'org.created')).length;
        const res = await t.http.post('/api/v1/orgs').set('Authorization', auth).send({ name: 'Two', slug: slug.toUpperCase() }).expect(409);
        assert.equal(res.body.error.code, 'conflict.organizations_slug_key');
        assert.equal((await auditEvents(t, 'org.created')).length, before);
        assert.equal(await t.testDb.db('organizations').where({ name: 'Two' }).first(), undefined);
      });
    });

    describe('GET /orgs', () => {
      it('a user in two orgs sees both, with its own role in each, and nothing else', async () => {
        const user = await insertUser(t);
        const a = await insertOrg(t, { slug: uniqSlug('a'), ownerId: user.id });
        const b = await insertOrg(t, { slug: uniqSlug('b') });
        await addMember(t, b.id, user.id, 'viewer', { source: 'scim' });
        await insertOrg(t, { slug: uniqSlug('c') }); // not a member
        const auth = await sessionAuth(t, user.id);
        const res = await t.http.get('/api/v1/orgs').set('Authorization', auth).expect(200);
        const byId = new Map(res.body.data.map((o: { id: string }) => [o.id, o]));
        assert.deepEqual([...byId.keys()].sort(), [a.id, b.id].sort());
        assert.equal((byId.get(a.id) as { membership: { role: string } }).membership.role, 'owner');
        assert.deepEqual((byId.get(b.id) as { membership: unknown }).membership, {
          role: 'viewer',
          roles: [],
          status: 'active',
          source: 'scim',
          createdAt: (byId.get(b.id) as { membership: { createdAt: string } }).membership.createdAt,
        });
        assert.equal(res.body.next, null);

        const page1 = await t.http.get('/api/v1/orgs?limit=1').set('Authorization', auth).expect(200);
        assert.equal(page1.body.data.length, 1);
        assert.ok(page1.body.next);
        const page2 = await t.http.get(`/api/v1/orgs?limit=1&after=${page1.body.next}`).set('Authorization', auth).expect(200);
        assert.equal(page2.body.data.length, 1);
        assert.notEqual(page2.body.data[0].id, page1.body.data[0].id);
        assert.equal(page2.body.next, null);
      });

      it('a service token sees every org, paginated without duplicates', async () => {
        const all: string[] = [];
        let next: string | null = null;
        do {
          const res: Response = await t.http
            .get(`/api/v1/orgs?limit=2${next ? `&after=${next}` : ''}`)
            .set('Authorization', t.adminAuth)
            .expect(200);
          assert.ok(res.body.data.length <= 2);
          all.push(...res.body.data.map((o: { id: string }) => o.id));
          next = res.body.next;
        } while (next);
        const count = await t.testDb.db('organizations').count<{ c: number }[]>({ c: '*' }).first();
        assert.equal(all.length, Number(count!.c));
        assert.equal(new Set(all).size, all.length);
      });

      it('bad query is 400, missing auth is 401', async () => {
        await t.http.get('/api/v1/orgs?limit=0').set('Authorization', t.adminAuth).expect(400);
        await t.http.get('/api/v1/orgs?after=garbage').set('Authorization', t.adminAuth).expect(400);
        await t.http.get('/api/v1/orgs?sort=name').set('Authorization', t.adminAuth).expect(400);
        await t.http.get('/api/v1/orgs').expect(401);
      });
    });

    describe('GET/PATCH /orgs/:orgId', () => {
      it('members read it; a user of another org, an unknown and a malformed id get 404; 401 without auth', async () => {
        const org = await insertOrg(t, { slug: uniqSlug('read'), name: 'Readable' });
        const { auth } = await memberWithSession(t, org.id, 'viewer');
        const res = await t.http.get(`/api/v1/orgs/${org.id}`).set('Authorization', auth).expect(200);
        assert.deepEqual([res.body.id, res.body.name, res.body.slug], [org.id, 'Readable', org.slug]);
        const other = await insertOrg(t);
        const outsider = await memberWithSession(t, other.id, 'owner');
        await t.http.get(`/api/v1/orgs/${org.id}`).set('Authorization', outsider.auth).expect(404);
        await t.http.get(`/api/v1/orgs/${MISSING}`).set('Authorization', t.adminAuth).expect(404);
        await t.http.get('/api/v1/orgs/not-a-uuid').set('Authorization', t.adminAuth).expect(404);
        await t.http.get(`/api/v1/orgs/${org.id}`).expect(401);
      });

      it('an admin updates name, slug, visibility (audited with before/after); refused changes write nothing', async () => {
        const org = await insertOrg(t, { slug: uniqSlug('upd'), name: 'Old' });
        const admin = await memberWithSession(t, org.id, 'admin');
        const member = await memberWithSession(t, org.id, 'member');
        const outsider = await memberWithSession(t, (await insertOrg(t)).id, 'owner');
        const newSlug = uniqSlug('new');

        const forbidden = await t.http.patch(`/api/v1/orgs/${org.id}`).set('Authorization', member.auth).send({ name: 'Nope' }).expect(403);
        assert.equal(forbidden.body.error.code, 'forbidden');
        await t.http.patch(`/api/v1/orgs/${org.id}`).set('Authorization', outsider.auth).send({ name: 'Nope' }).expect(404);
        await t.http.patch(`/api/v1/orgs/${org.id}`).set('Authorization', admin.auth).send({}).expect(400);
        await t.http.patch(`/api/v1/orgs/${org.id}`).set('Authorization', admin.auth).send({ visibility: 'internal' }).expect(400);
        await t.http.patch(`/api/v1/orgs/${org.id}`).set('Authorization', admin.auth).send({ name: 'X', id: MISSING }).expect(400);
        await t.http.patch(`/api/v1/orgs/${org.id}`).send({ name: 'Nope' }).expect(401);
        const taken = await insertOrg(t, { slug: uniqSlug('taken') });
        const dup = await t.http.patch(`/api/v1/orgs/${org.id}`).set('Authorization', admin.auth).send({ slug: taken.slug }).expect(409);
        assert.equal(dup.body.error.code, 'conflict.organizations_slug_key');
        assert.equal((await auditEvents(t, 'org.updated', org.id)).length, 0);

        const res = await t.http
          .patch(`/api/v1/orgs/${org.id}`)
          .set('Authorization', admin.auth)
          .send({ name: 'New', slug: newSlug, visibility: 'public' })
          .expect(200);
        assert.deepEqual([res.body.name, res.body.slug, res.body.visibility], ['New', newSlug, 'public']);
        const [event] = await auditEvents(t, 'org.updated', org.id);
        assert.equal(event.before.name, 'Old');
        assert.equal(event.after.name, 'New');
        assert.equal(event.after.slug, newSlug);
        assert.equal(event.actor_id, admin.user.id);
      });
    });

    describe('DELETE /orgs/:orgId', () => {
      it('needs org:delete: an admin gets 403, an outsider 404, no auth 401', async () => {
        const org = await insertOrg(t);
        const admin = await memberWithSession(t, org.id, 'admin');
        const outsider = await memberWithSession(t, (await insertOrg(t)).id, 'owner');
        const res = await t.http.delete(`/api/v1/orgs/${org.id}`).set('Authorization', admin.auth).expect(403);
        assert.equal(res.body.error.details.permission, 'org:delete');
        await t.http.delete(`/api/v1/orgs/${org.id}`).set('Authorization', outsider.auth).expect(404);
        await t.http.delete(`/api/v1/orgs/${org.id}`).expect(401);
        assert.ok(await t.testDb.db('organizations').where({ id: org.id }).first());
        assert.equal((await auditEvents(t, 'org.deleted', org.id)).length, 0);
      });

      it('is refused with 409 while the org owns a project; then cascades and keeps the audit trail', async () => {
        const ownerUser = await insertUser(t);
        const org = await insertOrg(t, { ownerId: ownerUser.id, name: 'Doomed' });
        const auth = await sessionAuth(t, ownerUser.id);
        const member = await insertUser(t);
        await addMember(t, org.id, member.id, 'member');
        const db = t.testDb.db;
        const [role] = await db('roles').insert({ org_id: org.id, key: 'dev', name: 'Dev', permissions: ['projects:create'] }).returning('*');
        await db('membership_roles').insert({ org_id: org.id, user_id: member.id, role_id: role.id });
        const [team] = await db('teams').insert({ org_id: org.id, name: 'eng' }).returning('*');
        await db('team_members').insert({ org_id: org.id, team_id: team.id, user_id: member.id });
        await db('domains').insert({ org_id: org.id, domain: `${uniqSlug('d')}.example`, verification_token: 'tok' });
        await db('sso_connections').insert({ org_id: org.id, idp_entity_id: 'https://idp.example', idp_sso_url: 'https://idp.example/sso' });
        await db('scim_directories').insert({ org_id: org.id, name: 'okta', token_hash: 'a'.repeat(64) });
        await t.http.patch(`/api/v1/orgs/${org.id}`).set('Authorization', auth).send({ visibility: 'public' }).expect(200);
        const [project] = await db('projects').insert({ org_id: org.id, name: 'p' }).returning('*');

        const refused = await t.http.delete(`/api/v1/orgs/${org.id}`).set('Authorization', auth).expect(409);
        assert.equal(refused.body.error.code, 'conflict.org_has_projects');
        assert.equal(refused.body.error.details.projects, 1);
        assert.ok(await db('organizations').where({ id: org.id }).first());
        assert.equal((await auditEvents(t, 'org.deleted', org.id)).length, 0);

        await db('projects').where({ id: project.id }).delete();
        await t.http.delete(`/api/v1/orgs/${org.id}`).set('Authorization', auth).expect(204);
        assert.equal(await db('organizations').where({ id: org.id }).first(), undefined);
        for (const table of ['memberships', 'membership_roles', 'roles', 'teams', 'team_members', 'domains', 'sso_connections', 'scim_directories']) {
          assert.equal((await db(table).where({ org_id: org.id })).length, 0, `${table} should be empty`);
        }
        assert.ok(await db('users').where({ id: member.id }).first(), 'users are global and stay');
        const [event] = await auditEvents(t, 'org.deleted', org.id);
        assert.equal(event.org_id, org.id);
        assert.equal(event.before.name, 'Doomed');
        assert.equal(event.before.members, 2);
        assert.equal(event.actor_id, ownerUser.id);
        // the earlier trail of the org survives too
        assert.equal((await auditEvents(t, 'org.updated', org.id)).length, 1);
        await t.http.get(`/api/v1/orgs/${org.id}`).set('Authorization', t.adminAuth).expect(404);
      });
    });
  });
}
