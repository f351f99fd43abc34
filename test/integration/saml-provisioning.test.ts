import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertOrg, insertUser, sessionAuth } from '../helpers/fixtures.js';
import { ENTRA_EMAIL } from '../helpers/idp.js';
import { codeFrom, failureReasons, postAcs, RETURN_URL, samlSetup, signedResponse, type SamlSetup } from '../helpers/saml-fixtures.js';

const OBJECT_ID = 'http://schemas.microsoft.com/identity/claims/objectidentifier';

for (const backend of testBackends()) {
  describe(`SAML sign-in: who may sign in [${backend}]`, () => {
    let t: TestApp;
    let s: SamlSetup;
    let n = 0;
    const email = (domain = s.domain) => `p${++n}-${Date.now().toString(36)}@${domain}`;

    /** ACS + code exchange → the session token and body. */
    async function signIn(setup: SamlSetup, address: string, extra = {}) {
      const res = await postAcs(t, setup.connection.id, signedResponse(setup, address, extra).base64).expect(302);
      const ex = await t.http.post('/api/v1/sso/token').set('Authorization', t.adminAuth).send({ code: codeFrom(res.headers.location) }).expect(200);
      return ex.body as { token: string; user: { id: string }; session: { amr: string[] } };
    }
    async function refusedWith(setup: SamlSetup, address: string, status: number, code: string, extra = {}) {
      const res = await postAcs(t, setup.connection.id, signedResponse(setup, address, extra).base64);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.equal(res.body.error.code, code);
      assert.equal((await failureReasons(t, setup.connection.id)).at(-1), code);
      assert.equal((await t.testDb.db('sessions').where({ sso_connection_id: setup.connection.id }).join('users', 'users.id', 'sessions.user_id').whereRaw('lower(users.email) = ?', [address.toLowerCase()])).length, 0, 'no session');
    }
    async function scimDirectory(orgId: string) {
      const [dir] = await t.testDb.db('scim_directories').insert({ org_id: orgId, name: 'Entra', token_hash: createHash('sha256').update(String(Math.random())).digest('hex') }).returning('*');
      return dir as { id: string };
    }

    before(async () => {
      t = await createTestApp(backend);
      s = await samlSetup(t);
    });
    after(() => t.close());

    it('an email domain the org has not verified is refused (403), audited, nothing created', async () => {
      const other = await samlSetup(t); // another org verified this domain
      const foreign = email(other.domain);
      await refusedWith(s, foreign, 403, 'domain_not_verified');
      await refusedWith(s, `someone@unverified-${n}.example.org`, 403, 'domain_not_verified');
      assert.equal(await t.testDb.db('users').where({ email: foreign }).first(), undefined);
      const failed = (await auditEvents(t, 'sso.sign_in_failed', s.connection.id)).at(-1);
      assert.equal(failed.org_id, s.org.id);
      assert.equal(failed.actor_type, 'sso_connection');
    });

    it('an existing member signs in without any change to role or source; a suspended member or user is refused', async () => {
      const admin = await insertUser(t, { email: email() });
      await addMember(t, s.org.id, admin.id, 'admin');
      const body = await signIn(s, admin.email.toUpperCase());
      assert.equal(body.user.id, admin.id);
      const m = await t.testDb.db('memberships').where({ org_id: s.org.id, user_id: admin.id }).first();
      assert.deepEqual([m.role, m.source], ['admin', 'manual']);

      const suspended = await insertUser(t, { email: email() });
      await addMember(t, s.org.id, suspended.id, 'member', { status: 'suspended' });
      await refusedWith(s, suspended.email, 403, 'suspended');
      assert.equal((await t.testDb.db('memberships').where({ org_id: s.org.id, user_id: suspended.id }).first()).status, 'suspended');

      const blocked = await insertUser(t, { email: email(), status: 'suspended' });
      await refusedWith(s, blocked.email, 403, 'suspended');
      assert.equal(await t.testDb.db('memberships').where({ org_id: s.org.id, user_id: blocked.id }).first(), undefined);
    });

    it('JIT off: a new user is "not provisioned" and nothing is created; domain capture then admits with its role', async () => {
      const strict = await samlSetup(t, { connection: { jitEnabled: false } });
      const newcomer = email(strict.domain);
      await refusedWith(strict, newcomer, 403, 'not_provisioned');
      assert.equal(await t.testDb.db('users').where({ email: newcomer }).first(), undefined);

      await t.http
        .patch(`/api/v1/orgs/${strict.org.id}/domains/${strict.domain}`)
        .set('Authorization', t.adminAuth)
        .send({ captureEnabled: true, captureRole: 'viewer' })
        .expect(200);
      const body = await signIn(strict, newcomer);
      const m = await t.testDb.db('memberships').where({ org_id: strict.org.id, user_id: body.user.id }).first();
      assert.deepEqual([m.role, m.source, m.status], ['viewer', 'domain_capture', 'active']);
      assert.equal((await auditEvents(t, 'member.added', body.user.id)).length, 1);
    });

    it('JIT uses the connection default role; an existing global user joins without a duplicate account', async () => {
      const setup = await samlSetup(t, { connection: { defaultRole: 'viewer' } });
      const existing = await insertUser(t, { email: email(setup.domain) });
      const body = await signIn(setup, existing.email);
      assert.equal(body.user.id, existing.id);
      assert.equal((await t.testDb.db('users').whereRaw('lower(email) = ?', [existing.email]).count('* as c').first().then((r) => Number(r!.c))), 1);
      const m = await t.testDb.db('memberships').where({ org_id: setup.org.id, user_id: existing.id }).first();
      assert.deepEqual([m.role, m.source], ['viewer', 'sso_jit']);
    });

    it('SCIM-provisioned user: linked by externalId (even with another email), never duplicated, role left alone', async () => {
      const dir = await scimDirectory(s.org.id);
      const user = await insertUser(t, { email: email() });
      await addMember(t, s.org.id, user.id, 'admin', { source: 'scim' });
      await t.testDb.db('scim_users').insert({ org_id: s.org.id, directory_id: dir.id, user_id: user.id, user_name: user.email, external_id: 'entra-oid-1', active: true });
      const alias = email(); // the IdP now sends another address of the same domain
      const body = await signIn(s, alias, { attributes: { [ENTRA_EMAIL]: alias, [OBJECT_ID]: 'entra-oid-1' } });
      assert.equal(body.user.id, user.id);
      assert.equal(await t.testDb.db('users').where({ email: alias }).first(), undefined, 'no duplicate account');
      const m = await t.testDb.db('memberships').where({ org_id: s.org.id, user_id: user.id }).first();
      assert.deepEqual([m.role, m.source, m.status], ['admin', 'scim', 'active']);
    });

    it('the directory is the authority: SCIM-suspended stays suspended, SCIM-removed is not re-created', async () => {
      const dir = await scimDirectory(s.org.id);
      const suspended = await insertUser(t, { email: email() });
      await addMember(t, s.org.id, suspended.id, 'member', { source: 'scim', status: 'suspended' });
      await t.testDb.db('scim_users').insert({ org_id: s.org.id, directory_id: dir.id, user_id: suspended.id, user_name: suspended.email, active: false });
      await refusedWith(s, suspended.email, 403, 'suspended');
      const m = await t.testDb.db('memberships').where({ org_id: s.org.id, user_id: suspended.id }).first();
      assert.equal(m.status, 'suspended', 'not re-activated');

      // deactivated in the directory although the membership row still says active
      const inactive = await insertUser(t, { email: email() });
      await addMember(t, s.org.id, inactive.id, 'member', { source: 'scim' });
      await t.testDb.db('scim_users').insert({ org_id: s.org.id, directory_id: dir.id, user_id: inactive.id, user_name: inactive.email, active: false });
      await refusedWith(s, inactive.email, 403, 'suspended');

      const removed = await insertUser(t, { email: email() });
      await t.testDb.db('scim_users').insert({ org_id: s.org.id, directory_id: dir.id, user_id: removed.id, user_name: removed.email, active: true });
      await refusedWith(s, removed.email, 403, 'not_provisioned'); // JIT is on, yet no membership is created
      assert.equal(await t.testDb.db('memberships').where({ org_id: s.org.id, user_id: removed.id }).first(), undefined);
    });

    it('an SSO session satisfies MFA and SSO policies in its own org only', async () => {
      const address = email();
      const body = await signIn(s, address);
      const orgB = await insertOrg(t);
      await addMember(t, orgB.id, body.user.id, 'member');
      await t.testDb.db('organizations').whereIn('id', [s.org.id, orgB.id]).update({ mfa_required: true });
      const principal = await t.ctx.services.sessions.authenticate(body.token);
      assert.ok(principal);
      assert.deepEqual(principal.amr, ['sso']);
      await t.ctx.services.authz.resolveOrg(principal, s.org.id);
      await assert.rejects(t.ctx.services.authz.resolveOrg(principal, orgB.id), { status: 403, code: 'mfa_required' });
      await t.testDb.db('organizations').whereIn('id', [s.org.id, orgB.id]).update({ mfa_required: false });

      // sso-policy: a password session of the same member is refused once SSO is required
      const pwd = await sessionAuth(t, body.user.id);
      await t.http.put(`/api/v1/orgs/${s.org.id}/sso-policy`).set('Authorization', t.adminAuth).send({ required: true }).expect(200);
      const refused = await t.http.get(`/api/v1/orgs/${s.org.id}/domains`).set('Authorization', pwd).expect(403);
      assert.equal(refused.body.error.code, 'sso_required');
      const viaSso = await t.http.get(`/api/v1/orgs/${s.org.id}/domains`).set('Authorization', `Bearer ${body.token}`).expect(403);
      assert.equal(viaSso.body.error.code, 'forbidden', 'past the SSO policy; a member lacks domains:manage');
      await t.http.put(`/api/v1/orgs/${s.org.id}/sso-policy`).set('Authorization', t.adminAuth).send({ required: false }).expect(200);
    });

    it('discovery finds the enabled connection of the org that verified the email domain', async () => {
      const res = await t.http.get('/sso/discover').query({ email: `Someone@${s.domain.toUpperCase()}` }).expect(200);
      assert.deepEqual(res.body, { connectionId: s.connection.id, orgId: s.org.id, loginUrl: s.connection.loginUrl });
      await t.http.get('/sso/discover').query({ email: 'x@nobody-verified-this.example.net' }).expect(404);
      await t.http.get('/sso/discover').query({ email: 'not-an-email' }).expect(400);
      const disabled = await samlSetup(t, { connection: { enabled: false } });
      await t.http.get('/sso/discover').query({ email: `x@${disabled.domain}` }).expect(404);
    });

    it('login: returnTo must match an allowed URL (never an open redirect); the query may vary', async () => {
      for (const bad of ['https://evil.example.net/sso/callback', 'https://app.example.com/other', 'javascript:alert(1)', '//evil.example.net']) {
        const res = await t.http.get(`/sso/saml/${s.connection.id}/login`).query({ returnTo: bad }).expect(400);
        assert.equal(res.body.error.code, 'return_url_not_allowed');
      }
      const ok = await t.http.get(`/sso/saml/${s.connection.id}/login`).query({ returnTo: `${RETURN_URL}?state=xyz` }).expect(302);
      const relay = new URL(ok.headers.location!).searchParams.get('RelayState');
      const row = await t.testDb.db('saml_requests').where({ relay_state: relay }).first();
      assert.equal(row.return_to, `${RETURN_URL}?state=xyz`);
      // no returnTo: the default return URL
      await t.http.get(`/sso/saml/${s.connection.id}/login`).expect(302);
    });

    it('SP metadata carries entity id, ACS and the encryption certificate', async () => {
      const res = await t.http.get(`/sso/saml/${s.connection.id}/metadata`).expect(200);
      assert.match(res.headers['content-type']!, /samlmetadata\+xml/);
      assert.ok(res.text.includes(`entityID="${s.connection.spEntityId}"`));
      assert.ok(res.text.includes(`Location="${s.connection.acsUrl}"`));
      assert.ok(res.text.includes('use="encryption"'));
      const certBody = s.connection.spCertificate.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
      assert.ok(res.text.replace(/\s+/g, '').includes(certBody));
      assert.ok(!res.text.includes('PRIVATE KEY'));
    });
  });
}
