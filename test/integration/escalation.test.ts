import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { auditEvents, insertOrg, insertUser, memberWithSession, sessionAuth, addMember } from '../helpers/fixtures.js';

/**
 * A member whose custom role lets it manage members or send invites must not hand
 * out (or take) a built-in role carrying permissions it does not hold.
 */
for (const backend of testBackends()) {
  describe(`no privilege escalation through built-in roles [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    async function delegate(permissions: string[]) {
      const org = await insertOrg(t);
      const owner = await memberWithSession(t, org.id, 'owner');
      const key = `deleg${Math.random().toString(36).slice(2, 8)}`;
      await t.http.post(`/api/v1/orgs/${org.id}/roles`).set('Authorization', owner.auth).send({ key, name: 'Delegate', permissions }).expect(201);
      const user = await insertUser(t);
      await addMember(t, org.id, user.id, 'member');
      await t.http.patch(`/api/v1/orgs/${org.id}/members/${user.id}`).set('Authorization', owner.auth).send({ roles: [key] }).expect(200);
      return { org, user, auth: await sessionAuth(t, user.id) };
    }

    it('members:manage alone cannot make anyone admin, itself included', async () => {
      const { org, user, auth } = await delegate(['members:manage']);
      const other = await insertUser(t);
      const add = await t.http.post(`/api/v1/orgs/${org.id}/members`).set('Authorization', auth).send({ userId: other.id, role: 'admin' }).expect(403);
      assert.equal(add.body.error.code, 'forbidden.permission_escalation');
      const self = await t.http.patch(`/api/v1/orgs/${org.id}/members/${user.id}`).set('Authorization', auth).send({ role: 'admin' }).expect(403);
      assert.equal(self.body.error.code, 'forbidden.permission_escalation');
      const row = await t.testDb.db('memberships').where({ org_id: org.id, user_id: user.id }).first();
      assert.equal(row.role, 'member');
      assert.equal((await t.testDb.db('memberships').where({ org_id: org.id, user_id: other.id })).length, 0);
      // roles it does hold are fine
      await t.http.post(`/api/v1/orgs/${org.id}/members`).set('Authorization', auth).send({ userId: other.id, role: 'viewer' }).expect(201);
    });

    it('members:invite alone cannot invite an admin, but can invite a member', async () => {
      const { org, auth } = await delegate(['members:invite']);
      const before = (await auditEvents(t, 'invite.created')).length;
      const res = await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', auth).send({ email: 'boss@example.com', role: 'admin' }).expect(403);
      assert.equal(res.body.error.code, 'forbidden.permission_escalation');
      assert.equal((await auditEvents(t, 'invite.created')).length, before);
      await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', auth).send({ email: 'peer@example.com', role: 'member' }).expect(201);
    });
    it('teams:manage alone cannot attach a stronger role to a team, nor join a team that carries one', async () => {
      const { org, user, auth } = await delegate(['teams:manage']);
      const ownerAuth = (await memberWithSession(t, org.id, 'owner')).auth;
      await t.http.post(`/api/v1/orgs/${org.id}/roles`).set('Authorization', ownerAuth).send({ key: 'auditor', name: 'A', permissions: ['audit:read'] }).expect(201);
      const team = (await t.http.post(`/api/v1/orgs/${org.id}/teams`).set('Authorization', auth).send({ name: 'mine' }).expect(201)).body;
      const attach = await t.http.patch(`/api/v1/orgs/${org.id}/teams/${team.id}`).set('Authorization', auth).send({ roles: ['auditor'] }).expect(403);
      assert.equal(attach.body.error.code, 'forbidden.permission_escalation');
      assert.equal((await t.testDb.db('team_roles').where({ team_id: team.id })).length, 0);

      const strong = (await t.http.post(`/api/v1/orgs/${org.id}/teams`).set('Authorization', ownerAuth).send({ name: 'auditors' }).expect(201)).body;
      await t.http.patch(`/api/v1/orgs/${org.id}/teams/${strong.id}`).set('Authorization', ownerAuth).send({ roles: ['auditor'] }).expect(200);
      const join = await t.http.post(`/api/v1/orgs/${org.id}/teams/${strong.id}/members`).set('Authorization', auth).send({ userId: user.id }).expect(403);
      assert.equal(join.body.error.code, 'forbidden.permission_escalation');
      assert.equal((await t.testDb.db('team_members').where({ team_id: strong.id })).length, 0);
      // the owner may
      await t.http.post(`/api/v1/orgs/${org.id}/teams/${strong.id}/members`).set('Authorization', ownerAuth).send({ userId: user.id }).expect(201);
    });
    it('scim:manage alone cannot configure a directory that provisions admins', async () => {
      const { org, auth } = await delegate(['scim:manage']);
      const url = `/api/v1/orgs/${org.id}/scim-directories`;
      const a = await t.http.post(url).set('Authorization', auth).send({ name: 'idp', defaultRole: 'admin' }).expect(403);
      assert.equal(a.body.error.code, 'forbidden.permission_escalation');
      const b = await t.http.post(url).set('Authorization', auth).send({ name: 'idp', groupRoleMappings: [{ group: 'Admins', role: 'admin' }] }).expect(403);
      assert.equal(b.body.error.code, 'forbidden.permission_escalation');
      assert.equal((await t.testDb.db('scim_directories').where({ org_id: org.id })).length, 0);
      const ok = await t.http.post(url).set('Authorization', auth).send({ name: 'idp' }).expect(201);
      await t.http.patch(`${url}/${ok.body.id}`).set('Authorization', auth).send({ defaultRole: 'admin' }).expect(403);
      await t.http.patch(`${url}/${ok.body.id}`).set('Authorization', auth).send({ defaultRole: 'viewer' }).expect(200);
    });
  });
}
