import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import supertest from 'supertest';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { createContext } from '../../src/context.js';
import { buildApp } from '../../src/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertUser } from '../helpers/fixtures.js';
import { ASSERTION_XPATH, assertionXml, ENTRA_EMAIL, ENTRA_GIVEN, ENTRA_GROUPS, ENTRA_SURNAME, generateKeyPair, newId, RESPONSE_XPATH, responseXml, signElementWith, toBase64 } from '../helpers/idp.js';
import { codeFrom, failureReasons, postAcs, responseFor, RETURN_URL, samlSetup, signedResponse, startLogin, type SamlSetup } from '../helpers/saml-fixtures.js';

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

    it('a JIT sign-in writes its audit trail in causal order, in the request, and nothing else', async () => {
      const email = `dora@${s.domain}`;
      const { assertionId, base64 } = signedResponse(s, email, { attributes: { [ENTRA_EMAIL]: email, [ENTRA_GIVEN]: 'Dora', [ENTRA_SURNAME]: 'Explorer' } });
      const res = await t.http.post(`/sso/saml/${s.connection.id}/acs`).set('X-Request-Id', 'req-sso-dora').type('form').send({ SAMLResponse: base64 }).expect(302);
      const user = await t.testDb.db('users').where({ email }).first();
      const events = await t.testDb.db('audit_events').where({ org_id: s.org.id }).whereIn('action', ['user.created', 'member.added', 'session.created', 'sso.signed_in']).andWhere({ target_id: user.id }).orderBy('id');
      assert.deepEqual(events.map((e: { action: string }) => e.action), ['user.created', 'member.added', 'session.created', 'sso.signed_in']);
      for (const e of events) assert.deepEqual([e.actor_type, e.actor_id], ['sso_connection', s.connection.id]);
      assert.deepEqual(events.map((e: { request_id: string }) => e.request_id), Array(4).fill('req-sso-dora'), 'the request id on every event');
      const [created, added, session, signedIn] = events;
      assert.deepEqual(created.after, { email, name: 'Dora Explorer', source: 'sso_jit' });
      assert.deepEqual(added.after, { role: 'member', status: 'active', source: 'sso_jit' });
      const sessions = await t.testDb.db('sessions').where({ user_id: user.id });
      assert.equal(sessions.length, 1);
      assert.deepEqual(session.after, { sessionId: sessions[0].id, amr: ['sso'] });
      assert.deepEqual(sessions[0].amr, ['sso']);
      assert.equal(sessions[0].sso_org_id, s.org.id);
      assert.deepEqual(signedIn.after, { sessionId: sessions[0].id, assertionId, email, joined: 'sso_jit', idpInitiated: true });
      const code = await t.testDb.db('sso_codes').where({ session_id: sessions[0].id });
      assert.equal(code.length, 1);
      assert.equal(code[0].profile.firstName, 'Dora');
      assert.ok(res.headers.location!.includes('code='));
      // a returning member: no account or membership event, joined null
      const again = signedResponse(s, email);
      await postAcs(t, s.connection.id, again.base64).expect(302);
      const later = await t.testDb.db('audit_events').where({ org_id: s.org.id, target_id: user.id }).where('id', '>', signedIn.id).orderBy('id');
      assert.deepEqual(later.map((e: { action: string }) => e.action), ['session.created', 'sso.signed_in']);
      assert.equal(later[1].after.joined, null);
    });

    it('a sign-in refused after validation keeps nothing, so the same response succeeds once the cause is fixed', async () => {
      // suspended member: refused, the assertion is not spent
      const member = await insertUser(t, { email: `erin@${s.domain}` });
      await addMember(t, s.org.id, member.id, 'member', { status: 'suspended' });
      const { assertionId, base64 } = signedResponse(s, member.email);
      const refused = await t.http.post(`/sso/saml/${s.connection.id}/acs`).set('X-Request-Id', 'req-sso-erin').type('form').send({ SAMLResponse: base64 }).expect(403);
      assert.equal(refused.body.error.code, 'suspended');
      const [failed] = await t.testDb.db('audit_events').where({ action: 'sso.sign_in_failed', target_id: s.connection.id }).orderBy('id', 'desc').limit(1);
      assert.deepEqual([failed.after.reason, failed.after.assertionId, failed.request_id], ['suspended', assertionId, 'req-sso-erin']);
      assert.equal(await t.testDb.db('saml_used_assertions').where({ assertion_id: assertionId }).first(), undefined);
      await t.testDb.db('memberships').where({ org_id: s.org.id, user_id: member.id }).update({ status: 'active' });
      await postAcs(t, s.connection.id, base64).expect(302);
      assert.ok(await t.testDb.db('saml_used_assertions').where({ assertion_id: assertionId }).first());
      const replay = await postAcs(t, s.connection.id, base64).expect(401);
      assert.equal(replay.body.error.code, 'replayed');

      // SP-initiated, JIT off: refused, the request stays pending; answered once JIT is back on
      await t.testDb.db('sso_connections').where({ id: s.connection.id }).update({ jit_enabled: false });
      try {
        const { requestId, relayState } = await startLogin(t, s.connection.id);
        const sp = signedResponse(s, `fred@${s.domain}`, { inResponseTo: requestId });
        const notProvisioned = await postAcs(t, s.connection.id, sp.base64, relayState).expect(403);
        assert.equal(notProvisioned.body.error.code, 'not_provisioned');
        assert.ok(await t.testDb.db('saml_requests').where({ id: requestId }).first(), 'the request is still pending');
        assert.equal(await t.testDb.db('users').where({ email: `fred@${s.domain}` }).first(), undefined);
        await t.testDb.db('sso_connections').where({ id: s.connection.id }).update({ jit_enabled: true });
        await postAcs(t, s.connection.id, sp.base64, relayState).expect(302);
        assert.equal(await t.testDb.db('saml_requests').where({ id: requestId }).first(), undefined, 'consumed with the sign-in');
      } finally {
        await t.testDb.db('sso_connections').where({ id: s.connection.id }).update({ jit_enabled: true });
      }
    });

    it('concurrent first sign-ins of one new person (two assertions) both succeed with one account and one membership', async () => {
      const email = `gina@${s.domain}`;
      const [a, b] = await Promise.all([postAcs(t, s.connection.id, signedResponse(s, email).base64), postAcs(t, s.connection.id, signedResponse(s, email).base64)]);
      assert.deepEqual([a.status, b.status], [302, 302], JSON.stringify([a.body, b.body]));
      const users = await t.testDb.db('users').whereRaw('lower(email) = ?', [email]);
      assert.equal(users.length, 1);
      assert.equal((await t.testDb.db('memberships').where({ org_id: s.org.id, user_id: users[0].id })).length, 1);
      assert.equal((await t.testDb.db('sessions').where({ user_id: users[0].id })).length, 2);
      assert.equal((await auditEvents(t, 'user.created', users[0].id)).length, 1);
    });

    it('signature algorithms: RSA with SHA-256, SHA-512, SHA-1 (older IdPs) and RSA-PSS verify, on the assertion or the Response, with any of the certificates', async () => {
      const older = await generateKeyPair('idp-older');
      const rotating = await samlSetup(t, { idp: older });
      // rotation: the connection trusts the older and the current certificate
      await t.http
        .patch(`/api/v1/orgs/${rotating.org.id}/sso-connections/${rotating.connection.id}`)
        .set('Authorization', t.adminAuth)
        .send({ idpCertificates: [older.cert, s.idp.cert] })
        .expect(200);
      const algorithms = [
        'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
        'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
        'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
        'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
      ];
      let n = 0;
      for (const signatureAlgorithm of algorithms) {
        for (const [setup, key] of [[s, s.idp], [rotating, older], [rotating, s.idp]] as const) {
          for (const xpath of [ASSERTION_XPATH, RESPONSE_XPATH]) {
            const email = `alg${++n}@${setup.domain}`;
            const o = responseFor(setup, email);
            const xml = signElementWith(responseXml(o, assertionXml({ ...o, assertionId: newId() })), key, xpath, { signatureAlgorithm });
            assert.ok(xml.includes(signatureAlgorithm));
            const res = await postAcs(t, setup.connection.id, toBase64(xml));
            assert.equal(res.status, 302, `${signatureAlgorithm} ${xpath}: ${res.status} ${JSON.stringify(res.body)}`);
          }
        }
        // a key the connection does not trust is refused, whatever the algorithm
        const stranger = await generateKeyPair('idp-stranger');
        const o = responseFor(s, `alg${++n}@${s.domain}`);
        const forged = signElementWith(responseXml(o, assertionXml({ ...o, assertionId: newId() })), stranger, ASSERTION_XPATH, { signatureAlgorithm });
        const refused = await postAcs(t, s.connection.id, toBase64(forged)).expect(401);
        assert.equal(refused.body.error.code, 'signature_invalid');
      }
    });

    it('an SP-initiated login also clears expired requests, replay-cache rows and day-old codes', async () => {
      const past = new Date(Date.now() - 60_000);
      const dayAgo = new Date(Date.now() - 25 * 3_600_000);
      const live = new Date(Date.now() + 600_000);
      const base = { org_id: s.org.id, connection_id: s.connection.id };
      await t.testDb.db('saml_requests').insert([
        { ...base, id: '_expired_request', issue_instant: past.toISOString(), expires_at: past },
        { ...base, id: '_live_request', issue_instant: past.toISOString(), expires_at: live },
      ]);
      await t.testDb.db('saml_used_assertions').insert([
        { ...base, assertion_id: '_expired_assertion', expires_at: past },
        { ...base, assertion_id: '_live_assertion', expires_at: live },
      ]);
      const { base64 } = signedResponse(s, `hana@${s.domain}`);
      await postAcs(t, s.connection.id, base64).expect(302);
      const code = await t.testDb.db('sso_codes').where({ connection_id: s.connection.id }).orderBy('created_at', 'desc').first();
      await t.testDb.db('sso_codes').where({ code_hash: code.code_hash }).update({ expires_at: dayAgo });

      const { requestId } = await startLogin(t, s.connection.id);
      assert.ok(await t.testDb.db('saml_requests').where({ id: requestId }).first(), 'the new request is stored');
      assert.deepEqual((await t.testDb.db('saml_requests').whereIn('id', ['_expired_request', '_live_request'])).map((r: { id: string }) => r.id), ['_live_request']);
      assert.deepEqual(
        (await t.testDb.db('saml_used_assertions').whereIn('assertion_id', ['_expired_assertion', '_live_assertion'])).map((r: { assertion_id: string }) => r.assertion_id),
        ['_live_assertion'],
      );
      assert.equal(await t.testDb.db('sso_codes').where({ code_hash: code.code_hash }).first(), undefined);
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
