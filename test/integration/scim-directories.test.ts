import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { auditEvents, insertOrg, insertUser, memberWithSession } from '../helpers/fixtures.js';
import { hashToken } from '../../src/auth/tokens.js';

for (const backend of testBackends()) {
  describe(`SCIM directories admin API [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());
    const url = (orgId: string, rest = '') => `/api/v1/orgs/${orgId}/scim-directories${rest}`;

    it('create returns id, scimBaseUrl and the token once; only its hash is stored; audited', async () => {
      const org = await insertOrg(t);
      const res = await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send({ name: 'Okta', defaultRole: 'viewer', groupRoleMappings: [{ group: 'Admins', role: 'admin' }] });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.match(res.body.token, /^scim_[A-Za-z0-9_-]{43}$/);
      assert.equal(res.body.scimBaseUrl, `http://sp.test/scim/v2/${res.body.id}`);
      assert.deepEqual([res.body.defaultRole, res.body.groupRoleMappings], ['viewer', [{ group: 'Admins', role: 'admin' }]]);
      const row = await t.testDb.db('scim_directories').where({ id: res.body.id }).first();
      assert.equal(row.token_hash, hashToken(res.body.token));
      const got = await t.http.get(url(org.id, `/${res.body.id}`)).set('Authorization', t.adminAuth);
      assert.equal(got.status, 200);
      assert.equal(got.body.token, undefined);
      assert.equal(JSON.stringify(got.body).includes(row.token_hash), false);
      const events = await auditEvents(t, 'scim_directory.create', res.body.id);
      assert.equal(events.length, 1);
      assert.equal(JSON.stringify(events[0]).includes(row.token_hash), false, 'the audit log never holds the hash');
    });

    it('list pages with a cursor; update; rotate; delete', async () => {
      const org = await insertOrg(t);
      const ids: string[] = [];
      for (const name of ['a', 'b', 'c']) ids.push((await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send({ name })).body.id);
      const first = await t.http.get(`${url(org.id)}?limit=2`).set('Authorization', t.adminAuth);
      assert.deepEqual(first.body.data.map((d: { name: string }) => d.name), ['a', 'b']);
      const second = await t.http.get(`${url(org.id)}?limit=2&after=${first.body.next}`).set('Authorization', t.adminAuth);
      assert.deepEqual([second.body.data.map((d: { name: string }) => d.name), second.body.next], [['c'], null]);

      const upd = await t.http.patch(url(org.id, `/${ids[0]}`)).set('Authorization', t.adminAuth).send({ name: 'renamed', enabled: false });
      assert.deepEqual([upd.status, upd.body.name, upd.body.enabled], [200, 'renamed', false]);
      const rot = await t.http.post(url(org.id, `/${ids[0]}/rotate-token`)).set('Authorization', t.adminAuth);
      assert.equal(rot.status, 200);
      assert.equal((await t.testDb.db('scim_directories').where({ id: ids[0] }).first()).token_hash, hashToken(rot.body.token));
      assert.equal((await auditEvents(t, 'scim_directory.rotate_token', ids[0])).length, 1);
      const del = await t.http.delete(url(org.id, `/${ids[0]}`)).set('Authorization', t.adminAuth);
      assert.equal(del.status, 204);
      assert.equal((await t.http.get(url(org.id, `/${ids[0]}`)).set('Authorization', t.adminAuth)).status, 404);
      assert.equal((await auditEvents(t, 'scim_directory.delete', ids[0])).length, 1);
    });

    it('bad input is 400 with field paths and writes nothing', async () => {
      const org = await insertOrg(t);
      for (const body of [{}, { name: '' }, { name: 'x', defaultRole: 'owner' }, { name: 'x', extra: 1 }, { name: 'x', groupRoleMappings: [{ group: 'g' }] }]) {
        const res = await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.error.code, 'validation.failed');
      }
      const unknownRole = await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send({ name: 'x', groupRoleMappings: [{ group: 'g', role: 'ghost' }] });
      assert.deepEqual([unknownRole.status, unknownRole.body.error.code], [400, 'validation.unknown_role']);
      assert.equal((await t.testDb.db('scim_directories').where({ org_id: org.id })).length, 0);
      assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id })).length, 0);
      const dir = (await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send({ name: 'ok' })).body.id;
      assert.equal((await t.http.patch(url(org.id, `/${dir}`)).set('Authorization', t.adminAuth).send({})).status, 400);
      assert.equal((await t.http.get(`${url(org.id)}?after=garbage`).set('Authorization', t.adminAuth)).status, 400);
    });

    it('401 without auth, 403 without scim:manage, 404 for another org or an unknown id', async () => {
      const org = await insertOrg(t);
      const dir = (await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send({ name: 'mine' })).body.id as string;
      assert.equal((await t.http.get(url(org.id))).status, 401);
      assert.equal((await t.http.post(url(org.id)).send({ name: 'x' })).status, 401);

      const { auth: memberAuth } = await memberWithSession(t, org.id, 'member');
      for (const [method, path] of [['get', ''], ['post', ''], ['get', `/${dir}`], ['patch', `/${dir}`], ['delete', `/${dir}`], ['post', `/${dir}/rotate-token`]] as const) {
        const res = await t.http[method](url(org.id, path)).set('Authorization', memberAuth).send({ name: 'x' });
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.equal(res.body.error.code, 'forbidden');
      }
      const { auth: adminAuth } = await memberWithSession(t, org.id, 'admin');
      assert.equal((await t.http.get(url(org.id)).set('Authorization', adminAuth)).status, 200, 'admins hold scim:manage');

      const otherOrg = await insertOrg(t);
      const { auth: outsider } = await memberWithSession(t, otherOrg.id, 'owner');
      assert.equal((await t.http.get(url(org.id)).set('Authorization', outsider)).status, 404);
      assert.equal((await t.http.get(url(otherOrg.id, `/${dir}`)).set('Authorization', outsider)).status, 404, "another org's directory id");
      assert.equal((await t.http.post(url(otherOrg.id, `/${dir}/rotate-token`)).set('Authorization', outsider)).status, 404);
      assert.equal((await t.http.get(url(org.id, '/not-a-uuid')).set('Authorization', t.adminAuth)).status, 404);
      assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id }).whereNot({ action: 'scim_directory.create' })).length, 0, 'refused requests write nothing');
      void insertUser;
    });
  });
}
