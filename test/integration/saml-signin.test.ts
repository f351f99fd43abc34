import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import supertest from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createContext } from '../../src/context.js';
import { buildApp } from '../../src/app.js';
import { testBackends } from '../helpers/db.js';
import { auditEvents } from '../helpers/fixtures.js';
import { ENTRA_EMAIL, ENTRA_GIVEN, ENTRA_GROUPS, ENTRA_SURNAME } from '../helpers/idp.js';
import { codeFrom, failureReasons, postAcs, RETURN_URL, samlSetup, signedResponse, startLogin, type SamlSetup } from '../helpers/saml-fixtures.js';

for (const backend of testBackends()) {
  describe(`SAML sign-in [${backend}]`, () => {
    let t: TestApp;
    let s: SamlSetup;
    before(async () => {
      t = await createTestApp(backend);
      s = await samlSetup(t);
    });
    after(() => t.close());

    it('SP-initiated: login redirects to the IdP, the ACS creates user, membership (sso_jit), session and a single-use code', async () => {
      const { url, requestId, relayState, request } = await startLogin(t, s.connection.id);
      assert.equal(`${url.origin}${url.pathname}`, 'https://idp.test/sso');
      assert.match(request, /AuthnRequest/);
      assert.ok(relayState.length >= 20 && !relayState.includes('app.example.com'), 'RelayState is opaque');
      const stored = await t.testDb.db('saml_requests').where({ id: requestId }).first();
      assert.equal(stored.return_to, RETURN_URL);
      assert.equal(stored.relay_state, relayState);

      const email = `alice@${s.domain}`;
      const { base64 } = signedResponse(s, email, {
        inResponseTo: requestId,
        nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
        nameId: 'opaque-id-1',
        attributes: { [ENTRA_EMAIL]: email.toUpperCase(), [ENTRA_GIVEN]: 'Alice', [ENTRA_SURNAME]: 'Liddell', [ENTRA_GROUPS]: ['g1', 'g2'] },
      });
      const res = await postAcs(t, s.connection.id, base64, relayState).expect(302);
      const location = new URL(res.headers.location!);
      assert.equal(`${location.origin}${location.pathname}`, RETURN_URL);
      const code = codeFrom(res.headers.location);

      const user = await t.testDb.db('users').where({ email }).first();
      assert.equal(user.name, 'Alice Liddell');
      const membership = await t.testDb.db('memberships').where({ org_id: s.org.id, user_id: user.id }).first();
      assert.deepEqual([membership.role, membership.source, membership.status], ['member', 'sso_jit', 'active']);
      assert.equal(await t.testDb.db('saml_requests').where({ id: requestId }).first(), undefined, 'request id consumed');
      const signedIn = await auditEvents(t, 'sso.signed_in', user.id);
      assert.equal(signedIn.length, 1);

      // the product's backend exchanges the code (service token), once
      await t.http.post('/api/v1/sso/token').send({ code }).expect(401);
      const exchanged = await t.http.post('/api/v1/sso/token').set('Authorization', t.adminAuth).send({ code }).expect(200);
      assert.match(exchanged.body.token, /^ses_/);
      assert.deepEqual(exchanged.body.session.amr, ['sso']);
      assert.equal(exchanged.body.session.ssoOrgId, s.org.id);
      assert.equal(exchanged.body.session.ssoConnectionId, s.connection.id);
      assert.equal(exchanged.body.user.id, user.id);
      assert.equal(exchanged.body.organization.id, s.org.id);
      assert.equal(exchanged.body.profile.firstName, 'Alice');
      assert.deepEqual(exchanged.body.profile.groups, ['g1', 'g2']);
      const again = await t.http.post('/api/v1/sso/token').set('Authorization', t.adminAuth).send({ code }).expect(400);
      assert.equal(again.body.error.code, 'sso.invalid_code');
      // the session token works against the admin API, and counts as SSO in this org
      const orgRes = await t.http.get(`/api/v1/orgs/${s.org.id}/sso-policy`).set('Authorization', `Bearer ${exchanged.body.token}`);
      assert.equal(orgRes.status, 403, 'a member lacks sso:manage, but is authenticated');
      assert.equal(orgRes.body.error.code, 'forbidden');
    });

    it('a flow begun on one instance finishes on another (no process memory), and concurrent twins sign in once', async () => {
      const other = supertest(buildApp(createContext({ config: t.ctx.config, db: t.testDb.db, logger: t.ctx.logger })));
      const { requestId, relayState } = await startLogin(t, s.connection.id);
      const { base64 } = signedResponse(s, `carol@${s.domain}`, { inResponseTo: requestId });
      const [a, b] = await Promise.all([
        other.post(`/sso/saml/${s.connection.id}/acs`).type('form').send({ SAMLResponse: base64, RelayState: relayState }),
        postAcs(t, s.connection.id, base64, relayState),
      ]);
      assert.deepEqual([a.status, b.status].sort(), [302, 401]);
      const loser = a.status === 401 ? a : b;
      assert.ok(['replayed', 'in_response_to_invalid'].includes(loser.body.error.code), loser.body.error.code);
      const users = await t.testDb.db('users').where({ email: `carol@${s.domain}` });
      assert.equal(users.length, 1);
      assert.equal((await t.testDb.db('sessions').where({ user_id: users[0].id })).length, 1);
    });

    it('IdP-initiated: accepted by default, lands on the default return URL; refused when disabled', async () => {
      const email = `bob@${s.domain}`;
      const res = await postAcs(t, s.connection.id, signedResponse(s, email).base64).expect(302);
      assert.ok(res.headers.location!.startsWith(`${RETURN_URL}?code=`));

      const other = await samlSetup(t, { connection: { allowIdpInitiated: false } });
      const refused = await postAcs(t, other.connection.id, signedResponse(other, `bob@${other.domain}`).base64).expect(403);
      assert.equal(refused.body.error.code, 'idp_initiated_disabled');
      assert.deepEqual(await failureReasons(t, other.connection.id), ['idp_initiated_disabled']);
      assert.equal(await t.testDb.db('users').where({ email: `bob@${other.domain}` }).first(), undefined);
    });
  });
}
