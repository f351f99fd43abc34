import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import {
  assertionXml,
  buildResponse,
  encryptAssertion,
  ENTRA_GROUPS,
  generateKeyPair,
  newId,
  responseXml,
  signAssertionIn,
  signResponse,
  signStandaloneAssertion,
  toBase64,
  type KeyPair,
} from '../helpers/idp.js';
import { codeFrom, failureReasons, postAcs, responseFor, samlSetup, signedResponse, startLogin, type SamlSetup } from '../helpers/saml-fixtures.js';

/** A refused ACS: the status, the code, one audit reason, and no user for that email. */
async function refused(t: TestApp, s: SamlSetup, base64: string, status: number, code: string, email?: string, relayState?: string) {
  const before = (await failureReasons(t, s.connection.id)).length;
  const res = await postAcs(t, s.connection.id, base64, relayState);
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(res.body.error.code, code);
  assert.ok(!JSON.stringify(res.body).includes(' at '), 'no stack trace');
  const reasons = await failureReasons(t, s.connection.id);
  assert.deepEqual(reasons.slice(before), [code]);
  if (email) assert.equal(await t.testDb.db('users').whereRaw('lower(email) = ?', [email]).first(), undefined, `no user ${email}`);
}

for (const backend of testBackends()) {
  describe(`SAML ACS security checks [${backend}]`, () => {
    let t: TestApp;
    let s: SamlSetup;
    let attackerKey: KeyPair;
    let n = 0;
    const email = () => `u${++n}-${Date.now().toString(36)}@${s.domain}`;
    before(async () => {
      t = await createTestApp(backend);
      s = await samlSetup(t);
      attackerKey = await generateKeyPair('attacker');
    });
    after(() => t.close());

    it('signature placement: assertion-only, response-only and both are accepted; neither is refused', async () => {
      for (const mode of ['assertion', 'response', 'both'] as const) {
        await postAcs(t, s.connection.id, signedResponse(s, email(), {}, mode).base64).expect(302);
      }
      const e = email();
      await refused(t, s, signedResponse(s, e, {}, 'none').base64, 401, 'signature_invalid', e);
    });

    it('wrong key, and tampering after signing, are refused', async () => {
      const e1 = email();
      await refused(t, s, signedResponse(s, e1, {}, 'assertion', attackerKey).base64, 401, 'signature_invalid', e1);
      const e2 = email();
      await refused(t, s, signedResponse(s, e2, {}, 'response', attackerKey).base64, 401, 'signature_invalid', e2);
      const original = email();
      const victim = `ceo@${s.domain}`;
      const { xml } = signedResponse(s, original);
      await refused(t, s, toBase64(xml.replace(original, victim)), 401, 'signature_invalid', victim);
      const { xml: xml2 } = signedResponse(s, original, {}, 'response');
      await refused(t, s, toBase64(xml2.replace(original, victim)), 401, 'signature_invalid', victim);
    });

    it('signature wrapping (XSW) variants are refused', async (tc) => {
      const legit = email();
      const victim = `admin-${n}@${s.domain}`;
      const opts = responseFor(s, legit);
      const signed = signStandaloneAssertion(assertionXml({ ...opts, assertionId: newId() }), s.idp);
      const evil = (id = newId()) => assertionXml({ ...opts, nameId: victim, assertionId: id });
      const signedId = /ID="([^"]+)"/.exec(signed)![1]!;
      const variants: Record<string, string> = {
        // the signed assertion hidden in Extensions, an evil one in its place
        extensions: responseXml(opts, `<samlp:Extensions>${signed}</samlp:Extensions>${evil()}`),
        // evil assertion with the same ID, the signed one tucked into its ds:Object
        object: responseXml(
          opts,
          evil(signedId).replace(
            '</saml:Issuer>',
            `</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:Object>${signed}</ds:Object></ds:Signature>`,
          ),
        ),
        // a second, unsigned assertion before or after the signed one
        before: responseXml(opts, evil() + signed),
        after: responseXml(opts, signed + evil()),
        // the evil assertion wraps the signed one
        wrapping: responseXml(opts, evil().replace('</saml:Assertion>', `${signed}</saml:Assertion>`)),
        // the signature of the signed assertion copied onto an evil one with the same ID
        copiedSignature: responseXml(
          opts,
          evil(signedId).replace('</saml:Issuer>', `</saml:Issuer>${/<(ds:)?Signature[\s\S]*<\/(ds:)?Signature>/.exec(signed)![0]}`),
        ),
      };
      for (const [name, xml] of Object.entries(variants)) {
        const res = await postAcs(t, s.connection.id, toBase64(xml));
        assert.equal(res.status, 401, `${name}: ${res.status} ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'signature_invalid', name);
        tc.diagnostic(`${name}: ${res.body.error.code}`);
      }
      // a signed Response whose evil assertion sits beside a signed-response copy
      const responseSigned = signResponse(responseXml(opts, assertionXml({ ...opts, assertionId: newId() })), s.idp);
      const wrapped = responseSigned.replace('<samlp:Status>', `${evil()}<samlp:Status>`);
      const res = await postAcs(t, s.connection.id, toBase64(wrapped));
      assert.equal(res.status, 401);
      for (const who of [victim]) assert.equal(await t.testDb.db('users').where({ email: who }).first(), undefined);
    });

    it('NameID comment injection: the whole signed value is read, never the text before the comment', async () => {
      const sub = `evil.com.${s.domain}`;
      await t.testDb.db('domains').insert({ org_id: s.org.id, domain: sub, status: 'verified', verified_at: new Date(), verification_token: 'y' });
      const full = `user@${sub}`;
      const { xml } = signedResponse(s, full);
      const injected = xml.replace(`>${full}<`, `>user@evil.com<!---->.${s.domain}<`);
      assert.notEqual(injected, xml);
      const res = await postAcs(t, s.connection.id, toBase64(injected)).expect(302);
      codeFrom(res.headers.location);
      assert.ok(await t.testDb.db('users').where({ email: full }).first(), 'the full address signed in');
      assert.equal(await t.testDb.db('users').where({ email: 'user@evil.com' }).first(), undefined);
    });

    it('time conditions: expired and not yet valid are refused (with small skew allowed)', async () => {
      const e1 = email();
      await refused(t, s, signedResponse(s, e1, { notBeforeMs: -600_000, notOnOrAfterMs: -120_000 }).base64, 401, 'expired', e1);
      const e2 = email();
      await refused(t, s, signedResponse(s, e2, { notBeforeMs: 600_000, notOnOrAfterMs: 900_000 }).base64, 401, 'not_yet_valid', e2);
      // 30 s in the future is within the default 60 s skew
      await postAcs(t, s.connection.id, signedResponse(s, email(), { notBeforeMs: 30_000 }).base64).expect(302);
    });

    it('audience, recipient, destination and issuer must be ours / the IdP’s', async () => {
      const e = email();
      await refused(t, s, signedResponse(s, e, { audience: 'https://other-sp.test' }).base64, 401, 'audience_mismatch', e);
      await refused(t, s, signedResponse(s, e, { recipient: 'https://other-sp.test/acs' }).base64, 401, 'recipient_mismatch', e);
      await refused(t, s, signedResponse(s, e, { destination: 'https://other-sp.test/acs' }, 'both').base64, 401, 'destination_mismatch', e);
      await refused(t, s, signedResponse(s, e, { responseIssuer: 'https://evil-idp.test' }).base64, 401, 'issuer_mismatch', e);
      // the signed assertion's Issuer is checked even when the Response carries none
      await refused(t, s, signedResponse(s, e, { responseIssuer: null, assertionIssuer: 'https://evil-idp.test' }).base64, 401, 'issuer_mismatch', e);
    });

    it('IdP error status is refused', async () => {
      const e = email();
      await refused(t, s, signedResponse(s, e, { statusCode: 'urn:oasis:names:tc:SAML:2.0:status:Responder' }).base64, 401, 'idp_status_error', e);
    });

    it('replay: the same assertion twice fails (IdP-initiated and SP-initiated)', async () => {
      const { base64 } = signedResponse(s, email());
      await postAcs(t, s.connection.id, base64).expect(302);
      await refused(t, s, base64, 401, 'replayed');

      const { requestId, relayState } = await startLogin(t, s.connection.id);
      const sp = signedResponse(s, email(), { inResponseTo: requestId });
      await postAcs(t, s.connection.id, sp.base64, relayState).expect(302);
      await refused(t, s, sp.base64, 401, 'in_response_to_invalid', undefined, relayState);
      assert.equal(await t.testDb.db('saml_used_assertions').where({ assertion_id: sp.assertionId }).count('* as n').first().then((r) => Number(r!.n)), 1);
    });

    it('unknown InResponseTo, a stripped InResponseTo and a foreign RelayState are refused', async () => {
      const e = email();
      await refused(t, s, signedResponse(s, e, { inResponseTo: newId() }).base64, 401, 'in_response_to_invalid', e);
      const { requestId, relayState } = await startLogin(t, s.connection.id);
      await refused(t, s, signedResponse(s, e, { inResponseTo: requestId }).base64, 401, 'relay_state_mismatch', e, 'someone-elses-state');
      // an assertion answering a request, posted as if unsolicited (Response@InResponseTo removed)
      const { xml } = signedResponse(s, e, { inResponseTo: requestId });
      const stripped = xml.replace(` InResponseTo="${requestId}"`, '');
      assert.notEqual(stripped, xml);
      await refused(t, s, toBase64(stripped), 401, 'in_response_to_invalid', e);
      // the request id of one connection does not satisfy another connection
      const other = await samlSetup(t);
      const fromOther = await startLogin(t, other.connection.id);
      await refused(t, s, signedResponse(s, e, { inResponseTo: fromOther.requestId }).base64, 401, 'in_response_to_invalid', e, fromOther.relayState);
      void relayState;
    });

    it('DOCTYPE is refused before parsing', async () => {
      const { xml } = signedResponse(s, email());
      const withDoctype = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]>${xml}`;
      await refused(t, s, toBase64(withDoctype), 400, 'doctype_forbidden');
      // a browser gets a short page, never a stack trace
      const page = await t.http.post(`/sso/saml/${s.connection.id}/acs`).set('Accept', 'text/html').type('form').send({ SAMLResponse: toBase64(withDoctype) }).expect(400);
      assert.match(page.headers['content-type']!, /text\/html/);
      assert.ok(page.text.includes('doctype_forbidden'));
      assert.ok(!/at .*\.ts:\d+/.test(page.text));
    });

    it('size: a 600 KiB signed response is accepted, a 5 MiB body is refused fast with 413', async () => {
      const groups = Array.from({ length: 9000 }, (_, i) => `group-${i.toString().padStart(6, '0')}-${'x'.repeat(40)}`);
      const big = signedResponse(s, email(), { attributes: { [ENTRA_GROUPS]: groups } });
      assert.ok(big.xml.length > 600 * 1024, `response is ${big.xml.length} bytes`);
      const ok = await postAcs(t, s.connection.id, big.base64).expect(302);
      const exchanged = await t.http.post('/api/v1/sso/token').set('Authorization', t.adminAuth).send({ code: codeFrom(ok.headers.location) }).expect(200);
      assert.equal(exchanged.body.profile.groups.length, 9000);

      const huge = 'A'.repeat(5 * 1024 * 1024);
      const started = Date.now();
      const res = await postAcs(t, s.connection.id, huge);
      assert.equal(res.status, 413);
      assert.equal(res.body.error.code, 'too_large');
      assert.ok(Date.now() - started < 3000, 'refused quickly');
      assert.equal((await failureReasons(t, s.connection.id)).at(-1), 'too_large');
    });

    it('encrypted assertion (signed, then encrypted to the SP certificate) is decrypted and accepted', async () => {
      const e = email();
      const opts = responseFor(s, e);
      const signed = signStandaloneAssertion(assertionXml({ ...opts, assertionId: newId() }), s.idp);
      const encrypted = await encryptAssertion(signed, s.connection.spCertificate);
      const res = await postAcs(t, s.connection.id, toBase64(responseXml(opts, encrypted))).expect(302);
      codeFrom(res.headers.location);
      assert.ok(await t.testDb.db('users').where({ email: e }).first());
      // encrypted to another key: refused
      const wrong = await encryptAssertion(signed, attackerKey.cert);
      await refused(t, s, toBase64(responseXml(opts, wrong)), 401, 'decryption_failed');
    });

    it('certificate rotation: old and new both work while configured; the old one is refused after removal', async () => {
      const newKey = await generateKeyPair('rotated');
      const oldKey = s.idp;
      await t.http
        .patch(`/api/v1/orgs/${s.org.id}/sso-connections/${s.connection.id}`)
        .set('Authorization', t.adminAuth)
        .send({ idpCertificates: [oldKey.cert, newKey.certBase64] })
        .expect(200);
      await postAcs(t, s.connection.id, signedResponse(s, email(), {}, 'assertion', oldKey).base64).expect(302);
      await postAcs(t, s.connection.id, signedResponse(s, email(), {}, 'assertion', newKey).base64).expect(302);
      await t.http
        .patch(`/api/v1/orgs/${s.org.id}/sso-connections/${s.connection.id}`)
        .set('Authorization', t.adminAuth)
        .send({ idpCertificates: [newKey.cert] })
        .expect(200);
      const e = email();
      await refused(t, s, signedResponse(s, e, {}, 'assertion', oldKey).base64, 401, 'signature_invalid', e);
      await postAcs(t, s.connection.id, signedResponse(s, email(), {}, 'assertion', newKey).base64).expect(302);
      s.idp = newKey;
    });

    it('a disabled connection refuses login and ACS; an unknown connection is 404 without audit', async () => {
      const other = await samlSetup(t);
      await t.http.patch(`/api/v1/orgs/${other.org.id}/sso-connections/${other.connection.id}`).set('Authorization', t.adminAuth).send({ enabled: false }).expect(200);
      const login = await t.http.get(`/sso/saml/${other.connection.id}/login`).expect(403);
      assert.equal(login.body.error.code, 'connection_disabled');
      await refused(t, other, signedResponse(other, `x@${other.domain}`).base64, 403, 'connection_disabled');
      const unknown = await postAcs(t, '00000000-0000-4000-8000-000000000000', 'AAAA').expect(404);
      assert.equal(unknown.body.error.code, 'connection_not_found');
      await t.http.get('/sso/saml/not-a-uuid/metadata').expect(404);
    });

    it('buildResponse sanity: a valid response from the same builder is accepted (the refusals above are not artefacts)', async () => {
      const r = buildResponse(responseFor(s, email()), s.idp, 'assertion');
      await postAcs(t, s.connection.id, r.base64).expect(302);
      void signAssertionIn;
    });
  });
}
