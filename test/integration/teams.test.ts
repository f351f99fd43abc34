import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertOrg, insertUser, memberWithSession } from '../helpers/fixtures.js';
import { addTeamMember, insertGrant, insertProject, insertRole, insertScimDirectory, insertTeam } from '../helpers/projects.js';

for (const backend of testBackends()) {
  describe(`teams API [${backend}]`, () => {
    let t: TestApp;
    let orgId: string;
    let otherOrgId: string;
    let ownerAuth: string;
    let viewerAuth: string;
    let outsiderAuth: string;
    before(async () => {
      t = await createTestApp(backend);
      const owner = await insertUser(t);
      orgId = (await insertOrg(t, { ownerId: owner.id })).id;
      ownerAuth = (await memberWithSession(t, orgId, 'owner')).auth;
      viewerAuth = (await memberWithSession(t, orgId, 'viewer')).auth;
      const otherOwner = await insertUser(t);
      otherOrgId = (await insertOrg(t, { ownerId: otherOwner.id })).id;
      outsiderAuth = (await memberWithSession(t, otherOrgId, 'owner')).auth;
    });
    after(() => t.close());

    const teamsUrl = (o = orgId) => `/api/v1/orgs/${o}/teams`;

    it('POST creates a team (audited); GET shows it with member count and roles', async () => {
      const res = await t.http.post(teamsUrl()).set('Authorization', ownerAuth).send({ name: 'eng', description: 'Engineers' }).expect(201);
      assert.equal(res.body.name, 'eng');
      assert.equal(res.body.description, 'Engineers');
      assert.equal(res.body.memberCount, 0);
      assert.deepEqual(res.body.roles, []);
      assert.equal(res.body.scimDirectoryId, null);
      const events = await auditEvents(t, 'team.created', res.body.id);
      assert.equal(events.length, 1);
      assert.equal(events[0].org_id, orgId);
      assert.equal(events[0].actor_type, 'user');

      const got = await t.http.get(`${teamsUrl()}/${res.body.id}`).set('Authorization', viewerAuth).expect(200);
      assert.equal(got.body.id, res.body.id);
      assert.equal(got.body.memberCount, 0);
    });

    it('POST: bad input 400, no auth 401, viewer 403, another org 404; nothing audited', async () => {
      const before = (await auditEvents(t, 'team.created')).length;
      const bad = await t.http.post(teamsUrl()).set('Authorization', ownerAuth).send({ name: '', extra: 1 }).expect(400);
      assert.equal(bad.body.error.code, 'validation.failed');
      assert.ok(bad.body.error.details.some((d: { path: string }) => d.path === 'name'));
      await t.http.post(teamsUrl()).send({ name: 'x' }).expect(401);
      const denied = await t.http.post(teamsUrl()).set('Authorization', viewerAuth).send({ name: 'x' }).expect(403);
      assert.equal(denied.body.error.code, 'forbidden');
      await t.http.post(teamsUrl()).set('Authorization', outsiderAuth).send({ name: 'x' }).expect(404);
      assert.equal((await auditEvents(t, 'team.created')).length, before);
    });

    it('GET list is paginated by name and scoped to the org', async () => {
      const owner = await insertUser(t);
      const org = await insertOrg(t, { ownerId: owner.id });
      for (const name of ['charlie', 'Alpha', 'bravo']) await insertTeam(t, org.id, { name });
      await insertTeam(t, otherOrgId, { name: 'not-mine' });
      const page1 = await t.http.get(teamsUrl(org.id)).query({ limit: 2 }).set('Authorization', t.adminAuth).expect(200);
      assert.deepEqual(page1.body.data.map((x: { name: string }) => x.name), ['Alpha', 'bravo']);
      assert.ok(page1.body.next);
      const page2 = await t.http.get(teamsUrl(org.id)).query({ limit: 2, after: page1.body.next }).set('Authorization', t.adminAuth).expect(200);
      assert.deepEqual(page2.body.data.map((x: { name: string }) => x.name), ['charlie']);
      assert.equal(page2.body.next, null);
      await t.http.get(teamsUrl(org.id)).query({ after: 'garbage' }).set('Authorization', t.adminAuth).expect(400);
      await t.http.get(teamsUrl(org.id)).expect(401);
      await t.http.get(teamsUrl(org.id)).set('Authorization', outsiderAuth).expect(404);
    });

    it("another org's team under this org's path is 404 for every verb", async () => {
      const foreign = await insertTeam(t, otherOrgId);
      const url = `${teamsUrl()}/${foreign.id}`;
      await t.http.get(url).set('Authorization', t.adminAuth).expect(404);
      await t.http.patch(url).set('Authorization', t.adminAuth).send({ name: 'x' }).expect(404);
      await t.http.delete(url).set('Authorization', t.adminAuth).expect(404);
      await t.http.get(`${url}/members`).set('Authorization', t.adminAuth).expect(404);
      await t.http.post(`${url}/members`).set('Authorization', t.adminAuth).send({ userId: randomUUID() }).expect(404);
      await t.http.delete(`${url}/members/${randomUUID()}`).set('Authorization', t.adminAuth).expect(404);
      await t.http.get(`${teamsUrl()}/not-a-uuid`).set('Authorization', t.adminAuth).expect(404);
      assert.equal((await t.testDb.db('teams').where({ id: foreign.id }).first()).name, foreign.name);
    });

    it('PATCH renames and replaces the role set (by key); unknown keys are a 400 naming them', async () => {
      const team = await insertTeam(t, orgId, { name: 'platform' });
      await insertRole(t, orgId, 'deployer');
      await insertRole(t, orgId, 'auditor');
      const url = `${teamsUrl()}/${team.id}`;
      const res = await t.http.patch(url).set('Authorization', ownerAuth).send({ name: 'platform-eng', roles: ['deployer', 'auditor'] }).expect(200);
      assert.equal(res.body.name, 'platform-eng');
      assert.deepEqual(res.body.roles, ['auditor', 'deployer']);
      const replaced = await t.http.patch(url).set('Authorization', ownerAuth).send({ roles: ['deployer'] }).expect(200);
      assert.deepEqual(replaced.body.roles, ['deployer']);
      assert.equal(replaced.body.name, 'platform-eng');
      const events = await auditEvents(t, 'team.updated', team.id);
      assert.equal(events.length, 2);
      assert.deepEqual(events[1].before.roles, ['auditor', 'deployer']);
      assert.deepEqual(events[1].after.roles, ['deployer']);

      const unknown = await t.http.patch(url).set('Authorization', ownerAuth).send({ roles: ['deployer', 'ghost', 'owner'] }).expect(400);
      assert.equal(unknown.body.error.code, 'validation.unknown_role');
      assert.deepEqual(unknown.body.error.details.unknownRoles, ['ghost', 'owner']);
      assert.match(unknown.body.error.message, /ghost/);
      // a role of another org is unknown here
      await insertRole(t, otherOrgId, 'foreign-role');
      await t.http.patch(url).set('Authorization', ownerAuth).send({ roles: ['foreign-role'] }).expect(400);
      await t.http.patch(url).set('Authorization', ownerAuth).send({}).expect(400);
      await t.http.patch(url).set('Authorization', ownerAuth).send({ colour: 'red' }).expect(400);
      await t.http.patch(url).send({ name: 'x' }).expect(401);
      await t.http.patch(url).set('Authorization', viewerAuth).send({ name: 'x' }).expect(403);
      await t.http.patch(url).set('Authorization', outsiderAuth).send({ name: 'x' }).expect(404);
      assert.equal((await auditEvents(t, 'team.updated', team.id)).length, 2);
      assert.deepEqual(
        (await t.testDb.db('team_roles').where({ team_id: team.id })).length,
        1,
      );
    });

    it('team roles give their permissions to team members', async () => {
      const team = await insertTeam(t, orgId);
      await insertRole(t, orgId, 'team-admins', ['teams:manage']);
      const { user, auth } = await memberWithSession(t, orgId, 'viewer');
      await addTeamMember(t, orgId, team.id, user.id);
      await t.http.post(teamsUrl()).set('Authorization', auth).send({ name: 'nope' }).expect(403);
      await t.http.patch(`${teamsUrl()}/${team.id}`).set('Authorization', ownerAuth).send({ roles: ['team-admins'] }).expect(200);
      await t.http.post(teamsUrl()).set('Authorization', auth).send({ name: 'yes' }).expect(201);
    });

    it('members: add (org members only), list, remove; all audited', async () => {
      const team = await insertTeam(t, orgId, { name: 'members-test' });
      const url = `${teamsUrl()}/${team.id}/members`;
      const member = await insertUser(t, { name: 'Ada' });
      await addMember(t, orgId, member.id);
      const added = await t.http.post(url).set('Authorization', ownerAuth).send({ userId: member.id }).expect(201);
      assert.equal(added.body.userId, member.id);
      assert.equal(added.body.name, 'Ada');
      assert.equal((await auditEvents(t, 'team.member_added', team.id)).length, 1);

      const again = await t.http.post(url).set('Authorization', ownerAuth).send({ userId: member.id }).expect(409);
      assert.equal(again.body.error.code, 'conflict.team_member_exists');

      const stranger = await insertUser(t);
      const notMember = await t.http.post(url).set('Authorization', ownerAuth).send({ userId: stranger.id }).expect(422);
      assert.equal(notMember.body.error.code, 'team.user_not_member');
      await t.http.post(url).set('Authorization', ownerAuth).send({ userId: 'not-a-uuid' }).expect(422);
      await t.http.post(url).set('Authorization', ownerAuth).send({}).expect(400);
      await t.http.post(url).send({ userId: member.id }).expect(401);
      await t.http.post(url).set('Authorization', viewerAuth).send({ userId: member.id }).expect(403);
      await t.http.post(url).set('Authorization', outsiderAuth).send({ userId: member.id }).expect(404);
      assert.equal((await auditEvents(t, 'team.member_added', team.id)).length, 1);

      const list = await t.http.get(url).set('Authorization', viewerAuth).expect(200);
      assert.deepEqual(list.body.data.map((m: { userId: string }) => m.userId), [member.id]);
      assert.equal(list.body.next, null);
      const got = await t.http.get(`${teamsUrl()}/${team.id}`).set('Authorization', viewerAuth).expect(200);
      assert.equal(got.body.memberCount, 1);
      await t.http.get(url).expect(401);
      await t.http.get(url).set('Authorization', outsiderAuth).expect(404);

      await t.http.delete(`${url}/${member.id}`).set('Authorization', viewerAuth).expect(403);
      await t.http.delete(`${url}/${member.id}`).set('Authorization', ownerAuth).expect(204);
      await t.http.delete(`${url}/${member.id}`).set('Authorization', ownerAuth).expect(404);
      assert.equal((await auditEvents(t, 'team.member_removed', team.id)).length, 1);
      assert.equal((await t.testDb.db('team_members').where({ team_id: team.id })).length, 0);
    });

    it('DELETE removes the team and its grants (audited); viewer 403, outsider 404', async () => {
      const team = await insertTeam(t, orgId);
      const project = await insertProject(t, orgId);
      await insertGrant(t, orgId, project.id, { team_id: team.id }, 'read');
      const url = `${teamsUrl()}/${team.id}`;
      await t.http.delete(url).expect(401);
      await t.http.delete(url).set('Authorization', viewerAuth).expect(403);
      await t.http.delete(url).set('Authorization', outsiderAuth).expect(404);
      assert.equal((await auditEvents(t, 'team.deleted', team.id)).length, 0);
      await t.http.delete(url).set('Authorization', ownerAuth).expect(204);
      await t.http.get(url).set('Authorization', ownerAuth).expect(404);
      assert.equal((await t.testDb.db('project_grants').where({ team_id: team.id })).length, 0);
      const events = await auditEvents(t, 'team.deleted', team.id);
      assert.equal(events.length, 1);
      assert.equal(events[0].before.name, team.name);
    });

    it('a SCIM-managed team is read-only: every write is 409 team.managed_by_scim, nothing changes', async () => {
      const directory = await insertScimDirectory(t, orgId);
      const team = await insertTeam(t, orgId, { name: 'okta-group', scimDirectoryId: directory.id });
      const member = await insertUser(t);
      await addMember(t, orgId, member.id);
      await addTeamMember(t, orgId, team.id, member.id);
      const other = await insertUser(t);
      await addMember(t, orgId, other.id);
      const url = `${teamsUrl()}/${team.id}`;

      const got = await t.http.get(url).set('Authorization', viewerAuth).expect(200);
      assert.equal(got.body.scimDirectoryId, directory.id);
      assert.equal(got.body.memberCount, 1);

      const writes = [
        t.http.patch(url).set('Authorization', ownerAuth).send({ name: 'renamed' }),
        t.http.delete(url).set('Authorization', ownerAuth),
        t.http.post(`${url}/members`).set('Authorization', ownerAuth).send({ userId: other.id }),
        t.http.delete(`${url}/members/${member.id}`).set('Authorization', t.adminAuth),
      ];
      for (const write of writes) {
        const res = await write.expect(409);
        assert.equal(res.body.error.code, 'team.managed_by_scim');
        assert.match(res.body.error.message, /SCIM/);
      }
      const after = await t.testDb.db('teams').where({ id: team.id }).first();
      assert.equal(after.name, 'okta-group');
      assert.equal((await t.testDb.db('team_members').where({ team_id: team.id })).length, 1);
      assert.equal((await t.testDb.db('audit_events').where({ target_id: team.id })).length, 0);
    });
  });
}
