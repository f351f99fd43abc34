import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Response } from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertOrg, insertUser, memberWithSession } from '../helpers/fixtures.js';
import { ALL_PERMISSIONS } from '../../src/authz/permissions.js';

for (const backend of testBackends()) {
  describe(`custom roles API [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    async function orgWithStaff() {
      const org = await insertOrg(t);
      const owner = await memberWithSession(t, org.id, 'owner');
      const admin = await memberWithSession(t, org.id, 'admin');
      const member = await memberWithSession(t, org.id, 'member');
      const outsider = await memberWithSession(t, (await insertOrg(t)).id, 'owner');
      return { org, owner, admin, member, outsider };
    }
    const createRole = (orgId: string, auth: string, body: object) =>
      t.http.post(`/api/v1/orgs/${orgId}/roles`).set('Authorization', auth).send(body);

    describe('GET /permissions', () => {
      it('returns the catalogue and the built-in roles; 401 without auth', async () => {
        const user = await memberWithSession(t, (await insertOrg(t)).id, 'viewer');
        const res = await t.http.get('/api/v1/permissions').set('Authorization', user.auth).expect(200);
        assert.deepEqual(res.body.data.map((p: { key: string }) => p.key), ALL_PERMISSIONS);
        assert.ok(res.body.data.every((p: { description: string }) => p.description.length > 0));
        assert.deepEqual(res.body.builtinRoles.owner.sort(), [...ALL_PERMISSIONS].sort());
        assert.ok(!res.body.builtinRoles.admin.includes('ownership:manage'));
        assert.deepEqual(res.body.builtinRoles.viewer.sort(), ['members:read', 'org:read', 'projects:read', 'roles:read', 'teams:read']);
        await t.http.get('/api/v1/permissions').expect(401);
      });
    });

    describe('POST /orgs/:orgId/roles', () => {
      it('an admin creates a role (permissions deduplicated and sorted); audited', async () => {
        const { org, admin } = await orgWithStaff();
        const res = await createRole(org.id, admin.auth, {
          key: 'maintainer',
          name: 'Maintainer',
          description: 'Keeps projects running',
          permissions: ['projects:manage', 'audit:read', 'projects:manage'],
        }).expect(201);
        assert.deepEqual(
          [res.body.key, res.body.name, res.body.description, res.body.permissions],
          ['maintainer', 'Maintainer', 'Keeps projects running', ['audit:read', 'projects:manage']],
        );
        const [event] = await auditEvents(t, 'role.created', res.body.id);
        assert.equal(event.org_id, org.id);
        assert.equal(event.actor_id, admin.user.id);
        assert.deepEqual(event.after.permissions, ['audit:read', 'projects:manage']);
      });

      it('refusals write nothing: unknown permission 400 naming it, bad/built-in key 400, unknown field 400, duplicate 409', async () => {
        const { org, admin } = await orgWithStaff();
        const unknown = await createRole(org.id, admin.auth, { key: 'r1', name: 'R', permissions: ['audit:read', 'coffee:make'] }).expect(400);
        assert.equal(unknown.body.error.code, 'validation.unknown_permission');
        assert.match(unknown.body.error.message, /coffee:make/);
        assert.deepEqual(unknown.body.error.details.unknownPermissions, ['coffee:make']);
        const builtin = await createRole(org.id, admin.auth, { key: 'admin', name: 'A', permissions: [] }).expect(400);
        assert.equal(builtin.body.error.details[0].path, 'key');
        await createRole(org.id, admin.auth, { key: 'Bad Key', name: 'A', permissions: [] }).expect(400);
        await createRole(org.id, admin.auth, { key: 'r2', name: '', permissions: [] }).expect(400);
        await createRole(org.id, admin.auth, { key: 'r2', name: 'R', permissions: 'audit:read' }).expect(400);
        const extra = await createRole(org.id, admin.auth, { key: 'r2', name: 'R', permissions: [], orgId: org.id }).expect(400);
        assert.match(extra.body.error.message, /orgId/);
        await createRole(org.id, admin.auth, { key: 'dup', name: 'D', permissions: [] }).expect(201);
        const dup = await createRole(org.id, admin.auth, { key: 'dup', name: 'D2', permissions: [] }).expect(409);
        assert.equal(dup.body.error.code, 'conflict.roles_org_key_key');
        const created = await t.testDb.db('audit_events').where({ org_id: org.id, action: 'role.created' });
        assert.equal(created.length, 1);
        assert.deepEqual((await t.testDb.db('roles').where({ org_id: org.id })).map((r) => r.key), ['dup']);
        // the same key in another org is fine
        await createRole((await insertOrg(t)).id, t.adminAuth, { key: 'dup', name: 'D', permissions: [] }).expect(201);
      });

      it('a member gets 403, an outsider 404, no auth 401; an admin cannot put permissions it lacks into a role', async () => {
        const { org, admin, member, outsider, owner } = await orgWithStaff();
        const body = { key: 'ops', name: 'Ops', permissions: ['audit:read'] };
        const forbidden = await createRole(org.id, member.auth, body).expect(403);
        assert.equal(forbidden.body.error.details.permission, 'roles:manage');
        await createRole(org.id, outsider.auth, body).expect(404);
        await t.http.post(`/api/v1/orgs/${org.id}/roles`).send(body).expect(401);
        const escalation = await createRole(org.id, admin.auth, { key: 'king', name: 'King', permissions: ['ownership:manage'] }).expect(403);
        assert.equal(escalation.body.error.code, 'forbidden.permission_escalation');
        assert.deepEqual(escalation.body.error.details.permissions, ['ownership:manage']);
        assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id, action: 'role.created' })).length, 0);
        await createRole(org.id, owner.auth, { key: 'king', name: 'King', permissions: ['ownership:manage'] }).expect(201);
      });
    });

    describe('GET /orgs/:orgId/roles', () => {
      it('a viewer lists roles by key, paginated; an outsider gets 404; no auth 401; bad query 400', async () => {
        const { org, outsider } = await orgWithStaff();
        const viewer = await memberWithSession(t, org.id, 'viewer');
        for (const key of ['c-role', 'a-role', 'b-role']) {
          await createRole(org.id, t.adminAuth, { key, name: key, permissions: ['audit:read'] }).expect(201);
        }
        const keys: string[] = [];
        let next: string | null = null;
        do {
          const page: Response = await t.http
            .get(`/api/v1/orgs/${org.id}/roles`)
            .query({ limit: 2, ...(next ? { after: next } : {}) })
            .set('Authorization', viewer.auth)
            .expect(200);
          keys.push(...page.body.data.map((r: { key: string }) => r.key));
          next = page.body.next;
        } while (next);
        assert.deepEqual(keys, ['a-role', 'b-role', 'c-role']);
        const one = await t.http.get(`/api/v1/orgs/${org.id}/roles/b-role`).set('Authorization', viewer.auth).expect(200);
        assert.deepEqual(one.body.permissions, ['audit:read']);
        await t.http.get(`/api/v1/orgs/${org.id}/roles/zzz`).set('Authorization', viewer.auth).expect(404);
        await t.http.get(`/api/v1/orgs/${org.id}/roles`).set('Authorization', outsider.auth).expect(404);
        await t.http.get(`/api/v1/orgs/${org.id}/roles/a-role`).set('Authorization', outsider.auth).expect(404);
        await t.http.get(`/api/v1/orgs/${org.id}/roles`).expect(401);
        await t.http.get(`/api/v1/orgs/${org.id}/roles?limit=x`).set('Authorization', viewer.auth).expect(400);
      });
    });

    describe('PATCH /orgs/:orgId/roles/:roleKey', () => {
      it('updates name, description, permissions (audited before/after); refusals write nothing', async () => {
        const { org, admin, member, outsider } = await orgWithStaff();
        const created = await createRole(org.id, admin.auth, { key: 'dev', name: 'Dev', permissions: ['projects:create'] }).expect(201);
        const url = `/api/v1/orgs/${org.id}/roles/dev`;
        await t.http.patch(url).set('Authorization', admin.auth).send({}).expect(400);
        await t.http.patch(url).set('Authorization', admin.auth).send({ key: 'renamed' }).expect(400);
        const unknown = await t.http.patch(url).set('Authorization', admin.auth).send({ permissions: ['nope:nope'] }).expect(400);
        assert.match(unknown.body.error.message, /nope:nope/);
        await t.http.patch(url).set('Authorization', admin.auth).send({ permissions: ['org:delete'] }).expect(403);
        await t.http.patch(url).set('Authorization', member.auth).send({ name: 'X' }).expect(403);
        await t.http.patch(url).set('Authorization', outsider.auth).send({ name: 'X' }).expect(404);
        await t.http.patch(`/api/v1/orgs/${org.id}/roles/ghost`).set('Authorization', admin.auth).send({ name: 'X' }).expect(404);
        await t.http.patch(url).send({ name: 'X' }).expect(401);
        assert.equal((await auditEvents(t, 'role.updated', created.body.id)).length, 0);

        const res = await t.http
          .patch(url)
          .set('Authorization', admin.auth)
          .send({ name: 'Developer', description: 'Builds', permissions: ['projects:create', 'teams:read'] })
          .expect(200);
        assert.deepEqual([res.body.name, res.body.description, res.body.permissions], ['Developer', 'Builds', ['projects:create', 'teams:read']]);
        const [event] = await auditEvents(t, 'role.updated', created.body.id);
        assert.deepEqual([event.before.name, event.after.name], ['Dev', 'Developer']);
        assert.deepEqual(event.before.permissions, ['projects:create']);
      });
    });

    describe('DELETE /orgs/:orgId/roles/:roleKey', () => {
      it('deletes an unused role (audited); refusals write nothing', async () => {
        const { org, admin, member, outsider } = await orgWithStaff();
        const created = await createRole(org.id, admin.auth, { key: 'temp', name: 'Temp', permissions: [] }).expect(201);
        const url = `/api/v1/orgs/${org.id}/roles/temp`;
        await t.http.delete(url).set('Authorization', member.auth).expect(403);
        await t.http.delete(url).set('Authorization', outsider.auth).expect(404);
        await t.http.delete(url).expect(401);
        await t.http.delete(`${url}?force=yes`).set('Authorization', admin.auth).expect(400);
        assert.equal((await auditEvents(t, 'role.deleted', created.body.id)).length, 0);
        await t.http.delete(url).set('Authorization', admin.auth).expect(204);
        assert.equal(await t.testDb.db('roles').where({ id: created.body.id }).first(), undefined);
        const [event] = await auditEvents(t, 'role.deleted', created.body.id);
        assert.deepEqual(event.before.usage, { members: 0, teams: 0, grants: 0 });
        await t.http.delete(url).set('Authorization', admin.auth).expect(404);
      });

      it('a role in use needs ?force=true (409 with counts); force removes the assignments and audits them', async () => {
        const { org, admin } = await orgWithStaff();
        const db = t.testDb.db;
        const created = await createRole(org.id, admin.auth, { key: 'used', name: 'Used', permissions: ['audit:read'] }).expect(201);
        const roleId = created.body.id as string;
        const u1 = await insertUser(t);
        const u2 = await insertUser(t);
        await addMember(t, org.id, u1.id);
        await addMember(t, org.id, u2.id);
        await t.http.patch(`/api/v1/orgs/${org.id}/members/${u1.id}`).set('Authorization', admin.auth).send({ roles: ['used'] }).expect(200);
        await t.http.patch(`/api/v1/orgs/${org.id}/members/${u2.id}`).set('Authorization', admin.auth).send({ roles: ['used'] }).expect(200);
        const [team] = await db('teams').insert({ org_id: org.id, name: 'eng' }).returning('*');
        await db('team_roles').insert({ org_id: org.id, team_id: team.id, role_id: roleId });
        const [project] = await db('projects').insert({ org_id: org.id, name: 'p' }).returning('*');
        await db('project_grants').insert({ org_id: org.id, project_id: project.id, subject_type: 'role', role_id: roleId, level: 'read' });

        const refused = await t.http.delete(`/api/v1/orgs/${org.id}/roles/used`).set('Authorization', admin.auth).expect(409);
        assert.equal(refused.body.error.code, 'conflict.role_in_use');
        assert.deepEqual(refused.body.error.details, { members: 2, teams: 1, grants: 1 });
        await t.http.delete(`/api/v1/orgs/${org.id}/roles/used?force=false`).set('Authorization', admin.auth).expect(409);
        assert.ok(await db('roles').where({ id: roleId }).first());
        assert.equal((await auditEvents(t, 'role.deleted', roleId)).length, 0);

        await t.http.delete(`/api/v1/orgs/${org.id}/roles/used?force=true`).set('Authorization', admin.auth).expect(204);
        assert.equal(await db('roles').where({ id: roleId }).first(), undefined);
        assert.equal((await db('membership_roles').where({ role_id: roleId })).length, 0);
        assert.equal((await db('team_roles').where({ role_id: roleId })).length, 0);
        assert.equal((await db('project_grants').where({ role_id: roleId })).length, 0);
        assert.ok(await db('memberships').where({ org_id: org.id, user_id: u1.id }).first(), 'members stay');
        const [event] = await auditEvents(t, 'role.deleted', roleId);
        assert.deepEqual(event.before.usage, { members: 2, teams: 1, grants: 1 });
        assert.equal(event.before.key, 'used');
        assert.equal(event.after.force, true);
        const list = await t.http.get(`/api/v1/orgs/${org.id}/members/${u1.id}`).set('Authorization', admin.auth).expect(200);
        assert.deepEqual(list.body.roles, []);
      });
    });
  });
}
