import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, insertOrg, insertUser, sessionAuth } from '../helpers/fixtures.js';
import { mfaState } from '../../src/services/authz.js';

for (const backend of testBackends()) {
  describe(`sessions and org access resolution [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('POST /sessions needs a service token and a known user; amr claims of sso/otp are refused', async () => {
      const user = await insertUser(t);
      await t.http.post('/api/v1/sessions').send({ userId: user.id, amr: ['pwd'] }).expect(401);
      await t.http.post('/api/v1/sessions').set('Authorization', t.adminAuth).send({ userId: user.id, amr: ['sso'] }).expect(400);
      await t.http.post('/api/v1/sessions').set('Authorization', t.adminAuth).send({ userId: user.id, amr: [] }).expect(400);
      await t.http
        .post('/api/v1/sessions')
        .set('Authorization', t.adminAuth)
        .send({ userId: '00000000-0000-4000-8000-000000000000', amr: ['pwd'] })
        .expect(404);
      const auth = await sessionAuth(t, user.id);
      // a session token is not a service token
      const res = await t.http.post('/api/v1/sessions').set('Authorization', auth).send({ userId: user.id, amr: ['pwd'] }).expect(403);
      assert.equal(res.body.error.code, 'auth.service_token_required');
    });

    it('a revoked, expired or suspended-user session is refused', async () => {
      const user = await insertUser(t);
      const auth = await sessionAuth(t, user.id);
      const probe = () => t.http.post('/api/v1/sessions').set('Authorization', auth).send({});
      await probe().expect(403); // authenticated, just not allowed
      await t.testDb.db('users').where({ id: user.id }).update({ status: 'suspended' });
      await probe().expect(401);
      await t.testDb.db('users').where({ id: user.id }).update({ status: 'active' });
      await t.testDb.db('sessions').where({ user_id: user.id }).update({ expires_at: new Date(Date.now() - 1000) });
      await probe().expect(401);
      await t.testDb.db('sessions').where({ user_id: user.id }).update({ expires_at: new Date(Date.now() + 60_000), revoked_at: new Date() });
      await probe().expect(401);
    });

    it('resolveOrg: non-member and unknown org are 404; suspended is 403; custom role and team role permissions add up', async () => {
      const owner = await insertUser(t);
      const org = await insertOrg(t, { ownerId: owner.id });
      const outsider = await insertUser(t);
      const viewer = await insertUser(t);
      await addMember(t, org.id, viewer.id, 'viewer');
      const authz = t.ctx.services.authz;
      const userP = (userId: string) => ({ kind: 'user' as const, sessionId: 'x', userId, amr: ['pwd'], ssoOrgId: null });

      await assert.rejects(authz.resolveOrg(userP(outsider.id), org.id), { status: 404 });
      await assert.rejects(authz.resolveOrg(userP(owner.id), 'not-a-uuid'), { status: 404 });
      await assert.rejects(authz.requireOrg(userP(viewer.id), org.id, 'audit:read'), { status: 403, code: 'forbidden' });

      const [role] = await t.testDb.db('roles').insert({ org_id: org.id, key: 'auditor', name: 'Auditor', permissions: ['audit:read'] }).returning('*');
      const [role2] = await t.testDb.db('roles').insert({ org_id: org.id, key: 'sso', name: 'SSO', permissions: ['sso:manage'] }).returning('*');
      await t.testDb.db('membership_roles').insert({ org_id: org.id, user_id: viewer.id, role_id: role.id });
      const [team] = await t.testDb.db('teams').insert({ org_id: org.id, name: 'sec' }).returning('*');
      await t.testDb.db('team_members').insert({ org_id: org.id, team_id: team.id, user_id: viewer.id });
      await t.testDb.db('team_roles').insert({ org_id: org.id, team_id: team.id, role_id: role2.id });
      const access = await authz.requireOrg(userP(viewer.id), org.id, 'audit:read');
      assert.ok(access.permissions.has('sso:manage'));
      assert.ok(!access.permissions.has('members:manage'));

      await t.testDb.db('memberships').where({ org_id: org.id, user_id: viewer.id }).update({ status: 'suspended' });
      await assert.rejects(authz.resolveOrg(userP(viewer.id), org.id), { status: 403, code: 'membership.suspended' });
    });
  });
}

describe('mfaState', () => {
  const org = { mfa_required: true, mfa_grace_period_hours: null, mfa_required_since: null };
  it('covers policy off, otp, sso of this org only, enrolled, grace period', () => {
    assert.equal(mfaState({ amr: ['pwd'], ssoOrgId: null }, 'o1', { ...org, mfa_required: false }, false), 'satisfied');
    assert.equal(mfaState({ amr: ['pwd', 'otp'], ssoOrgId: null }, 'o1', org, true), 'satisfied');
    assert.equal(mfaState({ amr: ['sso'], ssoOrgId: 'o1' }, 'o1', org, false), 'satisfied');
    assert.equal(mfaState({ amr: ['sso'], ssoOrgId: 'o2' }, 'o1', org, false), 'enroll_required');
    assert.equal(mfaState({ amr: ['pwd'], ssoOrgId: null }, 'o1', org, true), 'verify_required');
    const since = new Date(Date.now() - 3_600_000);
    assert.equal(mfaState({ amr: ['pwd'], ssoOrgId: null }, 'o1', { ...org, mfa_grace_period_hours: 2, mfa_required_since: since }, false), 'satisfied');
    assert.equal(mfaState({ amr: ['pwd'], ssoOrgId: null }, 'o1', { ...org, mfa_grace_period_hours: 1, mfa_required_since: new Date(Date.now() - 7_200_000) }, false), 'enroll_required');
  });
});
