import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Response } from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertOrg, insertUser, memberWithSession, sessionAuth } from '../helpers/fixtures.js';

const MISSING = '00000000-0000-4000-8000-000000000000';

for (const backend of testBackends()) {
  describe(`members API [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    /** An org with an owner (session) and an admin (session). */
    async function orgWithStaff() {
      const org = await insertOrg(t);
      const owner = await memberWithSession(t, org.id, 'owner');
      const admin = await memberWithSession(t, org.id, 'admin');
      return { org, owner, admin };
    }
    const customRole = async (orgId: string, key: string, permissions: string[] = ['audit:read']) => {
      const [row] = await t.testDb.db('roles').insert({ org_id: orgId, key, name: key, permissions }).returning('*');
      return row as { id: string; key: string };
    };
    const activeOwners = async (orgId: string) =>
      (await t.testDb.db('memberships').where({ org_id: orgId, role: 'owner', status: 'active' })).map((m) => m.user_id as string);

    describe('GET /orgs/:orgId/members', () => {
      it('lists role, custom role keys, status, source, email and name; paginated', async () => {
        const { org, owner } = await orgWithStaff();
        const scimUser = await insertUser(t, { name: 'Sam' });
        await addMember(t, org.id, scimUser.id, 'member', { source: 'scim', status: 'suspended' });
        const role = await customRole(org.id, 'auditor');
        await t.testDb.db('membership_roles').insert({ org_id: org.id, user_id: scimUser.id, role_id: role.id });
        const viewer = await memberWithSession(t, org.id, 'viewer');

        const res = await t.http.get(`/api/v1/orgs/${org.id}/members`).set('Authorization', viewer.auth).expect(200);
        assert.equal(res.body.data.length, 4);
        const sam = res.body.data.find((m: { userId: string }) => m.userId === scimUser.id);
        assert.deepEqual(
          { email: sam.email, name: sam.name, role: sam.role, roles: sam.roles, status: sam.status, source: sam.source },
          { email: scimUser.email, name: 'Sam', role: 'member', roles: ['auditor'], status: 'suspended', source: 'scim' },
        );
        assert.equal(res.body.data.find((m: { userId: string }) => m.userId === owner.user.id).role, 'owner');

        const seen: string[] = [];
        let next: string | null = null;
        do {
          const page: Response = await t.http
            .get(`/api/v1/orgs/${org.id}/members`)
            .query({ limit: 3, ...(next ? { after: next } : {}) })
            .set('Authorization', viewer.auth)
            .expect(200);
          seen.push(...page.body.data.map((m: { userId: string }) => m.userId));
          next = page.body.next;
        } while (next);
        assert.equal(seen.length, 4);
        assert.equal(new Set(seen).size, 4);
      });

      it('needs members:read (an outsider gets 404, no auth 401); bad query is 400', async () => {
        const { org } = await orgWithStaff();
        const outsider = await memberWithSession(t, (await insertOrg(t)).id, 'owner');
        await t.http.get(`/api/v1/orgs/${org.id}/members`).set('Authorization', outsider.auth).expect(404);
        await t.http.get(`/api/v1/orgs/${org.id}/members`).expect(401);
        await t.http.get(`/api/v1/orgs/${org.id}/members?limit=-1`).set('Authorization', t.adminAuth).expect(400);
        // a suspended membership gives nothing, not even the member list
        const suspended = await insertUser(t);
        await addMember(t, org.id, suspended.id, 'admin', { status: 'suspended' });
        await t.http.get(`/api/v1/orgs/${org.id}/members`).set('Authorization', await sessionAuth(t, suspended.id)).expect(403);
      });
    });

    describe('POST /orgs/:orgId/members', () => {
      it('an admin adds an existing user with a built-in role and custom roles; audited', async () => {
        const { org, admin } = await orgWithStaff();
        await customRole(org.id, 'auditor');
        await customRole(org.id, 'billing', ['org:read']);
        const user = await insertUser(t, { name: 'New' });
        const res = await t.http
          .post(`/api/v1/orgs/${org.id}/members`)
          .set('Authorization', admin.auth)
          .send({ userId: user.id, role: 'member', roles: ['billing', 'auditor'] })
          .expect(201);
        assert.deepEqual(
          [res.body.userId, res.body.role, res.body.roles, res.body.status, res.body.source, res.body.email],
          [user.id, 'member', ['auditor', 'billing'], 'active', 'manual', user.email],
        );
        const [event] = await auditEvents(t, 'member.added', user.id);
        assert.equal(event.org_id, org.id);
        assert.equal(event.actor_id, admin.user.id);
        assert.deepEqual(event.after.roles, ['auditor', 'billing']);
      });

      it('refuses: unknown role key (400 naming it), already a member (409), unknown user (404), bad body (400); nothing written', async () => {
        const { org, admin } = await orgWithStaff();
        const user = await insertUser(t);
        const unknown = await t.http
          .post(`/api/v1/orgs/${org.id}/members`)
          .set('Authorization', admin.auth)
          .send({ userId: user.id, role: 'member', roles: ['ghost'] })
          .expect(400);
        assert.equal(unknown.body.error.code, 'validation.unknown_role');
        assert.match(unknown.body.error.message, /ghost/);
        assert.deepEqual(unknown.body.error.details.unknownRoles, ['ghost']);
        assert.equal(await t.testDb.db('memberships').where({ org_id: org.id, user_id: user.id }).first(), undefined);

        const dup = await t.http.post(`/api/v1/orgs/${org.id}/members`).set('Authorization', admin.auth).send({ userId: admin.user.id, role: 'member' }).expect(409);
        assert.equal(dup.body.error.code, 'conflict.memberships_pkey');
        await t.http.post(`/api/v1/orgs/${org.id}/members`).set('Authorization', admin.auth).send({ userId: MISSING, role: 'member' }).expect(404);
        const bad = await t.http.post(`/api/v1/orgs/${org.id}/members`).set('Authorization', admin.auth).send({ userId: user.id, role: 'boss' }).expect(400);
        assert.equal(bad.body.error.details[0].path, 'role');
        await t.http.post(`/api/v1/orgs/${org.id}/members`).set('Authorization', admin.auth).send({ userId: 'nope', role: 'member' }).expect(400);
        await t.http.post(`/api/v1/orgs/${org.id}/members`).set('Authorization', admin.auth).send({ userId: user.id, role: 'member', source: 'scim' }).expect(400);
        assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id, action: 'member.added' })).length, 0);
      });

      it('permissions: a member gets 403, an outsider 404, no auth 401; granting owner needs ownership:manage', async () => {
        const { org, owner, admin } = await orgWithStaff();
        const member = await memberWithSession(t, org.id, 'member');
        const outsider = await memberWithSession(t, (await insertOrg(t)).id, 'owner');
        const user = await insertUser(t);
        const add = (auth: string | undefined, role = 'member') => {
          const r = t.http.post(`/api/v1/orgs/${org.id}/members`);
          if (auth) r.set('Authorization', auth);
          return r.send({ userId: user.id, role });
        };
        const forbidden = await add(member.auth).expect(403);
        assert.equal(forbidden.body.error.details.permission, 'members:manage');
        await add(outsider.auth).expect(404);
        await add(undefined).expect(401);
        const noOwner = await add(admin.auth, 'owner').expect(403);
        assert.equal(noOwner.body.error.details.permission, 'ownership:manage');
        assert.equal((await auditEvents(t, 'member.added', user.id)).length, 0);
        await add(owner.auth, 'owner').expect(201);
        assert.deepEqual((await activeOwners(org.id)).sort(), [owner.user.id, user.id].sort());
      });

      it('an admin cannot hand out a custom role carrying permissions it lacks', async () => {
        const { org, admin, owner } = await orgWithStaff();
        await customRole(org.id, 'deleter', ['org:delete']);
        const user = await insertUser(t);
        const res = await t.http
          .post(`/api/v1/orgs/${org.id}/members`)
          .set('Authorization', admin.auth)
          .send({ userId: user.id, role: 'member', roles: ['deleter'] })
          .expect(403);
        assert.equal(res.body.error.code, 'forbidden.permission_escalation');
        await t.http
          .post(`/api/v1/orgs/${org.id}/members`)
          .set('Authorization', owner.auth)
          .send({ userId: user.id, role: 'member', roles: ['deleter'] })
          .expect(201);
      });
    });

    describe('PATCH /orgs/:orgId/members/:userId', () => {
      it('changes role, replaces custom roles, suspends; audited with before/after', async () => {
        const { org, admin } = await orgWithStaff();
        await customRole(org.id, 'a1');
        await customRole(org.id, 'b2');
        const user = await insertUser(t);
        await addMember(t, org.id, user.id, 'viewer');
        const patch = (body: object) => t.http.patch(`/api/v1/orgs/${org.id}/members/${user.id}`).set('Authorization', admin.auth).send(body);
        const r1 = await patch({ role: 'member', roles: ['a1'] }).expect(200);
        assert.deepEqual([r1.body.role, r1.body.roles], ['member', ['a1']]);
        const r2 = await patch({ roles: ['b2'] }).expect(200);
        assert.deepEqual(r2.body.roles, ['b2']);
        const r3 = await patch({ status: 'suspended' }).expect(200);
        assert.deepEqual([r3.body.status, r3.body.role, r3.body.roles], ['suspended', 'member', ['b2']]);
        const events = await auditEvents(t, 'member.updated', user.id);
        assert.equal(events.length, 3);
        assert.deepEqual([events[0].before.role, events[0].after.role, events[0].after.roles], ['viewer', 'member', ['a1']]);
        assert.deepEqual([events[1].before.roles, events[1].after.roles], [['a1'], ['b2']]);
        assert.deepEqual([events[2].before.status, events[2].after.status], ['active', 'suspended']);
        // the suspended member now gets nothing in the org
        await t.http.get(`/api/v1/orgs/${org.id}`).set('Authorization', await sessionAuth(t, user.id)).expect(403);
      });

      it('refusals write nothing: bad body 400, unknown role 400, not a member 404, outsider 404, member 403, no auth 401', async () => {
        const { org, admin } = await orgWithStaff();
        const member = await memberWithSession(t, org.id, 'member');
        const outsider = await memberWithSession(t, (await insertOrg(t)).id, 'owner');
        const url = `/api/v1/orgs/${org.id}/members/${member.user.id}`;
        await t.http.patch(url).set('Authorization', admin.auth).send({}).expect(400);
        await t.http.patch(url).set('Authorization', admin.auth).send({ status: 'gone' }).expect(400);
        await t.http.patch(url).set('Authorization', admin.auth).send({ role: 'member', userId: MISSING }).expect(400);
        const unknown = await t.http.patch(url).set('Authorization', admin.auth).send({ roles: ['nope'] }).expect(400);
        assert.match(unknown.body.error.message, /nope/);
        await t.http.patch(`/api/v1/orgs/${org.id}/members/${outsider.user.id}`).set('Authorization', admin.auth).send({ role: 'viewer' }).expect(404);
        await t.http.patch(`/api/v1/orgs/${org.id}/members/not-a-uuid`).set('Authorization', admin.auth).send({ role: 'viewer' }).expect(404);
        await t.http.patch(url).set('Authorization', outsider.auth).send({ role: 'viewer' }).expect(404);
        await t.http.patch(`/api/v1/orgs/${org.id}/members/${admin.user.id}`).set('Authorization', member.auth).send({ role: 'viewer' }).expect(403);
        await t.http.patch(url).send({ role: 'viewer' }).expect(401);
        assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id, action: 'member.updated' })).length, 0);
        assert.equal((await t.testDb.db('memberships').where({ org_id: org.id, user_id: member.user.id }).first()).role, 'member');
      });

      it('admins cannot touch owners nor make owners; owners can, but never leave the org without an active owner', async () => {
        const { org, owner, admin } = await orgWithStaff();
        const ownerUrl = `/api/v1/orgs/${org.id}/members/${owner.user.id}`;
        for (const body of [{ role: 'admin' }, { status: 'suspended' }, { roles: [] }]) {
          const res = await t.http.patch(ownerUrl).set('Authorization', admin.auth).send(body).expect(403);
          assert.equal(res.body.error.details.permission, 'ownership:manage');
        }
        await t.http.patch(`/api/v1/orgs/${org.id}/members/${admin.user.id}`).set('Authorization', admin.auth).send({ role: 'owner' }).expect(403);

        // the only owner demoting or suspending itself is refused
        for (const body of [{ role: 'admin' }, { status: 'suspended' }]) {
          const res = await t.http.patch(ownerUrl).set('Authorization', owner.auth).send(body).expect(409);
          assert.equal(res.body.error.code, 'conflict.last_owner');
        }
        assert.deepEqual(await activeOwners(org.id), [owner.user.id]);
        assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id, action: 'member.updated' })).length, 0);

        // with a second owner, demoting the first works
        await t.http.patch(`/api/v1/orgs/${org.id}/members/${admin.user.id}`).set('Authorization', owner.auth).send({ role: 'owner' }).expect(200);
        await t.http.patch(ownerUrl).set('Authorization', owner.auth).send({ role: 'admin' }).expect(200);
        assert.deepEqual(await activeOwners(org.id), [admin.user.id]);
        // a suspended owner does not count as the remaining owner
        const other = await insertUser(t);
        await addMember(t, org.id, other.id, 'owner', { status: 'suspended' });
        const res = await t.http.patch(`/api/v1/orgs/${org.id}/members/${admin.user.id}`).set('Authorization', t.adminAuth).send({ role: 'member' }).expect(409);
        assert.equal(res.body.error.code, 'conflict.last_owner');
      });
    });

    describe('DELETE /orgs/:orgId/members/:userId', () => {
      it('removes the membership, its team memberships and custom roles; audited', async () => {
        const { org, admin } = await orgWithStaff();
        const role = await customRole(org.id, 'r1');
        const user = await insertUser(t);
        await addMember(t, org.id, user.id, 'member');
        await t.testDb.db('membership_roles').insert({ org_id: org.id, user_id: user.id, role_id: role.id });
        const [team] = await t.testDb.db('teams').insert({ org_id: org.id, name: 'eng' }).returning('*');
        await t.testDb.db('team_members').insert({ org_id: org.id, team_id: team.id, user_id: user.id });
        await t.http.delete(`/api/v1/orgs/${org.id}/members/${user.id}`).set('Authorization', admin.auth).expect(204);
        assert.equal(await t.testDb.db('memberships').where({ org_id: org.id, user_id: user.id }).first(), undefined);
        assert.equal((await t.testDb.db('team_members').where({ org_id: org.id, user_id: user.id })).length, 0);
        assert.equal((await t.testDb.db('membership_roles').where({ org_id: org.id, user_id: user.id })).length, 0);
        assert.ok(await t.testDb.db('roles').where({ id: role.id }).first(), 'the role itself stays');
        const [event] = await auditEvents(t, 'member.removed', user.id);
        assert.equal(event.org_id, org.id);
        assert.deepEqual([event.before.role, event.before.roles], ['member', ['r1']]);
        await t.http.delete(`/api/v1/orgs/${org.id}/members/${user.id}`).set('Authorization', admin.auth).expect(404);
      });

      it('refuses: admin removing an owner 403, last owner 409, member 403, outsider 404, no auth 401', async () => {
        const { org, owner, admin } = await orgWithStaff();
        const member = await memberWithSession(t, org.id, 'member');
        const outsider = await memberWithSession(t, (await insertOrg(t)).id, 'owner');
        const ownerUrl = `/api/v1/orgs/${org.id}/members/${owner.user.id}`;
        await t.http.delete(ownerUrl).set('Authorization', admin.auth).expect(403);
        const last = await t.http.delete(ownerUrl).set('Authorization', owner.auth).expect(409);
        assert.equal(last.body.error.code, 'conflict.last_owner');
        await t.http.delete(`/api/v1/orgs/${org.id}/members/${admin.user.id}`).set('Authorization', member.auth).expect(403);
        await t.http.delete(`/api/v1/orgs/${org.id}/members/${member.user.id}`).set('Authorization', outsider.auth).expect(404);
        await t.http.delete(`/api/v1/orgs/${org.id}/members/${member.user.id}`).expect(401);
        assert.equal((await t.testDb.db('memberships').where({ org_id: org.id })).length, 3);
        assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id, action: 'member.removed' })).length, 0);
      });
    });

    describe('last-owner invariant under concurrency', () => {
      /** Two admins who also hold a custom role with ownership:manage (so they may demote owners). */
      async function ownershipManagers(orgId: string) {
        const [role] = await t.testDb.db('roles').insert({ org_id: orgId, key: 'owner-manager', name: 'Owner manager', permissions: ['ownership:manage'] }).returning('*');
        const admins = [await memberWithSession(t, orgId, 'admin'), await memberWithSession(t, orgId, 'admin')];
        for (const a of admins) await t.testDb.db('membership_roles').insert({ org_id: orgId, user_id: a.user.id, role_id: role.id });
        return admins;
      }

      it('two admins demoting the only two owners at the same moment: one 200, one 409, one active owner left (5 rounds)', async () => {
        for (let round = 0; round < 5; round++) {
          const org = await insertOrg(t);
          const ownerA = await insertUser(t);
          const ownerB = await insertUser(t);
          await addMember(t, org.id, ownerA.id, 'owner');
          await addMember(t, org.id, ownerB.id, 'owner');
          const [admin1, admin2] = await ownershipManagers(org.id);
          const demote = (actor: string, target: string) =>
            t.http.patch(`/api/v1/orgs/${org.id}/members/${target}`).set('Authorization', actor).send({ role: 'admin' });
          const results = await Promise.all([demote(admin1!.auth, ownerA.id), demote(admin2!.auth, ownerB.id)]);
          const statuses = results.map((r) => r.status).sort();
          assert.deepEqual(statuses, [200, 409], `round ${round}: ${JSON.stringify(results.map((r) => r.body))}`);
          assert.equal(results.find((r) => r.status === 409)!.body.error.code, 'conflict.last_owner');
          assert.equal((await activeOwners(org.id)).length, 1, `round ${round}`);
          assert.equal((await auditEvents(t, 'member.updated')).filter((e) => e.org_id === org.id).length, 1);
        }
      });

      it('two owners demoting each other at the same moment: the loser is no longer an owner (403), one owner left (5 rounds)', async () => {
        for (let round = 0; round < 5; round++) {
          const org = await insertOrg(t);
          const a = await memberWithSession(t, org.id, 'owner');
          const b = await memberWithSession(t, org.id, 'owner');
          const demote = (actor: string, target: string) =>
            t.http.patch(`/api/v1/orgs/${org.id}/members/${target}`).set('Authorization', actor).send({ role: 'admin' });
          const results = await Promise.all([demote(a.auth, b.user.id), demote(b.auth, a.user.id)]);
          assert.deepEqual(results.map((r) => r.status).sort(), [200, 403], `round ${round}: ${JSON.stringify(results.map((r) => r.body))}`);
          assert.equal((await activeOwners(org.id)).length, 1, `round ${round}`);
          assert.equal((await auditEvents(t, 'member.updated')).filter((e) => e.org_id === org.id).length, 1);
        }
      });

      it('removing and suspending the only two owners at the same moment also leaves one (5 rounds)', async () => {
        for (let round = 0; round < 5; round++) {
          const org = await insertOrg(t);
          const a = await insertUser(t);
          const b = await insertUser(t);
          await addMember(t, org.id, a.id, 'owner');
          await addMember(t, org.id, b.id, 'owner');
          const results = await Promise.all([
            t.http.delete(`/api/v1/orgs/${org.id}/members/${a.id}`).set('Authorization', t.adminAuth),
            t.http.patch(`/api/v1/orgs/${org.id}/members/${b.id}`).set('Authorization', t.adminAuth).send({ status: 'suspended' }),
          ]);
          const statuses = results.map((r) => r.status);
          assert.ok(
            JSON.stringify(statuses) === '[204,409]' || JSON.stringify(statuses) === '[409,200]',
            `round ${round}: ${JSON.stringify(statuses)}`,
          );
          assert.equal((await activeOwners(org.id)).length, 1, `round ${round}`);
        }
      });

      if (backend === 'postgres') {
        it('the check waits on the owner rows a concurrent transaction holds (real row locking on PostgreSQL)', async () => {
          const org = await insertOrg(t);
          const a = await memberWithSession(t, org.id, 'owner');
          const b = await memberWithSession(t, org.id, 'owner');
          const trx = await t.testDb.db.transaction();
          let settled = false;
          try {
            // another writer holds the owner rows and is about to demote b
            await trx.raw(`select user_id from memberships where org_id = ? and role = 'owner' and status = 'active' for update`, [org.id]);
            const pending = t.http
              .patch(`/api/v1/orgs/${org.id}/members/${a.user.id}`)
              .set('Authorization', a.auth)
              .send({ role: 'admin' })
              .then((r) => {
                settled = true;
                return r;
              });
            await new Promise((r) => setTimeout(r, 400));
            assert.equal(settled, false, 'the request must wait for the lock');
            await trx('memberships').where({ org_id: org.id, user_id: b.user.id }).update({ role: 'admin' });
            await trx.commit();
            const res = await pending;
            assert.equal(res.status, 409);
            assert.equal(res.body.error.code, 'conflict.last_owner');
          } finally {
            if (!trx.isCompleted()) await trx.rollback();
          }
          assert.deepEqual(await activeOwners(org.id), [a.user.id]);
        });
      }
    });

    it('a user in two orgs: changing one membership leaves the other untouched', async () => {
      const user = await insertUser(t);
      const x = await insertOrg(t);
      const y = await insertOrg(t);
      await addMember(t, x.id, user.id, 'admin');
      await addMember(t, y.id, user.id, 'admin');
      await customRole(x.id, 'xr');
      await t.http.patch(`/api/v1/orgs/${x.id}/members/${user.id}`).set('Authorization', t.adminAuth).send({ role: 'viewer', roles: ['xr'], status: 'suspended' }).expect(200);
      const inY = await t.http.get(`/api/v1/orgs/${y.id}/members/${user.id}`).set('Authorization', t.adminAuth).expect(200);
      assert.deepEqual([inY.body.role, inY.body.roles, inY.body.status], ['admin', [], 'active']);
      // a role key of org x means nothing in org y
      await t.http.patch(`/api/v1/orgs/${y.id}/members/${user.id}`).set('Authorization', t.adminAuth).send({ roles: ['xr'] }).expect(400);
      const auth = await sessionAuth(t, user.id);
      await t.http.get(`/api/v1/orgs/${y.id}/members`).set('Authorization', auth).expect(200);
      await t.http.get(`/api/v1/orgs/${x.id}/members`).set('Authorization', auth).expect(403);
    });
  });
}
