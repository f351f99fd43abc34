import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Response } from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertOrg, insertUser, sessionAuth } from '../helpers/fixtures.js';

const MISSING = '00000000-0000-4000-8000-000000000000';
const email = (p = 'u') => `${p}-${randomBytes(4).toString('hex')}@example.com`;

for (const backend of testBackends()) {
  describe(`users API [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    describe('POST /users', () => {
      it('a service token creates a user; audited', async () => {
        const addr = email('Ada');
        const res = await t.http.post('/api/v1/users').set('Authorization', t.adminAuth).send({ email: addr, name: 'Ada' }).expect(201);
        assert.equal(res.body.email, addr);
        assert.equal(res.body.name, 'Ada');
        assert.equal(res.body.status, 'active');
        assert.equal(res.body.avatarUrl, null);
        const [event] = await auditEvents(t, 'user.created', res.body.id);
        assert.equal(event.actor_type, 'service_token');
        assert.equal(event.org_id, null);
        assert.equal(event.after.email, addr);
      });

      it('a duplicate email in any case is a 409 and writes nothing', async () => {
        const addr = email('dup');
        await t.http.post('/api/v1/users').set('Authorization', t.adminAuth).send({ email: addr, name: 'One' }).expect(201);
        const before = (await auditEvents(t, 'user.created')).length;
        const res = await t.http
          .post('/api/v1/users')
          .set('Authorization', t.adminAuth)
          .send({ email: `  ${addr.toUpperCase()} `, name: 'Two' })
          .expect(409);
        assert.equal(res.body.error.code, 'conflict.users_email_lower_key');
        assert.equal((await auditEvents(t, 'user.created')).length, before);
      });

      it('bad input is 400 with the path; a user session is 403; no auth is 401', async () => {
        const bad = await t.http.post('/api/v1/users').set('Authorization', t.adminAuth).send({ email: 'not-an-email', name: 'X' }).expect(400);
        assert.equal(bad.body.error.details[0].path, 'email');
        const extra = await t.http.post('/api/v1/users').set('Authorization', t.adminAuth).send({ email: email(), name: 'X', role: 'admin' }).expect(400);
        assert.match(extra.body.error.message, /role/);
        await t.http.post('/api/v1/users').set('Authorization', t.adminAuth).send({ email: email() }).expect(400);
        const user = await insertUser(t);
        const auth = await sessionAuth(t, user.id);
        const addr = email('nope');
        const res = await t.http.post('/api/v1/users').set('Authorization', auth).send({ email: addr, name: 'X' }).expect(403);
        assert.equal(res.body.error.code, 'auth.service_token_required');
        await t.http.post('/api/v1/users').send({ email: addr, name: 'X' }).expect(401);
        assert.equal(await t.testDb.db('users').whereRaw('lower(email) = ?', [addr]).first(), undefined);
      });
    });

    describe('GET /users', () => {
      it('finds by email case-insensitively and paginates', async () => {
        const addr = email('Find');
        const user = await insertUser(t, { email: addr });
        const res = await t.http.get('/api/v1/users').query({ email: addr.toUpperCase() }).set('Authorization', t.adminAuth).expect(200);
        assert.deepEqual(res.body.data.map((u: { id: string }) => u.id), [user.id]);
        const none = await t.http.get('/api/v1/users').query({ email: email('nobody') }).set('Authorization', t.adminAuth).expect(200);
        assert.deepEqual(none.body, { data: [], next: null });

        for (let i = 0; i < 3; i++) await insertUser(t);
        const seen: string[] = [];
        let next: string | null = null;
        do {
          const page: Response = await t.http.get('/api/v1/users').query({ limit: 2, ...(next ? { after: next } : {}) }).set('Authorization', t.adminAuth).expect(200);
          assert.ok(page.body.data.length <= 2);
          seen.push(...page.body.data.map((u: { id: string }) => u.id));
          next = page.body.next;
        } while (next);
        const total = await t.testDb.db('users').count<{ c: number }[]>({ c: '*' }).first();
        assert.equal(seen.length, Number(total!.c));
        assert.equal(new Set(seen).size, seen.length);
      });

      it('needs a service token (403 for a user, 401 without auth); bad query is 400', async () => {
        const user = await insertUser(t);
        const auth = await sessionAuth(t, user.id);
        await t.http.get('/api/v1/users').set('Authorization', auth).expect(403);
        await t.http.get('/api/v1/users').expect(401);
        await t.http.get('/api/v1/users?limit=500').set('Authorization', t.adminAuth).expect(400);
        await t.http.get('/api/v1/users?name=x').set('Authorization', t.adminAuth).expect(400);
      });
    });

    describe('GET /users/:userId', () => {
      it('self and service tokens read it; another user, unknown and malformed ids are 404; 401 without auth', async () => {
        const org = await insertOrg(t);
        const me = await insertUser(t, { name: 'Me' });
        const colleague = await insertUser(t);
        await addMember(t, org.id, me.id, 'owner');
        await addMember(t, org.id, colleague.id);
        const auth = await sessionAuth(t, me.id);
        const self = await t.http.get(`/api/v1/users/${me.id}`).set('Authorization', auth).expect(200);
        assert.deepEqual([self.body.id, self.body.email, self.body.name], [me.id, me.email, 'Me']);
        await t.http.get(`/api/v1/users/${colleague.id}`).set('Authorization', t.adminAuth).expect(200);
        await t.http.get(`/api/v1/users/${colleague.id}`).set('Authorization', auth).expect(404); // even in the same org
        await t.http.get(`/api/v1/users/${MISSING}`).set('Authorization', t.adminAuth).expect(404);
        await t.http.get('/api/v1/users/xyz').set('Authorization', t.adminAuth).expect(404);
        await t.http.get(`/api/v1/users/${me.id}`).expect(401);
      });
    });

    describe('PATCH /users/:userId', () => {
      it('a user edits its own profile (audited); status is for service tokens only', async () => {
        const me = await insertUser(t, { name: 'Before' });
        const auth = await sessionAuth(t, me.id);
        const res = await t.http
          .patch(`/api/v1/users/${me.id}`)
          .set('Authorization', auth)
          .send({ name: 'After', avatarUrl: 'https://cdn.example/a.png' })
          .expect(200);
        assert.deepEqual([res.body.name, res.body.avatarUrl], ['After', 'https://cdn.example/a.png']);
        const [event] = await auditEvents(t, 'user.updated', me.id);
        assert.equal(event.actor_id, me.id);
        assert.equal(event.before.name, 'Before');
        assert.equal(event.after.name, 'After');

        const refused = await t.http.patch(`/api/v1/users/${me.id}`).set('Authorization', auth).send({ status: 'active' }).expect(403);
        assert.equal(refused.body.error.code, 'auth.service_token_required');
        assert.equal((await auditEvents(t, 'user.updated', me.id)).length, 1);
      });

      it('bad input is 400; another user is 404; no auth is 401; nothing is written', async () => {
        const me = await insertUser(t);
        const other = await insertUser(t, { name: 'Untouched' });
        const auth = await sessionAuth(t, me.id);
        const bad = await t.http.patch(`/api/v1/users/${me.id}`).set('Authorization', auth).send({ avatarUrl: 'javascript:alert(1)' }).expect(400);
        assert.equal(bad.body.error.details[0].path, 'avatarUrl');
        await t.http.patch(`/api/v1/users/${me.id}`).set('Authorization', auth).send({ email: 'x@y.z' }).expect(400);
        await t.http.patch(`/api/v1/users/${me.id}`).set('Authorization', auth).send({}).expect(400);
        await t.http.patch(`/api/v1/users/${other.id}`).set('Authorization', auth).send({ name: 'Hijacked' }).expect(404);
        await t.http.patch(`/api/v1/users/${me.id}`).send({ name: 'X' }).expect(401);
        assert.equal((await t.testDb.db('users').where({ id: other.id }).first()).name, 'Untouched');
        assert.equal((await auditEvents(t, 'user.updated', me.id)).length, 0);
        assert.equal((await auditEvents(t, 'user.updated', other.id)).length, 0);
      });

      it('suspending a user (service token) makes all its sessions fail, also after reactivation', async () => {
        const user = await insertUser(t);
        const s1 = await sessionAuth(t, user.id);
        const s2 = await sessionAuth(t, user.id);
        await t.http.get(`/api/v1/users/${user.id}`).set('Authorization', s1).expect(200);
        const res = await t.http.patch(`/api/v1/users/${user.id}`).set('Authorization', t.adminAuth).send({ status: 'suspended' }).expect(200);
        assert.equal(res.body.status, 'suspended');
        await t.http.get(`/api/v1/users/${user.id}`).set('Authorization', s1).expect(401);
        await t.http.get(`/api/v1/users/${user.id}`).set('Authorization', s2).expect(401);
        const [event] = await auditEvents(t, 'user.updated', user.id);
        assert.equal(event.before.status, 'active');
        assert.equal(event.after.status, 'suspended');
        assert.equal(event.after.revokedSessions, 2);
        await t.http.patch(`/api/v1/users/${user.id}`).set('Authorization', t.adminAuth).send({ status: 'active' }).expect(200);
        await t.http.get(`/api/v1/users/${user.id}`).set('Authorization', s1).expect(401);
        const fresh = await sessionAuth(t, user.id);
        await t.http.get(`/api/v1/users/${user.id}`).set('Authorization', fresh).expect(200);
      });
    });

    describe('GET /users/:userId/memberships', () => {
      it('lists every org of the user with role, custom roles, status and source, each independent', async () => {
        const user = await insertUser(t);
        const a = await insertOrg(t, { slug: `a-${randomBytes(3).toString('hex')}` });
        const b = await insertOrg(t, { slug: `b-${randomBytes(3).toString('hex')}` });
        await addMember(t, a.id, user.id, 'admin');
        await addMember(t, b.id, user.id, 'viewer', { status: 'suspended', source: 'scim' });
        const [role] = await t.testDb.db('roles').insert({ org_id: a.id, key: 'billing', name: 'Billing', permissions: ['audit:read'] }).returning('*');
        await t.testDb.db('membership_roles').insert({ org_id: a.id, user_id: user.id, role_id: role.id });
        const auth = await sessionAuth(t, user.id);
        const res = await t.http.get(`/api/v1/users/${user.id}/memberships`).set('Authorization', auth).expect(200);
        const rows = res.body.data.map((m: Record<string, unknown>) => [m.orgId, m.role, m.roles, m.status, m.source]);
        assert.deepEqual(rows, [
          [a.id, 'admin', ['billing'], 'active', 'manual'],
          [b.id, 'viewer', [], 'suspended', 'scim'],
        ]);
        const viaService = await t.http.get(`/api/v1/users/${user.id}/memberships?limit=1`).set('Authorization', t.adminAuth).expect(200);
        assert.equal(viaService.body.data.length, 1);
        assert.ok(viaService.body.next);
      });

      it('another user gets 404; no auth 401; bad query 400', async () => {
        const user = await insertUser(t);
        const other = await insertUser(t);
        const auth = await sessionAuth(t, other.id);
        await t.http.get(`/api/v1/users/${user.id}/memberships`).set('Authorization', auth).expect(404);
        await t.http.get(`/api/v1/users/${user.id}/memberships`).expect(401);
        await t.http.get(`/api/v1/users/${user.id}/memberships?limit=abc`).set('Authorization', t.adminAuth).expect(400);
      });
    });
  });
}
