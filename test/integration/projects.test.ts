import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertOrg, insertUser, memberWithSession, sessionAuth } from '../helpers/fixtures.js';
import { addTeamMember, insertGrant, insertProject, insertRole, insertTeam } from '../helpers/projects.js';

type Named = { name: string };
const names = (body: { data: Named[] }) => body.data.map((p) => p.name);

for (const backend of testBackends()) {
  describe(`projects API [${backend}]`, () => {
    let t: TestApp;
    let orgId: string;
    let otherOrgId: string;
    let ownerAuth: string;
    let adminAuth: string;
    let member: { user: { id: string }; auth: string };
    let viewerAuth: string;
    let outsiderAuth: string;
    before(async () => {
      t = await createTestApp(backend);
      const owner = await insertUser(t);
      orgId = (await insertOrg(t, { ownerId: owner.id })).id;
      ownerAuth = await sessionAuth(t, owner.id);
      adminAuth = (await memberWithSession(t, orgId, 'admin')).auth;
      member = await memberWithSession(t, orgId, 'member');
      viewerAuth = (await memberWithSession(t, orgId, 'viewer')).auth;
      const otherOwner = await insertUser(t);
      otherOrgId = (await insertOrg(t, { ownerId: otherOwner.id })).id;
      outsiderAuth = await sessionAuth(t, otherOwner.id);
    });
    after(() => t.close());

    const projectsUrl = (o = orgId) => `/api/v1/orgs/${o}/projects`;

    it('POST by a service token creates the project (audited), no grant', async () => {
      const res = await t.http.post(projectsUrl()).set('Authorization', t.adminAuth).send({ name: 'api', visibility: 'internal', description: 'The API' }).expect(201);
      assert.equal(res.body.name, 'api');
      assert.equal(res.body.visibility, 'internal');
      assert.equal(res.body.description, 'The API');
      assert.equal(res.body.orgId, orgId);
      assert.equal((await auditEvents(t, 'project.created', res.body.id)).length, 1);
      assert.equal((await t.testDb.db('project_grants').where({ project_id: res.body.id })).length, 0);
    });

    it('POST by a member (projects:create) makes the creator project admin', async () => {
      const res = await t.http.post(projectsUrl()).set('Authorization', member.auth).send({ name: 'mine', visibility: 'private' }).expect(201);
      const grants = await t.testDb.db('project_grants').where({ project_id: res.body.id });
      assert.equal(grants.length, 1);
      assert.equal(grants[0].user_id, member.user.id);
      assert.equal(grants[0].level, 'admin');
      assert.equal((await auditEvents(t, 'project.grant_created', grants[0].id)).length, 1);
      // and so the creator can manage it
      await t.http.patch(`${projectsUrl()}/${res.body.id}`).set('Authorization', member.auth).send({ name: 'mine-2' }).expect(200);
    });

    it('POST: bad input 400, no auth 401, viewer 403, outsider 404; nothing written', async () => {
      const before = (await auditEvents(t, 'project.created')).length;
      const bad = await t.http.post(projectsUrl()).set('Authorization', ownerAuth).send({ name: 'x', visibility: 'secret' }).expect(400);
      assert.ok(bad.body.error.details.some((d: { path: string }) => d.path === 'visibility'));
      await t.http.post(projectsUrl()).set('Authorization', ownerAuth).send({ visibility: 'private' }).expect(400);
      await t.http.post(projectsUrl()).send({ name: 'x', visibility: 'private' }).expect(401);
      const denied = await t.http.post(projectsUrl()).set('Authorization', viewerAuth).send({ name: 'x', visibility: 'private' }).expect(403);
      assert.equal(denied.body.error.code, 'forbidden');
      await t.http.post(projectsUrl()).set('Authorization', outsiderAuth).send({ name: 'x', visibility: 'private' }).expect(404);
      assert.equal((await auditEvents(t, 'project.created')).length, before);
    });

    it('GET list: service/manage see all, a member only what it can read; paginated', async () => {
      const owner = await insertUser(t);
      const org = await insertOrg(t, { ownerId: owner.id });
      const ownerSession = await sessionAuth(t, owner.id);
      const { user: m, auth: mAuth } = await memberWithSession(t, org.id, 'member');
      await insertProject(t, org.id, { name: 'a-private' });
      await insertProject(t, org.id, { name: 'b-internal', visibility: 'internal' });
      const granted = await insertProject(t, org.id, { name: 'c-granted' });
      await insertGrant(t, org.id, granted.id, { user_id: m.id }, 'read');
      await insertProject(t, org.id, { name: 'D-public', visibility: 'public' });
      await insertProject(t, otherOrgId, { name: 'elsewhere' });

      const all = await t.http.get(projectsUrl(org.id)).set('Authorization', t.adminAuth).expect(200);
      assert.deepEqual(names(all.body), ['a-private', 'b-internal', 'c-granted', 'D-public']);
      const asOwner = await t.http.get(projectsUrl(org.id)).set('Authorization', ownerSession).expect(200);
      assert.equal(asOwner.body.data.length, 4);
      const asMember = await t.http.get(projectsUrl(org.id)).set('Authorization', mAuth).expect(200);
      assert.deepEqual(names(asMember.body), ['b-internal', 'c-granted', 'D-public']);

      const p1 = await t.http.get(projectsUrl(org.id)).query({ limit: 2 }).set('Authorization', mAuth).expect(200);
      assert.deepEqual(names(p1.body), ['b-internal', 'c-granted']);
      const p2 = await t.http.get(projectsUrl(org.id)).query({ limit: 2, after: p1.body.next }).set('Authorization', mAuth).expect(200);
      assert.deepEqual(names(p2.body), ['D-public']);
      assert.equal(p2.body.next, null);

      await t.http.get(projectsUrl(org.id)).query({ limit: 0 }).set('Authorization', mAuth).expect(400);
      await t.http.get(projectsUrl(org.id)).expect(401);
      await t.http.get(projectsUrl(org.id)).set('Authorization', outsiderAuth).expect(404);
    });

    it('GET one: readable 200; unreadable private 404; another org 404', async () => {
      const internal = await insertProject(t, orgId, { visibility: 'internal' });
      const hidden = await insertProject(t, orgId);
      const foreign = await insertProject(t, otherOrgId);
      const got = await t.http.get(`${projectsUrl()}/${internal.id}`).set('Authorization', viewerAuth).expect(200);
      assert.equal(got.body.id, internal.id);
      await t.http.get(`${projectsUrl()}/${hidden.id}`).set('Authorization', viewerAuth).expect(404);
      await t.http.get(`${projectsUrl()}/${hidden.id}`).set('Authorization', adminAuth).expect(200);
      await t.http.get(`${projectsUrl()}/${foreign.id}`).set('Authorization', t.adminAuth).expect(404);
      await t.http.get(`${projectsUrl()}/nope`).set('Authorization', t.adminAuth).expect(404);
      await t.http.get(`${projectsUrl()}/${internal.id}`).expect(401);
      await t.http.get(`${projectsUrl()}/${internal.id}`).set('Authorization', outsiderAuth).expect(404);
    });

    it('PATCH: projects:manage or project admin; write access 403, no access 404; audited', async () => {
      const project = await insertProject(t, orgId, { name: 'patch-me', visibility: 'internal' });
      const url = `${projectsUrl()}/${project.id}`;
      const res = await t.http.patch(url).set('Authorization', adminAuth).send({ name: 'patched', visibility: 'public' }).expect(200);
      assert.equal(res.body.name, 'patched');
      assert.equal(res.body.visibility, 'public');
      const events = await auditEvents(t, 'project.updated', project.id);
      assert.equal(events.length, 1);
      assert.equal(events[0].before.name, 'patch-me');
      assert.equal(events[0].after.name, 'patched');

      const { user: writer, auth: writerAuth } = await memberWithSession(t, orgId, 'member');
      await insertGrant(t, orgId, project.id, { user_id: writer.id }, 'write');
      const denied = await t.http.patch(url).set('Authorization', writerAuth).send({ name: 'x' }).expect(403);
      assert.equal(denied.body.error.code, 'forbidden');
      // project admin through a team
      const { user: lead, auth: leadAuth } = await memberWithSession(t, orgId, 'member');
      const team = await insertTeam(t, orgId);
      await addTeamMember(t, orgId, team.id, lead.id);
      await insertGrant(t, orgId, project.id, { team_id: team.id }, 'admin');
      await t.http.patch(url).set('Authorization', leadAuth).send({ description: 'by the lead' }).expect(200);

      const hidden = await insertProject(t, orgId);
      await t.http.patch(`${projectsUrl()}/${hidden.id}`).set('Authorization', writerAuth).send({ name: 'x' }).expect(404);
      await t.http.patch(url).set('Authorization', adminAuth).send({ visibility: 'secret' }).expect(400);
      await t.http.patch(url).set('Authorization', adminAuth).send({}).expect(400);
      await t.http.patch(url).send({ name: 'x' }).expect(401);
      await t.http.patch(url).set('Authorization', outsiderAuth).send({ name: 'x' }).expect(404);
      const foreign = await insertProject(t, otherOrgId);
      await t.http.patch(`${projectsUrl()}/${foreign.id}`).set('Authorization', t.adminAuth).send({ name: 'x' }).expect(404);
      assert.equal((await auditEvents(t, 'project.updated', project.id)).length, 2);
    });

    it('DELETE: refused with grants unless ?force=true; audited; permissions', async () => {
      const project = await insertProject(t, orgId);
      const u = await insertUser(t);
      await insertGrant(t, orgId, project.id, { user_id: u.id }, 'read');
      const url = `${projectsUrl()}/${project.id}`;
      const refused = await t.http.delete(url).set('Authorization', adminAuth).expect(409);
      assert.equal(refused.body.error.code, 'conflict.project_has_grants');
      assert.equal(refused.body.error.details.grantCount, 1);
      await t.http.delete(url).query({ force: 'yes' }).set('Authorization', adminAuth).expect(400);
      await t.http.delete(url).expect(401);
      await t.http.delete(url).set('Authorization', member.auth).expect(404);
      await t.http.delete(url).set('Authorization', outsiderAuth).expect(404);
      assert.equal((await auditEvents(t, 'project.deleted', project.id)).length, 0);

      await t.http.delete(url).query({ force: 'true' }).set('Authorization', adminAuth).expect(204);
      assert.equal(await t.testDb.db('projects').where({ id: project.id }).first(), undefined);
      assert.equal((await t.testDb.db('project_grants').where({ project_id: project.id })).length, 0);
      const events = await auditEvents(t, 'project.deleted', project.id);
      assert.equal(events.length, 1);
      assert.equal(events[0].before.grantCount, 1);

      const bare = await insertProject(t, orgId);
      await t.http.delete(`${projectsUrl()}/${bare.id}`).set('Authorization', t.adminAuth).expect(204);
      const foreign = await insertProject(t, otherOrgId);
      await t.http.delete(`${projectsUrl()}/${foreign.id}`).set('Authorization', t.adminAuth).expect(404);
      assert.ok(await t.testDb.db('projects').where({ id: foreign.id }).first());
    });

    it('grants: every subject kind, outside collaborator listed as external, duplicates 409', async () => {
      const project = await insertProject(t, orgId, { name: 'granted' });
      const url = `${projectsUrl()}/${project.id}/grants`;
      const team = await insertTeam(t, orgId, { name: 'eng' });
      await insertRole(t, orgId, 'maintainer');
      const inOrg = await insertUser(t);
      await addMember(t, orgId, inOrg.id);
      const outside = await insertUser(t, { name: 'Contractor' });

      const post = (subject: { type: string; id: string }, level = 'read') =>
        t.http.post(url).set('Authorization', adminAuth).send({ subject, level });
      const g1 = (await post({ type: 'user', id: inOrg.id }, 'write').expect(201)).body;
      assert.equal(g1.external, false);
      assert.deepEqual(g1.subject.type, 'user');
      assert.equal(g1.level, 'write');
      const g2 = (await post({ type: 'user', id: outside.id }).expect(201)).body;
      assert.equal(g2.external, true);
      assert.equal(g2.subject.name, 'Contractor');
      const g3 = (await post({ type: 'team', id: team.id }).expect(201)).body;
      assert.deepEqual(g3.subject, { type: 'team', id: team.id, name: 'eng' });
      const g4 = (await post({ type: 'role', id: 'maintainer' }, 'admin').expect(201)).body;
      assert.deepEqual(g4.subject, { type: 'role', id: 'maintainer', builtin: false, name: 'maintainer' });
      const g5 = (await post({ type: 'role', id: 'viewer' }).expect(201)).body;
      assert.deepEqual(g5.subject, { type: 'role', id: 'viewer', builtin: true, name: 'viewer' });
      assert.equal((await auditEvents(t, 'project.grant_created', g4.id)).length, 1);

      for (const subject of [
        { type: 'user', id: inOrg.id },
        { type: 'team', id: team.id },
        { type: 'role', id: 'maintainer' },
        { type: 'role', id: 'viewer' },
      ]) {
        const dup = await post(subject).expect(409);
        assert.equal(dup.body.error.code, 'conflict.grant_exists');
      }

      const list = await t.http.get(url).set('Authorization', adminAuth).expect(200);
      assert.equal(list.body.data.length, 5);
      const external = list.body.data.filter((g: { external: boolean }) => g.external);
      assert.deepEqual(external.map((g: { id: string }) => g.id), [g2.id]);

      // the outside collaborator reaches this project, and only it
      const access = await t.http.get(`/api/v1/orgs/${orgId}/projects/${project.id}/access/${outside.id}`).set('Authorization', t.adminAuth).expect(200);
      assert.equal(access.body.level, 'read');
      const visible = await t.http.get(`/api/v1/orgs/${orgId}/users/${outside.id}/projects`).set('Authorization', await sessionAuth(t, outside.id)).expect(200);
      assert.deepEqual(names(visible.body), ['granted']);
      assert.equal(visible.body.data[0].level, 'read');
      assert.deepEqual(visible.body.data[0].reasons, [{ source: 'direct', grantId: g2.id, level: 'read', external: true }]);
    });

    it('grants: unknown subjects are a 400 naming them; bad input; permissions', async () => {
      const project = await insertProject(t, orgId);
      const url = `${projectsUrl()}/${project.id}/grants`;
      const foreignTeam = await insertTeam(t, otherOrgId);
      await insertRole(t, otherOrgId, 'only-there');
      for (const subject of [
        { type: 'user', id: randomUUID() },
        { type: 'user', id: 'nope' },
        { type: 'team', id: foreignTeam.id },
        { type: 'role', id: 'only-there' },
      ]) {
        const res = await t.http.post(url).set('Authorization', adminAuth).send({ subject, level: 'read' }).expect(400);
        assert.equal(res.body.error.code, 'validation.unknown_subject');
        assert.match(res.body.error.message, new RegExp(subject.id));
      }
      await t.http.post(url).set('Authorization', adminAuth).send({ subject: { type: 'group', id: 'x' }, level: 'read' }).expect(400);
      await t.http.post(url).set('Authorization', adminAuth).send({ subject: { type: 'user', id: member.user.id }, level: 'owner' }).expect(400);
      await t.http.post(url).send({ subject: { type: 'user', id: member.user.id }, level: 'read' }).expect(401);
      await t.http.post(url).set('Authorization', member.auth).send({ subject: { type: 'user', id: member.user.id }, level: 'read' }).expect(404);
      await t.http.post(url).set('Authorization', outsiderAuth).send({ subject: { type: 'user', id: member.user.id }, level: 'read' }).expect(404);
      const readable = await insertProject(t, orgId, { visibility: 'internal' });
      const forbidden = await t.http
        .post(`${projectsUrl()}/${readable.id}/grants`)
        .set('Authorization', member.auth)
        .send({ subject: { type: 'user', id: member.user.id }, level: 'admin' })
        .expect(403);
      assert.equal(forbidden.body.error.code, 'forbidden');
      await t.http.get(`${projectsUrl()}/${readable.id}/grants`).set('Authorization', member.auth).expect(403);
      await t.http.get(url).expect(401);
      assert.equal((await t.testDb.db('project_grants').where({ project_id: project.id })).length, 0);
      assert.equal((await t.testDb.db('audit_events').where({ action: 'project.grant_created' }).whereRaw(`after->>'projectId' = ?`, [project.id])).length, 0);
    });

    it('grants: PATCH level and DELETE (audited); another project’s grant is 404', async () => {
      const project = await insertProject(t, orgId);
      const other = await insertProject(t, orgId);
      const foreignProject = await insertProject(t, otherOrgId);
      const u = await insertUser(t);
      const grant = await insertGrant(t, orgId, project.id, { user_id: u.id }, 'read');
      const foreignGrant = await insertGrant(t, otherOrgId, foreignProject.id, { user_id: u.id }, 'read');
      const url = `${projectsUrl()}/${project.id}/grants/${grant.id}`;

      const res = await t.http.patch(url).set('Authorization', adminAuth).send({ level: 'admin' }).expect(200);
      assert.equal(res.body.level, 'admin');
      const events = await auditEvents(t, 'project.grant_updated', grant.id);
      assert.equal(events.length, 1);
      assert.equal(events[0].before.level, 'read');
      assert.equal(events[0].after.level, 'admin');
      await t.http.patch(url).set('Authorization', adminAuth).send({ level: 'root' }).expect(400);
      await t.http.patch(url).set('Authorization', adminAuth).send({ level: 'read', extra: true }).expect(400);
      await t.http.patch(url).send({ level: 'read' }).expect(401);
      await t.http.patch(url).set('Authorization', viewerAuth).send({ level: 'read' }).expect(404);
      await t.http.patch(`${projectsUrl()}/${other.id}/grants/${grant.id}`).set('Authorization', adminAuth).send({ level: 'read' }).expect(404);
      await t.http.patch(`${projectsUrl()}/${foreignProject.id}/grants/${foreignGrant.id}`).set('Authorization', t.adminAuth).send({ level: 'admin' }).expect(404);
      await t.http.delete(`${projectsUrl()}/${project.id}/grants/${foreignGrant.id}`).set('Authorization', t.adminAuth).expect(404);

      await t.http.delete(url).set('Authorization', outsiderAuth).expect(404);
      await t.http.delete(url).set('Authorization', adminAuth).expect(204);
      await t.http.delete(url).set('Authorization', adminAuth).expect(404);
      assert.equal((await auditEvents(t, 'project.grant_deleted', grant.id)).length, 1);
      assert.equal((await t.testDb.db('project_grants').where({ id: foreignGrant.id })).length, 1);
    });

    it("GET /orgs/:orgId/users/:userId/projects: levels and reasons; self, viewers, outsiders", async () => {
      const owner = await insertUser(t);
      const org = await insertOrg(t, { ownerId: owner.id });
      const { user: dev, auth: devAuth } = await memberWithSession(t, org.id, 'member');
      const { auth: viewer } = await memberWithSession(t, org.id, 'viewer');
      const team = await insertTeam(t, org.id, { name: 'eng' });
      await addTeamMember(t, org.id, team.id, dev.id);
      const a = await insertProject(t, org.id, { name: 'alpha', visibility: 'internal' });
      const b = await insertProject(t, org.id, { name: 'beta' });
      await insertProject(t, org.id, { name: 'gamma' });
      await insertGrant(t, org.id, b.id, { team_id: team.id }, 'write');
      await insertGrant(t, org.id, a.id, { user_id: dev.id }, 'admin');

      const url = `/api/v1/orgs/${org.id}/users/${dev.id}/projects`;
      const res = await t.http.get(url).set('Authorization', viewer).expect(200);
      assert.deepEqual(
        res.body.data.map((p: { name: string; level: string; reasons: { source: string }[] }) => [p.name, p.level, p.reasons.map((r) => r.source).sort()]),
        [
          ['alpha', 'admin', ['direct', 'visibility']],
          ['beta', 'write', ['team']],
        ],
      );
      const self = await t.http.get(url).query({ limit: 1 }).set('Authorization', devAuth).expect(200);
      assert.deepEqual(names(self.body), ['alpha']);
      const next = await t.http.get(url).query({ limit: 1, after: self.body.next }).set('Authorization', devAuth).expect(200);
      assert.deepEqual(names(next.body), ['beta']);
      assert.equal(next.body.next, null);

      await t.http.get(url).query({ sessionId: 'bad' }).set('Authorization', viewer).expect(400);
      await t.http.get(url).expect(401);
      await t.http.get(url).set('Authorization', outsiderAuth).expect(404);
      await t.http.get(`/api/v1/orgs/${randomUUID()}/users/${dev.id}/projects`).set('Authorization', t.adminAuth).expect(404);
      await t.http.get(`/api/v1/orgs/${org.id}/users/nope/projects`).set('Authorization', t.adminAuth).expect(404);
    });
  });
}
