import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { auditEvents, insertOrg, insertUser, memberWithSession } from '../helpers/fixtures.js';
import { generateKeyPair, idpMetadataXml, type KeyPair } from '../helpers/idp.js';
import { codeFrom, postAcs, RETURN_URL, samlSetup, signedResponse } from '../helpers/saml-fixtures.js';

for (const backend of testBackends()) {
  describe(`SSO connections admin API [${backend}]`, () => {
    let t: TestApp;
    let org: { id: string };
    let key: KeyPair;
    let key2: KeyPair;
    const url = (orgId: string, rest = '') => `/api/v1/orgs/${orgId}/sso-connections${rest}`;
    const fields = () => ({ idpEntityId: 'https://idp.example.com/app/1', idpSsoUrl: 'https://idp.example.com/sso', idpCertificates: [key.cert] });

    before(async () => {
      t = await createTestApp(backend);
      const owner = await insertUser(t);
      org = await insertOrg(t, { ownerId: owner.id });
      [key, key2] = await Promise.all([generateKeyPair('idp-one'), generateKeyPair('idp-two')]);
    });
    after(() => t.close());

    it('create from fields: SP values from PUBLIC_URL, certificate facts, sealed SP key, audited', async () => {
      const res = await t.http
        .post(url(org.id))
        .set('Authorization', t.adminAuth)
        .send({ ...fields(), idpCertificates: [key.cert, key2.certBase64], allowedReturnUrls: [RETURN_URL], defaultReturnUrl: RETURN_URL })
        .expect(201);
      const c = res.body;
      assert.equal(c.acsUrl, `http://sp.test/sso/saml/${c.id}/acs`);
      assert.equal(c.spEntityId, `http://sp.test/sso/saml/${c.id}`);
      assert.equal(c.metadataUrl, `http://sp.test/sso/saml/${c.id}/metadata`);
      assert.equal(c.loginUrl, `http://sp.test/sso/saml/${c.id}/login`);
      assert.deepEqual([c.enabled, c.allowIdpInitiated, c.jitEnabled, c.defaultRole], [true, true, true, 'member']);
      assert.equal(c.idpCertificates.length, 2);
      const expected = new X509Certificate(key.cert);
      assert.equal(c.idpCertificates[0].fingerprintSha256, expected.fingerprint256);
      assert.match(c.idpCertificates[0].subject, /CN=idp-one/);
      assert.equal(new Date(c.idpCertificates[0].notAfter).getTime(), new Date(expected.validTo).getTime());
      assert.equal(c.idpCertificates[0].expired, false);
      assert.match(c.spCertificate, /BEGIN CERTIFICATE/);
      assert.ok(c.attributeMapping.email.includes('http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress'));
      assert.ok(c.attributeMapping.groups.includes('http://schemas.microsoft.com/ws/2008/06/identity/claims/groups'));
      const row = await t.testDb.db('sso_connections').where({ id: c.id }).first();
      assert.match(row.sp_private_key_encrypted, /^v1\./);
      assert.ok(!row.sp_private_key_encrypted.includes('PRIVATE KEY'));
      const [event] = await auditEvents(t, 'sso_connection.created', c.id);
      assert.equal(event.after.certificateFingerprints.length, 2);
      assert.ok(!JSON.stringify(event.after).includes('BEGIN'), 'no PEM or key in the audit log');
    });

    it('create from metadata XML (any prefix); DOCTYPE, garbage and missing parts refused', async () => {
      for (const prefix of ['md', '']) {
        const xml = idpMetadataXml({ entityId: `https://sts.windows.net/tenant-${prefix}/`, ssoUrl: 'https://login.microsoftonline.com/t/saml2', certs: [key.cert], prefix });
        const res = await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send({ idpMetadataXml: xml }).expect(201);
        assert.equal(res.body.idpEntityId, `https://sts.windows.net/tenant-${prefix}/`);
        assert.equal(res.body.idpSsoUrl, 'https://login.microsoftonline.com/t/saml2', 'the HTTP-Redirect location, not the POST one');
        assert.equal(res.body.idpCertificates[0].fingerprintSha256, new X509Certificate(key.cert).fingerprint256);
        assert.equal(res.body.idpMetadataImported, true);
      }
      const good = idpMetadataXml({ entityId: 'https://idp/x', ssoUrl: 'https://idp/sso', certs: [key.cert] });
      const encryptionOnly = good.replace('use="signing"', 'use="encryption"');
      const cases: [string, string][] = [
        [`<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${good.replace(/^<\?xml[^>]*>/, '')}`, 'sso_connection.metadata_doctype_forbidden'],
        ['<EntityDescriptor', 'sso_connection.metadata_malformed'],
        [encryptionOnly, 'sso_connection.metadata_no_signing_certificate'],
        [good.replace(/urn:oasis:names:tc:SAML:2.0:metadata/, 'urn:example:not-metadata'), 'sso_connection.metadata_no_idp'],
        [good.replace(/<md:SingleSignOnService Binding="[^"]*HTTP-Redirect"[^>]*\/>/, ''), 'sso_connection.metadata_no_redirect_sso'],
      ];
      for (const [xml, code] of cases) {
        const res = await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send({ idpMetadataXml: xml }).expect(400);
        assert.equal(res.body.error.code, code);
      }
    });

    it('bad input is a 400 with the field named; nothing is written', async () => {
      const before = (await auditEvents(t, 'sso_connection.created')).length;
      const garbage = await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send({ ...fields(), idpCertificates: [key.cert, 'not a certificate'] }).expect(400);
      assert.equal(garbage.body.error.code, 'sso_connection.invalid_certificate');
      assert.equal(garbage.body.error.details[0].path, 'idpCertificates.1');
      const bogusPem = await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send({ ...fields(), idpCertificates: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----'] }).expect(400);
      assert.equal(bogusPem.body.error.code, 'sso_connection.invalid_certificate');
      const bodies: Record<string, unknown>[] = [
        {},
        { idpEntityId: 'x', idpSsoUrl: 'https://idp/sso' },
        { ...fields(), idpSsoUrl: 'ftp://idp/sso' },
        { ...fields(), idpCertificates: [] },
        { ...fields(), unknown: true },
        { ...fields(), idpMetadataXml: '<x/>' },
        { ...fields(), defaultRole: 'owner' },
        { ...fields(), allowedReturnUrls: [RETURN_URL], defaultReturnUrl: 'https://elsewhere.example.com/cb' },
        { ...fields(), attributeMapping: { email: [] } },
        { ...fields(), attributeMapping: { shoeSize: ['x'] } },
      ];
      for (const b of bodies) {
        const res = await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send(b);
        assert.equal(res.status, 400, JSON.stringify(b));
      }
      assert.equal((await auditEvents(t, 'sso_connection.created')).length, before);
    });

    it('get, list (paginated), patch (settings, rotation, disable), delete; each write audited', async () => {
      const created = (await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send(fields()).expect(201)).body;
      const got = await t.http.get(url(org.id, `/${created.id}`)).set('Authorization', t.adminAuth).expect(200);
      assert.equal(got.body.idpEntityId, fields().idpEntityId);
      const ids: string[] = [];
      let next: string | null = null;
      do {
        const page: { body: { data: { id: string }[]; next: string | null } } = await t.http
          .get(url(org.id))
          .query({ limit: 2, ...(next ? { after: next } : {}) })
          .set('Authorization', t.adminAuth)
          .expect(200);
        ids.push(...page.body.data.map((c) => c.id));
        next = page.body.next;
      } while (next);
      assert.ok(ids.includes(created.id));
      assert.equal(new Set(ids).size, ids.length);
      assert.equal(ids.length, Number((await t.testDb.db('sso_connections').where({ org_id: org.id }).count('* as c').first())!.c));

      const patched = await t.http
        .patch(url(org.id, `/${created.id}`))
        .set('Authorization', t.adminAuth)
        .send({ name: 'Okta', jitEnabled: false, allowIdpInitiated: false, defaultRole: 'viewer', idpCertificates: [key.cert, key2.cert], attributeMapping: { email: ['urn:custom:mail'] } })
        .expect(200);
      assert.deepEqual([patched.body.name, patched.body.jitEnabled, patched.body.allowIdpInitiated, patched.body.defaultRole], ['Okta', false, false, 'viewer']);
      assert.equal(patched.body.idpCertificates.length, 2);
      assert.deepEqual(patched.body.attributeMapping.email, ['urn:custom:mail']);
      assert.ok(patched.body.attributeMapping.firstName.length > 1, 'unset fields keep their defaults');
      const [event] = await auditEvents(t, 'sso_connection.updated', created.id);
      assert.equal(event.before.jitEnabled, true);
      assert.equal(event.after.jitEnabled, false);
      const reimported = await t.http
        .patch(url(org.id, `/${created.id}`))
        .set('Authorization', t.adminAuth)
        .send({ idpMetadataXml: idpMetadataXml({ entityId: 'https://idp.example.com/v2', ssoUrl: 'https://idp.example.com/v2/sso', certs: [key2.cert] }) })
        .expect(200);
      assert.deepEqual(
        [reimported.body.idpEntityId, reimported.body.idpSsoUrl, reimported.body.idpCertificates.map((c: { fingerprintSha256: string }) => c.fingerprintSha256)],
        ['https://idp.example.com/v2', 'https://idp.example.com/v2/sso', [new X509Certificate(key2.cert).fingerprint256]],
      );
      assert.equal(reimported.body.jitEnabled, false, 'other settings kept');
      await t.http.patch(url(org.id, `/${created.id}`)).set('Authorization', t.adminAuth).send({}).expect(400);
      await t.http.patch(url(org.id, `/${created.id}`)).set('Authorization', t.adminAuth).send({ idpCertificates: ['junk'] }).expect(400);

      await t.http.delete(url(org.id, `/${created.id}`)).set('Authorization', t.adminAuth).expect(204);
      await t.http.get(url(org.id, `/${created.id}`)).set('Authorization', t.adminAuth).expect(404);
      await t.http.delete(url(org.id, `/${created.id}`)).set('Authorization', t.adminAuth).expect(404);
      assert.equal((await auditEvents(t, 'sso_connection.deleted', created.id)).length, 1);
      await t.http.get(`/sso/saml/${created.id}/metadata`).expect(404);
    });

    it('a custom attribute mapping is used at sign-in', async () => {
      const s = await samlSetup(t, { connection: { attributeMapping: { email: ['urn:custom:mail'], firstName: ['fn'] } } });
      const address = `custom@${s.domain}`;
      const res = await postAcs(t, s.connection.id, signedResponse(s, 'opaque', { nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', attributes: { 'urn:custom:mail': address, fn: 'Cus' } }).base64).expect(302);
      const ex = await t.http.post('/api/v1/sso/token').set('Authorization', t.adminAuth).send({ code: codeFrom(res.headers.location) }).expect(200);
      assert.equal(ex.body.user.email, address);
      assert.equal(ex.body.profile.firstName, 'Cus');
    });

    it('401 without a token, 403 without sso:manage, 404 for another org or a malformed id', async () => {
      const created = (await t.http.post(url(org.id)).set('Authorization', t.adminAuth).send(fields()).expect(201)).body;
      await t.http.get(url(org.id)).expect(401);
      await t.http.post(url(org.id)).send(fields()).expect(401);
      const { auth: member } = await memberWithSession(t, org.id, 'member');
      for (const req of [
        t.http.get(url(org.id)).set('Authorization', member),
        t.http.post(url(org.id)).set('Authorization', member).send(fields()),
        t.http.patch(url(org.id, `/${created.id}`)).set('Authorization', member).send({ enabled: false }),
        t.http.delete(url(org.id, `/${created.id}`)).set('Authorization', member),
        t.http.put(`/api/v1/orgs/${org.id}/sso-policy`).set('Authorization', member).send({ required: true }),
      ]) {
        const res = await req;
        assert.equal(res.status, 403);
        assert.equal(res.body.error.code, 'forbidden');
      }
      const { auth: admin } = await memberWithSession(t, org.id, 'admin');
      await t.http.get(url(org.id, `/${created.id}`)).set('Authorization', admin).expect(200);
      const other = await insertOrg(t);
      const { auth: otherOwner } = await memberWithSession(t, other.id, 'owner');
      await t.http.get(url(org.id)).set('Authorization', otherOwner).expect(404);
      await t.http.get(url(other.id, `/${created.id}`)).set('Authorization', otherOwner).expect(404);
      await t.http.patch(url(other.id, `/${created.id}`)).set('Authorization', otherOwner).send({ enabled: false }).expect(404);
      await t.http.delete(url(other.id, `/${created.id}`)).set('Authorization', t.adminAuth).expect(404);
      await t.http.get(url(org.id, '/not-a-uuid')).set('Authorization', t.adminAuth).expect(404);
      assert.equal((await t.testDb.db('sso_connections').where({ id: created.id }).first()).enabled, true);
    });

    it('sso-policy: GET/PUT, refused without an enabled connection (409), audited', async () => {
      const fresh = await insertOrg(t);
      const policy = `/api/v1/orgs/${fresh.id}/sso-policy`;
      assert.deepEqual((await t.http.get(policy).set('Authorization', t.adminAuth).expect(200)).body, { required: false });
      const noConn = await t.http.put(policy).set('Authorization', t.adminAuth).send({ required: true }).expect(409);
      assert.equal(noConn.body.error.code, 'sso_policy.no_connection');
      await t.http.put(policy).set('Authorization', t.adminAuth).send({ required: 'yes' }).expect(400);
      await t.http.put(policy).send({ required: true }).expect(401);
      await t.http.post(url(fresh.id)).set('Authorization', t.adminAuth).send(fields()).expect(201);
      assert.deepEqual((await t.http.put(policy).set('Authorization', t.adminAuth).send({ required: true }).expect(200)).body, { required: true });
      const events = await auditEvents(t, 'sso_policy.updated', fresh.id);
      assert.equal(events.length, 1);
      assert.deepEqual([events[0].before.required, events[0].after.required], [false, true]);
      assert.equal((await t.testDb.db('organizations').where({ id: fresh.id }).first()).sso_required, true);
    });

    it('POST /sso/token: service token only, 400 for unknown or expired codes', async () => {
      await t.http.post('/api/v1/sso/token').send({ code: 'x' }).expect(401);
      const { auth } = await memberWithSession(t, org.id, 'owner');
      const res = await t.http.post('/api/v1/sso/token').set('Authorization', auth).send({ code: 'x' }).expect(403);
      assert.equal(res.body.error.code, 'auth.service_token_required');
      await t.http.post('/api/v1/sso/token').set('Authorization', t.adminAuth).send({}).expect(400);
      const unknown = await t.http.post('/api/v1/sso/token').set('Authorization', t.adminAuth).send({ code: 'ssoc_unknown' }).expect(400);
      assert.equal(unknown.body.error.code, 'sso.invalid_code');
      const s = await samlSetup(t);
      const acs = await postAcs(t, s.connection.id, signedResponse(s, `late@${s.domain}`).base64).expect(302);
      await t.testDb.db('sso_codes').where({ connection_id: s.connection.id }).update({ expires_at: new Date(Date.now() - 1000) });
      const expired = await t.http.post('/api/v1/sso/token').set('Authorization', t.adminAuth).send({ code: codeFrom(acs.headers.location) }).expect(400);
      assert.equal(expired.body.error.code, 'sso.invalid_code');
    });
  });
}
