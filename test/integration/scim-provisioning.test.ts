import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { auditEvents, insertUser, addMember, sessionAuth } from '../helpers/fixtures.js';
import { fill, loadFixture, membership, scimDirectory, scimUserRow, teamMemberIds, teamOfGroup, userBody } from '../fixtures/scim/harness.js';

const okta = loadFixture('okta');
const entra = loadFixture('entra');

for (const backend of testBackends()) {
  describe(`SCIM provisioning runs [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('Okta: probe, create, find, PUT, deactivate, reactivate, groups with add/remove/replace, delete', async () => {
      const d = await scimDirectory(t);
      const probe = await d.scim.get(okta.probeUsers as string);
      assert.equal(probe.status, 200);
      assert.match(String(probe.headers['content-type']), /application\/scim\+json/);
      assert.deepEqual(probe.body.totalResults, 0);
      assert.equal((await d.scim.get(okta.probeGroups as string)).body.totalResults, 0);
      assert.equal((await d.scim.get(okta.findUser as string)).body.totalResults, 0);

      const created = await d.scim.post('/Users', okta.createUser);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const userId = created.body.id as string;
      assert.equal(created.body.userName, 'test.user@okta.local');
      assert.equal(created.body.meta.location, `http://sp.test/scim/v2/${d.id}/Users/${userId}`);
      assert.equal(created.body.meta.version, 'W/"1"');
      assert.equal(created.headers.etag, 'W/"1"');
      assert.equal(created.body.password, undefined, 'passwords are never stored or returned');
      const row = await scimUserRow(t, userId);
      const account = await t.testDb.db('users').where({ id: row.user_id }).first();
      assert.equal(account.email, 'test.user@okta.local');
      assert.equal(account.name, 'Test User');
      const m = await membership(t, d.orgId, row.user_id);
      assert.deepEqual([m.role, m.status, m.source], ['member', 'active', 'scim']);

      const found = await d.scim.get(okta.findUser as string);
      assert.equal(found.body.totalResults, 1);
      assert.equal(found.body.Resources[0].id, userId);

      const put = await d.scim.put(`/Users/${userId}`, fill(okta.replaceUser, { userId }));
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.equal(put.body.name.givenName, 'Another');
      assert.equal(put.body.meta.version, 'W/"2"');

      const off = await d.scim.patch(`/Users/${userId}`, okta.deactivateUser);
      assert.equal(off.status, 200, JSON.stringify(off.body));
      assert.equal(off.body.active, false);
      assert.equal((await membership(t, d.orgId, row.user_id)).status, 'suspended');
      const on = await d.scim.patch(`/Users/${userId}`, okta.reactivateUser);
      assert.equal(on.body.active, true);
      assert.equal((await membership(t, d.orgId, row.user_id)).status, 'active');

      const other = await d.scim.post('/Users', userBody('other.user@okta.local'));
      const otherUserId = other.body.id as string;
      const otherGlobal = (await scimUserRow(t, otherUserId)).user_id;

      const group = await d.scim.post('/Groups', fill(okta.createGroup, { userId }));
      assert.equal(group.status, 201, JSON.stringify(group.body));
      const groupId = group.body.id as string;
      assert.deepEqual(group.body.members.map((x: { value: string }) => x.value), [userId], 'members without type are stored');
      const team = await teamOfGroup(t, groupId);
      assert.equal(team.name, 'Test SCIMv2');
      assert.equal(team.scim_directory_id, d.id);
      assert.deepEqual(await teamMemberIds(t, team.id), [row.user_id]);

      const foundGroup = await d.scim.get(okta.findGroup as string);
      assert.equal(foundGroup.body.totalResults, 1);

      assert.equal((await d.scim.patch(`/Groups/${groupId}`, fill(okta.renameGroup, { groupId }))).status, 204);
      assert.equal((await teamOfGroup(t, groupId)).name, 'Test SCIMv2 renamed');
      assert.equal((await d.scim.patch(`/Groups/${groupId}`, fill(okta.addMembers, { otherUserId }))).status, 204);
      assert.deepEqual(await teamMemberIds(t, team.id), [row.user_id, otherGlobal].sort());
      assert.equal((await d.scim.patch(`/Groups/${groupId}`, fill(okta.removeMember, { userId }))).status, 204);
      assert.deepEqual(await teamMemberIds(t, team.id), [otherGlobal]);
      assert.equal((await d.scim.patch(`/Groups/${groupId}`, fill(okta.replaceMembers, { userId }))).status, 204);
      assert.deepEqual(await teamMemberIds(t, team.id), [row.user_id]);
      const putGroup = await d.scim.put(`/Groups/${groupId}`, fill(okta.replaceGroup, { groupId, userId, otherUserId }));
      assert.equal(putGroup.status, 200, JSON.stringify(putGroup.body));
      assert.equal(putGroup.body.members.length, 2);
      assert.deepEqual(await teamMemberIds(t, team.id), [row.user_id, otherGlobal].sort());

      const del = await d.scim.delete(`/Users/${userId}`);
      assert.equal(del.status, 204);
      assert.equal((await d.scim.get(`/Users/${userId}`)).status, 404);
      assert.equal(await membership(t, d.orgId, row.user_id), undefined);
      assert.deepEqual(await teamMemberIds(t, team.id), [otherGlobal]);
      assert.ok(await t.testDb.db('users').where({ id: row.user_id }).first(), 'the global account stays');

      assert.equal((await d.scim.delete(`/Groups/${groupId}`)).status, 204);
      assert.equal((await d.scim.get(`/Groups/${groupId}`)).status, 404);
      assert.equal(await t.testDb.db('teams').where({ id: team.id }).first(), undefined);

      const events = await t.testDb.db('audit_events').where({ actor_type: 'scim_directory', actor_id: d.id }).orderBy('id').pluck('action');
      assert.deepEqual(events.slice(0, 5), ['scim_user.create', 'scim_user.update', 'scim_user.deactivate', 'scim_user.reactivate', 'scim_user.create']);
      assert.ok(events.includes('scim_group.create') && events.includes('scim_group.update') && events.includes('scim_user.delete') && events.includes('scim_group.delete'));
      assert.ok((await t.testDb.db('audit_events').where({ actor_id: d.id }).whereNot({ org_id: d.orgId })).length === 0);
    });

    it('Entra ID: discovery probes, create, filters, capitalised ops, string booleans, dotted no-path replace, groups', async () => {
      const d = await scimDirectory(t);
      for (const p of ['/', '/ServiceProviderConfig', '/Schemas', '/ResourceTypes']) {
        const res = await d.scim.get(p);
        assert.equal(res.status, 200, p);
        assert.match(String(res.headers['content-type']), /application\/scim\+json/);
      }
      const created = await d.scim.post('/Users', entra.createUser);
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const userId = created.body.id as string;
      const globalId = (await scimUserRow(t, userId)).user_id;
      assert.equal((await d.scim.get(entra.findByUserName as string)).body.totalResults, 1);
      const byExternal = await d.scim.get(entra.findByExternalId as string);
      assert.equal(byExternal.body.totalResults, 1);
      assert.equal(byExternal.body.Resources[0].id, userId);

      const multi = await d.scim.patch(`/Users/${userId}`, entra.updateMultiValued);
      assert.equal(multi.status, 200, JSON.stringify(multi.body));
      assert.equal(multi.body.emails[0].value, 'updatedEmail@testuser.com');
      assert.equal(multi.body.name.familyName, 'updatedFamilyName');
      const single = await d.scim.patch(`/Users/${userId}`, entra.updateSingleValued);
      assert.equal(single.body.userName, '5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com');
      const noPath = await d.scim.patch(`/Users/${userId}`, entra.noPathReplace);
      assert.equal(noPath.status, 200, JSON.stringify(noPath.body));
      assert.equal(noPath.body.name.givenName, 'Updated');
      assert.equal(noPath.body.displayName, 'Updated Display');
      assert.equal(noPath.body['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'].department, 'Finance');
      const address = await d.scim.patch(`/Users/${userId}`, entra.addWorkAddress);
      assert.equal(address.status, 200, JSON.stringify(address.body));
      assert.deepEqual(address.body.addresses, [{ type: 'work', locality: 'Redmond' }]);

      const off = await d.scim.patch(`/Users/${userId}`, entra.disableUser);
      assert.equal(off.status, 200, JSON.stringify(off.body));
      assert.equal(off.body.active, false);
      assert.equal((await membership(t, d.orgId, globalId)).status, 'suspended');
      assert.equal((await d.scim.patch(`/Users/${userId}`, entra.enableUser)).body.active, true);
      assert.equal((await membership(t, d.orgId, globalId)).status, 'active');

      const group = await d.scim.post('/Groups', entra.createGroup);
      assert.equal(group.status, 201, JSON.stringify(group.body));
      const groupId = group.body.id as string;
      const found = await d.scim.get(entra.findGroup as string);
      assert.equal(found.body.totalResults, 1);
      assert.equal(found.body.Resources[0].members, undefined);
      assert.equal((await d.scim.patch(`/Groups/${groupId}`, entra.renameGroup)).status, 204);
      const team = await teamOfGroup(t, groupId);
      assert.equal(team.name, '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName');

      // a second member, so removal of one must leave the other
      const other = await d.scim.post('/Users', userBody('second@testuser.com'));
      const otherGlobal = (await scimUserRow(t, other.body.id)).user_id;
      assert.equal((await d.scim.patch(`/Groups/${groupId}`, fill(entra.addMember, { userId }))).status, 204);
      assert.equal((await d.scim.patch(`/Groups/${groupId}`, fill(entra.addMember, { userId: other.body.id }))).status, 204);
      assert.deepEqual(await teamMemberIds(t, team.id), [globalId, otherGlobal].sort());
      const removed = await d.scim.patch(`/Groups/${groupId}`, fill(entra.removeMember, { userId }));
      assert.equal(removed.status, 204);
      assert.deepEqual(await teamMemberIds(t, team.id), [otherGlobal], 'Remove with a value removes only those members');

      assert.equal((await d.scim.delete(`/Users/${userId}`)).status, 204);
      assert.equal((await d.scim.get(`/Users/${userId}`)).status, 404);
      assert.equal(await membership(t, d.orgId, globalId), undefined);
    });

    it('deactivation cuts a live session off the org on its next call; reactivation restores it', async () => {
      const d = await scimDirectory(t);
      const created = await d.scim.post('/Users', userBody('session.user@example.com'));
      const globalId = (await scimUserRow(t, created.body.id)).user_id;
      const auth = await sessionAuth(t, globalId);
      assert.equal((await t.http.get(`/api/v1/orgs/${d.orgId}/scim-directories`).set('Authorization', auth)).status, 403, 'a member lacks scim:manage');
      await d.scim.patch(`/Users/${created.body.id}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'active', value: false }] });
      const denied = await t.http.get(`/api/v1/orgs/${d.orgId}/scim-directories`).set('Authorization', auth);
      assert.equal(denied.status, 403);
      assert.equal(denied.body.error.code, 'membership.suspended');
    });

    it('identity safety: unverified domains never change the global account; verified ones do; existing users are linked', async () => {
      const existing = await insertUser(t, { email: 'Jane@Partner.example', name: 'Jane Original' });
      const d = await scimDirectory(t);
      const created = await d.scim.post('/Users', userBody('jane@partner.example', { displayName: 'Jane From IdP' }));
      assert.equal(created.status, 201);
      const row = await scimUserRow(t, created.body.id);
      assert.equal(row.user_id, existing.id, 'linked by email case-insensitively, not duplicated');
      assert.equal((await t.testDb.db('users').whereRaw('lower(email) = ?', ['jane@partner.example'])).length, 1);
      let account = await t.testDb.db('users').where({ id: existing.id }).first();
      assert.equal(account.name, 'Jane Original');
      await d.scim.put(`/Users/${created.body.id}`, userBody('jane@partner.example', { displayName: 'Renamed', emails: [{ value: 'jane@other.example', primary: true }] }));
      account = await t.testDb.db('users').where({ id: existing.id }).first();
      assert.deepEqual([account.email, account.name], ['Jane@Partner.example', 'Jane Original']);
      assert.equal((await d.scim.get(`/Users/${created.body.id}`)).body.displayName, 'Renamed', 'the directory copy changes');

      await t.testDb.db('domains').insert({ org_id: d.orgId, domain: 'partner.example', status: 'verified', verification_token: 'x', verified_at: new Date() });
      await d.scim.put(`/Users/${created.body.id}`, userBody('jane@partner.example', { displayName: 'Jane Verified' }));
      account = await t.testDb.db('users').where({ id: existing.id }).first();
      assert.equal(account.name, 'Jane Verified');
    });

    it('an existing manual member is adopted; an owner is never suspended or removed by SCIM', async () => {
      const owner = await insertUser(t, { email: 'boss@corp.example' });
      const d = await scimDirectory(t);
      await addMember(t, d.orgId, owner.id, 'owner');
      const created = await d.scim.post('/Users', userBody('boss@corp.example'));
      assert.equal(created.status, 201);
      await d.scim.patch(`/Users/${created.body.id}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', value: { active: 'False' } }] });
      let m = await membership(t, d.orgId, owner.id);
      assert.deepEqual([m.role, m.status, m.source], ['owner', 'active', 'manual']);
      await d.scim.delete(`/Users/${created.body.id}`);
      m = await membership(t, d.orgId, owner.id);
      assert.equal(m.role, 'owner');
    });

    it('group role mappings: built-in roles by highest rank, custom roles as team roles, recomputed on changes', async () => {
      const org = { id: (await t.testDb.db('organizations').insert({ slug: `org-map-${Date.now()}`, name: 'Map' }).returning('id'))[0].id as string };
      await t.testDb.db('roles').insert({ org_id: org.id, key: 'billing', name: 'Billing', permissions: ['audit:read'] });
      const d = await scimDirectory(t, { name: 'Mapped', defaultRole: 'viewer', groupRoleMappings: [{ group: 'Admins', role: 'admin' }, { group: 'ext-billing', role: 'billing' }] }, org.id);
      const u = await d.scim.post('/Users', userBody('mapped@corp.example'));
      const gid = (await scimUserRow(t, u.body.id)).user_id;
      assert.equal((await membership(t, org.id, gid)).role, 'viewer');
      const admins = await d.scim.post('/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'admins', members: [{ value: u.body.id }] });
      assert.equal(admins.status, 201);
      assert.equal((await membership(t, org.id, gid)).role, 'admin', 'displayName matches case-insensitively');
      const billing = await d.scim.post('/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Billing team', externalId: 'ext-billing' });
      const billingTeam = await teamOfGroup(t, billing.body.id);
      const teamRoles = await t.testDb.db('team_roles as tr').join('roles as r', 'r.id', 'tr.role_id').where('tr.team_id', billingTeam.id).pluck('r.key');
      assert.deepEqual(teamRoles, ['billing']);
      await d.scim.patch(`/Groups/${admins.body.id}`, { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'remove', path: `members[value eq "${u.body.id}"]` }] });
      assert.equal((await membership(t, org.id, gid)).role, 'viewer', 'leaving the group drops the mapped role');
      const upd = await t.http.patch(`/api/v1/orgs/${org.id}/scim-directories/${d.id}`).set('Authorization', t.adminAuth).send({ defaultRole: 'member' });
      assert.equal(upd.status, 200);
      assert.equal((await membership(t, org.id, gid)).role, 'member', 'a new default role applies to existing users');
      assert.equal((await auditEvents(t, 'scim_directory.update', d.id)).length, 1);
    });
  });
}
