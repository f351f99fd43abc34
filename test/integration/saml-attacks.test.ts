import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import {
  ASSERTION_XPATH,
  assertionXml,
  encryptAssertion,
  encryptAssertionWith,
  ENTRA_EMAIL,
  generateKeyPair,
  newId,
  responseXml,
  RESPONSE_XPATH,
  signAssertionIn,
  signatureWrapping,
  signElementWith,
  signResponse,
  signStandaloneAssertion,
  toBase64,
  verifierPem,
  type CustomSignOptions,
  type KeyPair,
  type XswVariant,
} from '../helpers/idp.js';
import { codeFrom, failureReasons, postAcs, RETURN_URL, responseFor, samlSetup, signedResponse, startLogin, type SamlSetup } from '../helpers/saml-fixtures.js';

/**
 * Published SAML attacks against the ACS, one refusal each: the 4xx status, the short error
 * code, one `sso.sign_in_failed` audit event with that reason, and nothing created (no user,
 * membership, session or one-time code). Complements saml-security.test.ts (which has the
 * basic wrong-key, tamper, ad-hoc wrapping, time, audience and replay cases).
 */

const XSLT = 'http://www.w3.org/TR/1999/REC-xslt-19991116';
const XPATH = 'http://www.w3.org/TR/1999/REC-xpath-19991116';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const EXC_C14N_COMMENTS = 'http://www.w3.org/2001/10/xml-exc-c14n#WithComments';
const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

const tables = ['users', 'memberships', 'sessions', 'sso_codes'] as const;
async function counts(t: TestApp): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of tables) out[table] = Number((await t.testDb.db(table).count('* as n').first())!.n);
  return out;
}

type Post = { base64?: string; relayState?: string; raw?: (req: ReturnType<TestApp['http']['post']>) => ReturnType<TestApp['http']['post']> };

/** POSTs to the ACS and checks a clean refusal: status, code, exactly one audit reason, and no side effects. */
async function refused(t: TestApp, s: SamlSetup, post: Post, status: number, code: string, label = code) {
  const reasonsBefore = (await failureReasons(t, s.connection.id)).length;
  const before = await counts(t);
  const req = t.http.post(`/sso/saml/${s.connection.id}/acs`);
  const res = post.raw
    ? await post.raw(req)
    : await req.type('form').send({ SAMLResponse: post.base64!, ...(post.relayState ? { RelayState: post.relayState } : {}) });
  assert.equal(res.status, status, `${label}: expected ${status} ${code}, got ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(res.body?.error?.code, code, `${label}: error code`);
  assert.equal(res.headers.location, undefined, `${label}: no redirect`);
  assert.ok(!JSON.stringify(res.body).includes('    at '), `${label}: no stack trace`);
  assert.deepEqual((await failureReasons(t, s.connection.id)).slice(reasonsBefore), [code], `${label}: one sso.sign_in_failed`);
  assert.deepEqual(await counts(t), before, `${label}: nothing created`);
  return res;
}

for (const backend of testBackends()) {
  describe(`SAML ACS against published attacks [${backend}]`, () => {
    let t: TestApp;
    let s: SamlSetup;
    let attacker: KeyPair;
    let n = 0;
    const email = () => `u${++n}-${Date.now().toString(36)}@${s.domain}`;
    const victim = () => `admin${++n}@${s.domain}`;
    const opts = (nameId: string, extra: Parameters<typeof responseFor>[2] = {}) => responseFor(s, nameId, extra);
    before(async () => {
      t = await createTestApp(backend);
      s = await samlSetup(t);
      attacker = await generateKeyPair('attacker');
    });
    after(() => t.close());

    it('control: a well-formed signed response from the same builders signs in (the refusals below are not artefacts)', async () => {
      const e = email();
      const res = await postAcs(t, s.connection.id, signedResponse(s, e, {}, 'both').base64).expect(302);
      codeFrom(res.headers.location);
      assert.ok(await t.testDb.db('users').where({ email: e }).first());
    });

    describe('XML Signature Wrapping (Somorovsky et al. 2012, XSW1–XSW8)', () => {
      for (const variant of [1, 2, 3, 4, 5, 6, 7, 8] as XswVariant[]) {
        it(`XSW${variant} is refused and signs nobody in`, async () => {
          const legit = email();
          const evil = victim();
          const sign = variant <= 2 ? 'response' : 'assertion';
          const { xml } = signedResponse(s, legit, {}, sign);
          const wrapped = signatureWrapping(variant, xml, evil);
          assert.ok(wrapped.includes(evil) && wrapped.includes(legit), 'both the evil and the signed original are in the document');
          await refused(t, s, { base64: toBase64(wrapped) }, 401, 'signature_invalid', `XSW${variant}`);
          for (const who of [legit, evil]) assert.equal(await t.testDb.db('users').where({ email: who }).first(), undefined);
        });
      }

      it('XSW1/XSW2 with a Response signed on both levels are refused too', async () => {
        for (const variant of [1, 2] as const) {
          const { xml } = signedResponse(s, email(), {}, 'both');
          await refused(t, s, { base64: toBase64(signatureWrapping(variant, xml, victim())) }, 401, 'signature_invalid', `XSW${variant}+both`);
        }
      });
    });

    describe('signature exclusion and reference tricks', () => {
      it('every Signature element stripped from a response signed on both levels', async () => {
        const { xml } = signedResponse(s, email(), {}, 'both');
        const stripped = xml.replace(/<Signature\b[\s\S]*?<\/Signature>/g, '');
        assert.ok(!stripped.includes('Signature'));
        await refused(t, s, { base64: toBase64(stripped) }, 401, 'signature_invalid');
      });

      it('only the assertion signature stripped while the Response carries none', async () => {
        const { xml } = signedResponse(s, email(), {}, 'assertion');
        await refused(t, s, { base64: toBase64(xml.replace(/<Signature\b[\s\S]*?<\/Signature>/, '')) }, 401, 'signature_invalid');
      });

      it('empty SignatureValue, and empty DigestValue', async () => {
        const { xml } = signedResponse(s, email());
        await refused(t, s, { base64: toBase64(xml.replace(/<SignatureValue>[^<]*<\/SignatureValue>/, '<SignatureValue></SignatureValue>')) }, 401, 'signature_invalid', 'empty SignatureValue');
        await refused(t, s, { base64: toBase64(xml.replace(/<SignatureValue>[^<]*<\/SignatureValue>/, '<SignatureValue/>')) }, 401, 'signature_invalid', 'self-closed SignatureValue');
        await refused(t, s, { base64: toBase64(xml.replace(/<DigestValue>[^<]*<\/DigestValue>/, '<DigestValue></DigestValue>')) }, 401, 'signature_invalid', 'empty DigestValue');
      });

      it('a genuine IdP signature over ANOTHER element (Reference URI → other ID) moved into the assertion', async () => {
        // the IdP really signed <Extensions ID=other>; the attacker plants that signature in an unsigned assertion
        const o = opts(victim());
        const otherId = newId();
        const base = responseXml(o, `<samlp:Extensions ID="${otherId}"><saml:Issuer>${o.idpEntityId}</saml:Issuer></samlp:Extensions>` + assertionXml({ ...o, assertionId: newId() }));
        const signedOther = signElementWith(base, s.idp, `//*[@ID='${otherId}']`);
        const signature = /<Signature\b[\s\S]*?<\/Signature>/.exec(signedOther)![0];
        assert.ok(signature.includes(`URI="#${otherId}"`));
        const planted = signedOther.replace(signature, '').replace(/(<saml:Assertion\b[\s\S]*?<\/saml:Issuer>)/, `$1${signature}`);
        await refused(t, s, { base64: toBase64(planted) }, 401, 'signature_invalid');
      });

      it('a second Signature in the assertion, a signature nested below the assertion, and a second Reference', async () => {
        const { xml } = signedResponse(s, victim());
        const signature = /<Signature\b[\s\S]*?<\/Signature>/.exec(xml)![0];
        await refused(t, s, { base64: toBase64(xml.replace(signature, signature + signature)) }, 401, 'signature_invalid', 'two signatures');
        const nested = xml.replace(signature, '').replace('<saml:Subject>', `<saml:Subject>${signature}`);
        await refused(t, s, { base64: toBase64(nested) }, 401, 'signature_invalid', 'nested signature');
        // a genuine IdP signature with two References (the assertion and an Extensions element)
        const o = opts(victim());
        const extId = newId();
        const base = responseXml(o, `<samlp:Extensions ID="${extId}"/>` + assertionXml({ ...o, assertionId: newId() }));
        const twoRefs = signElementWith(base, s.idp, ASSERTION_XPATH, { extraReferenceXpath: `//*[@ID='${extId}']` });
        assert.equal((twoRefs.match(/<Reference /g) ?? []).length, 2);
        await refused(t, s, { base64: toBase64(twoRefs) }, 401, 'signature_invalid', 'two references');
      });

      it('Reference URI="" (whole document) in the assertion signature', async () => {
        const o = opts(victim());
        const xml = signElementWith(responseXml(o, assertionXml({ ...o, assertionId: newId() })), s.idp, ASSERTION_XPATH, { emptyUri: true });
        assert.ok(xml.includes('URI=""'));
        await refused(t, s, { base64: toBase64(xml) }, 401, 'signature_invalid');
      });

      it('two elements with the signed ID (a duplicate in Extensions), and an evil twin whose ID differs only by whitespace', async () => {
        const { xml, assertionId } = signedResponse(s, email());
        const dup = xml.replace('<samlp:Status>', `<samlp:Extensions><saml:Assertion ID="${assertionId}"/></samlp:Extensions><samlp:Status>`);
        await refused(t, s, { base64: toBase64(dup) }, 401, 'signature_invalid', 'duplicate ID');
        // the signed assertion hidden in Extensions; in its place an evil one with ID " <id> " carrying the copied signature
        const signedAssertion = /<saml:Assertion\b[\s\S]*<\/saml:Assertion>/.exec(xml)![0];
        const evil = signedAssertion.replace(`ID="${assertionId}"`, `ID=" ${assertionId} "`).replace(/<saml:NameID([^>]*)>[^<]*</, `<saml:NameID$1>${victim()}<`);
        const twin = xml.replace(signedAssertion, `${evil}`).replace('<samlp:Status>', `<samlp:Extensions>${signedAssertion}</samlp:Extensions><samlp:Status>`);
        await refused(t, s, { base64: toBase64(twin) }, 401, 'signature_invalid', 'whitespace ID');
        // one element with the ID attribute twice (parsers disagree on which one wins): not well-formed
        const twoAttrs = xml.replace(`ID="${assertionId}"`, `ID="${assertionId}" ID="${newId()}"`);
        await refused(t, s, { base64: toBase64(twoAttrs) }, 400, 'malformed_response', 'ID attribute twice');
        const twoIrt = signedResponse(s, email()).xml.replace('<samlp:Response ', '<samlp:Response InResponseTo="_a" InResponseTo="_b" ');
        await refused(t, s, { base64: toBase64(twoIrt) }, 400, 'malformed_response', 'InResponseTo twice');
      });
    });

    describe('key trust: only the configured certificates count', () => {
      it("the attacker's own certificate embedded in KeyInfo/X509Data is ignored", async () => {
        const o = opts(victim());
        const xml = signElementWith(responseXml(o, assertionXml({ ...o, assertionId: newId() })), attacker, ASSERTION_XPATH, { keyInfo: 'x509' });
        assert.ok(xml.includes(attacker.certBase64.slice(0, 60)), 'KeyInfo carries the attacker certificate');
        await refused(t, s, { base64: toBase64(xml) }, 401, 'signature_invalid');
        const both = signElementWith(signElementWith(responseXml(o, assertionXml({ ...o, assertionId: newId() })), attacker, ASSERTION_XPATH), attacker, RESPONSE_XPATH);
        await refused(t, s, { base64: toBase64(both) }, 401, 'signature_invalid', 'both levels by the attacker');
      });

      it("the attacker's raw RSA key in KeyInfo/KeyValue is ignored", async () => {
        const o = opts(victim());
        const xml = signElementWith(responseXml(o, assertionXml({ ...o, assertionId: newId() })), attacker, ASSERTION_XPATH, { keyInfo: 'keyValue' });
        assert.ok(xml.includes('<RSAKeyValue>'));
        await refused(t, s, { base64: toBase64(xml) }, 401, 'signature_invalid');
      });

      it('a valid assertion signed by ANOTHER connection’s IdP (another org) is refused here', async () => {
        const other = await samlSetup(t);
        const e = `x${++n}@${s.domain}`;
        // everything addressed to us, but signed by the other org's IdP key and issued under its entity id
        const res = signedResponse(s, e, { assertionIssuer: other.idpEntityId, responseIssuer: null }, 'assertion', other.idp);
        await refused(t, s, { base64: res.base64 }, 401, 'signature_invalid');
        // the other connection's own, perfectly valid response, replayed to our ACS
        const theirs = signedResponse(other, `y${++n}@${other.domain}`, {}, 'both');
        await refused(t, s, { base64: theirs.base64 }, 401, 'destination_mismatch', 'foreign response');
      });

      it('one IdP key shared by two connections: an assertion for connection B is refused at connection A', async () => {
        const b = await samlSetup(t, { idp: s.idp });
        const forB = signedResponse(b, `z${++n}@${s.domain}`, { destination: null, responseIssuer: null });
        // (node-saml's audience check runs before our issuer check; either refusal is final)
        await refused(t, s, { base64: forB.base64 }, 401, 'audience_mismatch', 'issued for B');
        // same issuer as ours, but Audience and Recipient are B's
        const forBAsUs = signedResponse(s, `w${++n}@${s.domain}`, { audience: b.connection.spEntityId, recipient: b.connection.acsUrl });
        await refused(t, s, { base64: forBAsUs.base64 }, 401, 'audience_mismatch', 'audience of B');
      });
    });

    describe('algorithm attacks', () => {
      const signedWith = (o: CustomSignOptions, nameId = victim(), key: KeyPair = s.idp) => {
        const r = opts(nameId);
        return signElementWith(responseXml(r, assertionXml({ ...r, assertionId: newId() })), key, ASSERTION_XPATH, o);
      };

      it('HMAC-SHA1 keyed with the IdP certificate (key confusion) is refused', async () => {
        for (const hmacKey of [verifierPem(s.idp.cert), s.idp.cert, s.idp.certBase64]) {
          const xml = signedWith({ hmacKey, signatureAlgorithm: 'http://www.w3.org/2000/09/xmldsig#hmac-sha1' });
          assert.ok(xml.includes('hmac-sha1'));
          await refused(t, s, { base64: toBase64(xml) }, 401, 'signature_invalid', 'hmac');
        }
      });

      it('unknown or "none" SignatureMethod, DigestMethod and CanonicalizationMethod URIs are refused', async () => {
        const { xml } = signedResponse(s, victim());
        const swaps: [RegExp, string][] = [
          [/(<SignatureMethod Algorithm=")[^"]+/, '$1http://www.w3.org/2000/09/xmldsig#none'],
          [/(<SignatureMethod Algorithm=")[^"]+/, '$1http://www.w3.org/2001/04/xmldsig-more#rsa-md5'],
          [/(<SignatureMethod Algorithm=")[^"]+/, '$1'],
          [/(<DigestMethod Algorithm=")[^"]+/, '$1http://www.w3.org/2001/04/xmldsig-more#md5'],
          [/(<CanonicalizationMethod Algorithm=")[^"]+/, '$1urn:evil:c14n'],
        ];
        for (const [pattern, replacement] of swaps) {
          const changed = xml.replace(pattern, replacement);
          assert.notEqual(changed, xml);
          await refused(t, s, { base64: toBase64(changed) }, 401, 'signature_invalid', replacement);
        }
      });

      it('an XPath transform selecting nothing (digest over empty content) is refused, even when genuinely signed', async () => {
        // signed with the IdP key: if the verifier ran this transform, any assertion content would match the digest
        const xml = signedWith({ transforms: [ENVELOPED, XPATH], customTransforms: { [XPATH]: () => '' } });
        assert.ok(xml.includes(XPATH));
        await refused(t, s, { base64: toBase64(xml) }, 401, 'signature_invalid', 'empty xpath');
      });

      it('an XSLT transform (with a stylesheet that would fetch a URL) is refused without being run', async () => {
        const { xml } = signedResponse(s, victim());
        const stylesheet =
          `<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0">` +
          `<xsl:template match="/"><xsl:copy-of select="document('http://127.0.0.1:9/xslt-was-run')"/></xsl:template></xsl:stylesheet>`;
        const xslt = xml.replace(`<Transform Algorithm="${EXC_C14N}"/>`, `<Transform Algorithm="${XSLT}">${stylesheet}</Transform>`);
        assert.notEqual(xslt, xml);
        await refused(t, s, { base64: toBase64(xslt) }, 401, 'signature_invalid', 'xslt');
        // genuinely signed with an XSLT transform: refused as unsupported
        const signed = signedWith({ transforms: [ENVELOPED, XSLT], customTransforms: { [XSLT]: () => '<x/>' } });
        await refused(t, s, { base64: toBase64(signed) }, 401, 'signature_invalid', 'signed xslt');
      });

      it('enveloped-signature transform missing, doubled, or a third transform added', async () => {
        // without enveloped-signature the digest covers the signature itself and can never match
        await refused(t, s, { base64: toBase64(signedWith({ transforms: [EXC_C14N] })) }, 401, 'signature_invalid', 'no enveloped');
        const { xml } = signedResponse(s, victim());
        const tripled = xml.replace(`<Transform Algorithm="${EXC_C14N}"/>`, `<Transform Algorithm="${ENVELOPED}"/><Transform Algorithm="${EXC_C14N}"/>`);
        await refused(t, s, { base64: toBase64(tripled) }, 401, 'signature_invalid', 'three transforms');
        const doubled = signedWith({ transforms: [ENVELOPED, ENVELOPED] });
        // genuinely signed this way the content is intact, so it may only be accepted as the signed subject itself
        const res = await postAcs(t, s.connection.id, toBase64(doubled.replace(/<saml:NameID([^>]*)>[^<]*</, `<saml:NameID$1>${victim()}<`)));
        assert.equal(res.status, 401, 'edited after signing: refused');
      });

      it('c14n WithComments: a comment injected after signing still yields the full signed value', async () => {
        // the IdP signed "victim@<ours>.evil.com"; the truncated text before the comment would be a verified address
        const signedValue = `boss${++n}@${s.domain}.evil.com`;
        const xml = signedWith({ transforms: [ENVELOPED, EXC_C14N_COMMENTS], canonicalizationAlgorithm: EXC_C14N_COMMENTS }, signedValue);
        const injected = xml.replace(`>${signedValue}<`, `>boss${n}@${s.domain}<!---->.evil.com<`);
        assert.notEqual(injected, xml);
        await refused(t, s, { base64: toBase64(injected) }, 403, 'domain_not_verified', 'comments');
        assert.equal(await t.testDb.db('users').where({ email: `boss${n}@${s.domain}` }).first(), undefined);
      });
    });

    describe('XML parsing tricks inside signed content', () => {
      /** The IdP signs `<local>@<our domain>.evil.com`; a reader that stops at the trick would see a verified `<local>@<our domain>`. */
      const truncationTarget = () => {
        const local = `ceo${++n}`;
        return { local, full: `${local}@${s.domain}.evil.com`, truncated: `${local}@${s.domain}` };
      };

      it('comment injection in an email attribute value reads the whole signed value', async () => {
        const { full, truncated } = truncationTarget();
        const { xml } = signedResponse(s, 'opaque-subject', { nameIdFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', attributes: { [ENTRA_EMAIL]: full } });
        const injected = xml.replace(`>${full}<`, `>${truncated}<!---->.evil.com<`);
        assert.notEqual(injected, xml);
        await refused(t, s, { base64: toBase64(injected) }, 403, 'domain_not_verified');
        assert.equal(await t.testDb.db('users').where({ email: truncated }).first(), undefined);
      });

      it('comment injection in NameID (refused as the full, unverified address, never the truncated one)', async () => {
        const { full, truncated } = truncationTarget();
        const { xml } = signedResponse(s, full);
        await refused(t, s, { base64: toBase64(xml.replace(`>${full}<`, `>${truncated}<!-- x -->.evil.com<`)) }, 403, 'domain_not_verified');
        assert.equal(await t.testDb.db('users').where({ email: truncated }).first(), undefined);
      });

      it('comment injection in the assertion Issuer: the whole issuer is compared', async () => {
        // an issuer "<ours>.evil" signed by a trusted key; truncated at the comment it would equal our IdP's entity id
        const evilIssuer = `${s.idpEntityId}.evil`;
        const { xml } = signedResponse(s, email(), { assertionIssuer: evilIssuer, responseIssuer: null });
        const injected = xml.replace(`>${evilIssuer}<`, `>${s.idpEntityId}<!---->.evil<`);
        assert.notEqual(injected, xml);
        await refused(t, s, { base64: toBase64(injected) }, 401, 'issuer_mismatch');
      });

      it('a comment in the (unsigned) Response Issuer is read as the whole text too', async () => {
        const { xml } = signedResponse(s, email(), { responseIssuer: `${s.idpEntityId}.evil` });
        const injected = xml.replace(`>${s.idpEntityId}.evil<`, `>${s.idpEntityId}<!---->.evil<`);
        await refused(t, s, { base64: toBase64(injected) }, 401, 'issuer_mismatch');
      });

      it('a processing instruction inserted in NameID breaks the signature (c14n keeps PIs)', async () => {
        const { full, truncated } = truncationTarget();
        const { xml } = signedResponse(s, full);
        await refused(t, s, { base64: toBase64(xml.replace(`>${full}<`, `>${truncated}<?evil x?>.evil.com<`)) }, 401, 'signature_invalid');
      });

      it('CDATA splitting and character references keep the signature but are read as the full value', async () => {
        for (const rewrite of [
          (v: { truncated: string }) => `${v.truncated}<![CDATA[.evil.com]]>`,
          (v: { truncated: string }) => `${v.truncated}&#46;evil&#x2E;com`,
        ]) {
          const target = truncationTarget();
          const { xml } = signedResponse(s, target.full);
          await refused(t, s, { base64: toBase64(xml.replace(`>${target.full}<`, `>${rewrite(target)}<`)) }, 403, 'domain_not_verified');
          assert.equal(await t.testDb.db('users').where({ email: target.truncated }).first(), undefined);
        }
      });

      it('an undeclared entity reference is refused as malformed', async () => {
        const { xml } = signedResponse(s, email());
        await refused(t, s, { base64: toBase64(xml.replace('</saml:NameID>', '&evil;</saml:NameID>')) }, 400, 'malformed_response');
      });

      it('DOCTYPE with internal entities (billion laughs), external entities (XXE) and a parameter entity are refused', async () => {
        const { xml } = signedResponse(s, email());
        const laughs =
          `<?xml version="1.0"?><!DOCTYPE samlp:Response [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">` +
          `<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>`;
        const variants = {
          laughs: laughs + xml.replace('</saml:NameID>', '&d;</saml:NameID>'),
          xxe: `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>${xml.replace('</saml:NameID>', '&x;</saml:NameID>')}`,
          parameter: `<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>${xml}`,
          lowercase: `<!doctype r>${xml}`,
        };
        for (const [label, doc] of Object.entries(variants)) await refused(t, s, { base64: toBase64(doc) }, 400, 'doctype_forbidden', label);
        // the same DOCTYPE in UTF-16: never decoded into something a parser would expand
        const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(variants.xxe.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>'), 'utf16le')]);
        await refused(t, s, { base64: utf16.toString('base64') }, 400, 'malformed_response', 'utf-16');
      });

      it('XInclude is never processed: an xi:include in the signed NameID yields no email, not a file', async () => {
        const o = opts('placeholder', { nameIdFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress' });
        const assertion = assertionXml({ ...o, assertionId: newId() }).replace(
          '>placeholder</saml:NameID>',
          '><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/hostname" parse="text"/></saml:NameID>',
        );
        const xml = signAssertionIn(responseXml(o, assertion), s.idp);
        await refused(t, s, { base64: toBase64(xml) }, 403, 'email_missing');
      });
    });

    describe('encrypted assertions', () => {
      it('an EncryptedAssertion wrapping an UNSIGNED assertion in an unsigned Response is refused', async () => {
        const o = opts(victim());
        const encrypted = await encryptAssertion(assertionXml({ ...o, assertionId: newId() }), s.connection.spCertificate);
        // refused; for encrypted responses every failure up to the signature check has one code (no decryption oracle)
        const res = await refused(t, s, { base64: toBase64(responseXml(o, encrypted)) }, 401, 'decryption_failed');
        assert.match(res.body.error.message, /decrypted and verified/);
        const [event] = await t.testDb.db('audit_events').where({ action: 'sso.sign_in_failed', target_id: s.connection.id }).orderBy('id', 'desc').limit(1);
        assert.equal(event.after.cause, 'signature_invalid', 'the audit keeps the real cause');
        // ... or in a Response signed by the attacker
        await refused(t, s, { base64: toBase64(signResponse(responseXml(o, encrypted), attacker)) }, 401, 'decryption_failed', 'attacker-signed response');
      });

      it('an encrypted assertion signed by the attacker is refused', async () => {
        const o = opts(victim());
        const encrypted = await encryptAssertion(signStandaloneAssertion(assertionXml({ ...o, assertionId: newId() }), attacker), s.connection.spCertificate);
        await refused(t, s, { base64: toBase64(responseXml(o, encrypted)) }, 401, 'decryption_failed');
        // encrypted and signed correctly, but for another audience: checks after the signature keep their codes
        const other = await encryptAssertion(signStandaloneAssertion(assertionXml({ ...o, audience: 'https://other-sp.test', assertionId: newId() }), s.idp), s.connection.spCertificate);
        await refused(t, s, { base64: toBase64(responseXml(o, other)) }, 401, 'audience_mismatch');
      });

      it('junk ciphertext (padding-oracle probing) gets one generic error whatever the junk', async () => {
        const o = opts(victim());
        const encrypted = await encryptAssertion(signStandaloneAssertion(assertionXml({ ...o, assertionId: newId() }), s.idp), s.connection.spCertificate);
        const cipherValues = [...encrypted.matchAll(/<(?:\w+:)?CipherValue>([^<]+)<\/(?:\w+:)?CipherValue>/g)].map((m) => m[1]!);
        assert.equal(cipherValues.length, 2, 'key and data ciphertexts');
        const flip = (b64: string, at: number) => {
          const bytes = Buffer.from(b64, 'base64');
          const i = at % bytes.length;
          bytes[i] = bytes[i]! ^ 0x01;
          return bytes.toString('base64');
        };
        const messages = new Set<string>();
        const probes = [
          encrypted.replace(cipherValues[0]!, flip(cipherValues[0]!, 5)), // wrapped key
          encrypted.replace(cipherValues[0]!, Buffer.alloc(256, 1).toString('base64')),
          encrypted.replace(cipherValues[1]!, flip(cipherValues[1]!, 40)), // data (GCM tag fails)
          encrypted.replace(cipherValues[1]!, flip(cipherValues[1]!, Buffer.from(cipherValues[1]!, 'base64').length - 1)),
          encrypted.replace(cipherValues[1]!, 'AAAA'),
        ];
        for (const [i, probe] of probes.entries()) {
          const res = await refused(t, s, { base64: toBase64(responseXml(o, probe)) }, 401, 'decryption_failed', `probe ${i}`);
          messages.add(res.body.error.message);
        }
        assert.equal(messages.size, 1, 'one message for every kind of junk');
      });

      it('AES-CBC: a padding error and a junk plaintext (parse error) answer alike (no padding oracle)', async () => {
        const o = opts(victim());
        const signed = signStandaloneAssertion(assertionXml({ ...o, assertionId: newId() }), s.idp);
        const cbc = await encryptAssertionWith(signed, s.connection.spCertificate, 'http://www.w3.org/2001/04/xmlenc#aes256-cbc');
        // sanity: untampered, the CBC-encrypted assertion is accepted
        const e = email();
        const legit = await encryptAssertionWith(signStandaloneAssertion(assertionXml({ ...opts(e), assertionId: newId() }), s.idp), s.connection.spCertificate, 'http://www.w3.org/2001/04/xmlenc#aes256-cbc');
        await postAcs(t, s.connection.id, toBase64(responseXml(opts(e), legit))).expect(302);
        const data = [...cbc.matchAll(/<(?:\w+:)?CipherValue>([^<]+)<\/(?:\w+:)?CipherValue>/g)].map((m) => m[1]!)[1]!;
        const bytes = Buffer.from(data, 'base64');
        const tamper = (at: number, mask: number) => {
          const b = Buffer.from(bytes);
          b[at] = b[at]! ^ mask;
          return cbc.replace(data, b.toString('base64'));
        };
        const bodies = new Set<string>();
        for (const [label, probe] of [
          ['padding broken (last byte)', tamper(bytes.length - 1, 0xff)],
          ['plaintext garbled (IV flip: decrypts, does not parse)', tamper(2, 0x80)],
          ['block in the middle garbled', tamper(64, 0x55)],
        ] as const) {
          const res = await refused(t, s, { base64: toBase64(responseXml(o, probe)) }, 401, 'decryption_failed', label);
          bodies.add(JSON.stringify(res.body));
        }
        assert.equal(bodies.size, 1, 'identical answers');
      });
    });

    describe('response and assertion confusion', () => {
      it('an assertion with several AudienceRestriction elements must satisfy every one of them', async () => {
        const e = email();
        const o = opts(e);
        const twoRestrictions = assertionXml({ ...o, assertionId: newId() }).replace(
          '</saml:AudienceRestriction>',
          '</saml:AudienceRestriction><saml:AudienceRestriction><saml:Audience>https://other-sp.test</saml:Audience></saml:AudienceRestriction>',
        );
        await refused(t, s, { base64: toBase64(signAssertionIn(responseXml(o, twoRestrictions), s.idp)) }, 401, 'audience_mismatch');
        // several Audience values in ONE restriction: any of them (ours among them) suffices
        const oneOfSeveral = assertionXml({ ...o, assertionId: newId() }).replace('<saml:Audience>', '<saml:Audience>https://other-sp.test</saml:Audience><saml:Audience>');
        await postAcs(t, s.connection.id, toBase64(signAssertionIn(responseXml(o, oneOfSeveral), s.idp))).expect(302);
      });

      it('Conditions without any AudienceRestriction is refused', async () => {
        const o = opts(email());
        const none = assertionXml({ ...o, assertionId: newId() }).replace(/<saml:AudienceRestriction>[\s\S]*<\/saml:AudienceRestriction>/, '');
        await refused(t, s, { base64: toBase64(signAssertionIn(responseXml(o, none), s.idp)) }, 401, 'audience_mismatch');
      });

      it('a SubjectConfirmation method other than bearer (holder-of-key, sender-vouches) is refused', async () => {
        for (const method of ['urn:oasis:names:tc:SAML:2.0:cm:holder-of-key', 'urn:oasis:names:tc:SAML:2.0:cm:sender-vouches']) {
          const o = opts(victim());
          const assertion = assertionXml({ ...o, assertionId: newId() }).replace(BEARER, method);
          await refused(t, s, { base64: toBase64(signAssertionIn(responseXml(o, assertion), s.idp)) }, 401, 'subject_confirmation_invalid', method);
        }
      });

      it('bearer SubjectConfirmationData without NotOnOrAfter is refused (SAML profiles §4.1.4.2)', async () => {
        const o = opts(victim());
        const assertion = assertionXml({ ...o, assertionId: newId() }).replace(/(<saml:SubjectConfirmationData) NotOnOrAfter="[^"]+"/, '$1');
        assert.ok(!/SubjectConfirmationData[^>]*NotOnOrAfter/.test(assertion));
        // node-saml trips over the missing time first; sign-in.ts refuses it too (subject_confirmation_invalid)
        await refused(t, s, { base64: toBase64(signAssertionIn(responseXml(o, assertion), s.idp)) }, 401, 'invalid_time_condition');
      });

      it('bearer SubjectConfirmationData with an unparseable NotOnOrAfter is refused', async () => {
        const o = opts(victim());
        const assertion = assertionXml({ ...o, assertionId: newId() }).replace(/(<saml:SubjectConfirmationData) NotOnOrAfter="[^"]+"/, '$1 NotOnOrAfter="someday"');
        await refused(t, s, { base64: toBase64(signAssertionIn(responseXml(o, assertion), s.idp)) }, 401, 'invalid_time_condition');
      });

      it('bearer SubjectConfirmationData carrying NotBefore is refused (SAML profiles §4.1.4.2: MUST NOT)', async () => {
        const o = opts(victim());
        const past = new Date(Date.now() - 60_000).toISOString();
        const assertion = assertionXml({ ...o, assertionId: newId() }).replace('<saml:SubjectConfirmationData ', `<saml:SubjectConfirmationData NotBefore="${past}" `);
        await refused(t, s, { base64: toBase64(signAssertionIn(responseXml(o, assertion), s.idp)) }, 401, 'subject_confirmation_invalid');
      });

      it('an assertion without AuthnStatement is refused (SAML profiles §4.1.4.2)', async () => {
        const o = opts(victim());
        const assertion = assertionXml({ ...o, assertionId: newId() }).replace(/<saml:AuthnStatement\b[\s\S]*<\/saml:AuthnStatement>/, '');
        assert.ok(!assertion.includes('AuthnStatement'));
        await refused(t, s, { base64: toBase64(signAssertionIn(responseXml(o, assertion), s.idp)) }, 401, 'authn_statement_missing');
      });

      it('SAML versions other than 2.0 (Response or signed Assertion) are refused', async () => {
        for (const version of ['1.1', '3.0']) {
          const { xml } = signedResponse(s, victim());
          const changed = xml.replace(/(<samlp:Response [^>]*?)Version="2.0"/, `$1Version="${version}"`);
          assert.notEqual(changed, xml);
          await refused(t, s, { base64: toBase64(changed) }, 400, 'version_mismatch', `Response ${version}`);
        }
        const { xml } = signedResponse(s, victim());
        await refused(t, s, { base64: toBase64(xml.replace(/(<samlp:Response [^>]*?) Version="2.0"/, '$1')) }, 400, 'version_mismatch', 'no Version');
        const o = opts(victim());
        const assertion = assertionXml({ ...o, assertionId: newId() }).replace('Version="2.0"', 'Version="1.1"');
        await refused(t, s, { base64: toBase64(signAssertionIn(responseXml(o, assertion), s.idp)) }, 400, 'version_mismatch', 'signed Assertion 1.1');
      });

      it('a signed Response without Destination is refused (SAML bindings §3.5.5.2); unsigned it may omit it', async () => {
        await refused(t, s, { base64: signedResponse(s, victim(), { destination: null }, 'both').base64 }, 401, 'destination_mismatch');
        await postAcs(t, s.connection.id, signedResponse(s, email(), { destination: null }, 'assertion').base64).expect(302);
      });

      it('Conditions/OneTimeUse: accepted once, the replay refused', async () => {
        const o = opts(email());
        const assertion = assertionXml({ ...o, assertionId: newId() }).replace('</saml:AudienceRestriction>', '</saml:AudienceRestriction><saml:OneTimeUse/>');
        const base64 = toBase64(signAssertionIn(responseXml(o, assertion), s.idp));
        await postAcs(t, s.connection.id, base64).expect(302);
        await refused(t, s, { base64 }, 401, 'replayed');
      });

      it('status: only the top-level StatusCode counts; a nested Success under an error is an error', async () => {
        const nestedSuccess = signedResponse(s, victim()).xml.replace(
          /<samlp:StatusCode Value="[^"]+"\/>/,
          '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:StatusCode>',
        );
        await refused(t, s, { base64: toBase64(nestedSuccess) }, 401, 'idp_status_error', 'Responder>Success');
        // Success carrying a second-level code is still Success (core §3.2.2.2): the assertion is what is judged
        const e = email();
        const successWithDetail = signedResponse(s, e).xml.replace(
          /<samlp:StatusCode Value="([^"]+)"\/>/,
          '<samlp:StatusCode Value="$1"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:RequestDenied"/></samlp:StatusCode>',
        );
        await postAcs(t, s.connection.id, toBase64(successWithDetail)).expect(302);
        // two top-level StatusCodes, or two Status elements: malformed
        const twoCodes = signedResponse(s, victim()).xml.replace(/(<samlp:StatusCode Value="[^"]+"\/>)/, '$1<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"/>');
        await refused(t, s, { base64: toBase64(twoCodes) }, 400, 'malformed_response', 'two StatusCodes');
        const twoStatus = signedResponse(s, victim()).xml.replace(/(<samlp:Status>[\s\S]*?<\/samlp:Status>)/, '$1$1');
        await refused(t, s, { base64: toBase64(twoStatus) }, 400, 'malformed_response', 'two Status');
      });
    });

    describe('replay', () => {
      it('the same signed assertion in a new Response (new ID, re-signed by the IdP) is refused as a replay', async () => {
        const e = email();
        const o = opts(e);
        const signedAssertion = signStandaloneAssertion(assertionXml({ ...o, assertionId: newId() }), s.idp);
        await postAcs(t, s.connection.id, toBase64(responseXml(o, signedAssertion))).expect(302);
        await refused(t, s, { base64: toBase64(responseXml({ ...o, responseId: newId() }, signedAssertion)) }, 401, 'replayed', 'new wrapper');
        await refused(t, s, { base64: toBase64(signResponse(responseXml({ ...o, responseId: newId() }, signedAssertion), s.idp)) }, 401, 'replayed', 're-signed wrapper');
      });

      it('an unsolicited assertion wrapped in a Response claiming to answer our pending request is refused', async () => {
        // the signed assertion carries no InResponseTo, the (unsigned) Response claims one: the binding is not signed
        const { requestId, relayState } = await startLogin(t, s.connection.id);
        const o = opts(victim());
        const assertion = signStandaloneAssertion(assertionXml({ ...o, assertionId: newId() }), s.idp);
        await refused(t, s, { base64: toBase64(responseXml({ ...o, inResponseTo: requestId }, assertion)), relayState }, 401, 'in_response_to_invalid');
      });

      it('RelayState is never a redirect target: IdP-initiated with a URL RelayState goes to the default return URL', async () => {
        for (const relayState of ['https://evil.com/', '//evil.com', 'javascript:alert(1)']) {
          const res = await postAcs(t, s.connection.id, signedResponse(s, email()).base64, relayState).expect(302);
          const location = new URL(res.headers.location!);
          assert.equal(`${location.origin}${location.pathname}`, RETURN_URL, relayState);
        }
      });

      it('SP-initiated: a RelayState of another pending request is refused', async () => {
        const mine = await startLogin(t, s.connection.id);
        const theirs = await startLogin(t, s.connection.id);
        const { base64 } = signedResponse(s, victim(), { inResponseTo: mine.requestId });
        await refused(t, s, { base64, relayState: theirs.relayState }, 401, 'relay_state_mismatch');
      });

      it('returnTo open-redirect variants are refused at /login (no request is stored)', async () => {
        const variants = [
          '//evil.com/sso/callback',
          'https://app.example.com.evil.com/sso/callback',
          'https://evil.com/sso/callback',
          'javascript:alert(1)//app.example.com/sso/callback',
          'https:\\\\evil.com/sso/callback',
          'https://app.example.com\\@evil.com/sso/callback',
          'https://app.example.com@evil.com/sso/callback',
          'https://evil.com%2F@app.example.com/sso/callback',
          'https%3A%2F%2Fevil.com%2Fsso%2Fcallback',
          'http://app.example.com/sso/callback',
          'https://app.example.com/sso/callback/../../evil',
          '/sso/callback',
          ' https://evil.com/sso/callback',
          'data:text/html,<script>alert(1)</script>',
        ];
        const stored = async () => Number((await t.testDb.db('saml_requests').count('* as n').first())!.n);
        const before = await stored();
        for (const returnTo of variants) {
          const res = await t.http.get(`/sso/saml/${s.connection.id}/login`).query({ returnTo });
          assert.equal(res.status, 400, `${returnTo}: ${res.status} ${res.headers.location ?? ''}`);
          assert.equal(res.body.error.code, 'return_url_not_allowed', returnTo);
        }
        assert.equal(await stored(), before);
      });
    });

    describe('HTTP binding abuse', () => {
      it('GET on the ACS (Redirect binding) is refused with 405 and Allow: POST', async () => {
        const before = (await failureReasons(t, s.connection.id)).length;
        const res = await t.http.get(`/sso/saml/${s.connection.id}/acs`).query({ SAMLResponse: signedResponse(s, victim()).base64 });
        assert.equal(res.status, 405);
        assert.equal(res.headers.allow, 'POST');
        assert.equal(res.body.error.code, 'method_not_allowed');
        assert.deepEqual((await failureReasons(t, s.connection.id)).slice(before), ['method_not_allowed']);
      });

      it('a JSON or multipart body is refused (the POST binding is form-encoded)', async () => {
        const { base64 } = signedResponse(s, victim());
        await refused(t, s, { raw: (r) => r.set('Content-Type', 'application/json').send(JSON.stringify({ SAMLResponse: base64 })) }, 400, 'unsupported_content_type', 'json');
        await refused(t, s, { raw: (r) => r.field('SAMLResponse', base64) }, 400, 'unsupported_content_type', 'multipart');
        await refused(t, s, { raw: (r) => r.set('Content-Type', 'text/xml').send(Buffer.from(base64, 'base64').toString()) }, 400, 'unsupported_content_type', 'raw xml');
      });

      it('SAMLResponse that is not base64 (raw XML, base64url, junk) is refused', async () => {
        const { xml, base64 } = signedResponse(s, victim());
        await refused(t, s, { base64: xml }, 400, 'malformed_response', 'raw xml');
        await refused(t, s, { base64: Buffer.from(xml).toString('base64url') }, 400, 'malformed_response', 'base64url');
        await refused(t, s, { base64: `${base64.slice(0, 100)}!!${base64.slice(100)}` }, 400, 'malformed_response', 'junk');
        await refused(t, s, { base64: '' }, 400, 'malformed_response', 'empty');
      });

      it('base64 wrapped in lines (76 columns, CRLF or LF, as IdPs send it) is accepted', async () => {
        for (const eol of ['\r\n', '\n']) {
          const e = email();
          const wrapped = signedResponse(s, e).base64.match(/.{1,76}/g)!.join(eol);
          await postAcs(t, s.connection.id, wrapped).expect(302);
          assert.ok(await t.testDb.db('users').where({ email: e }).first());
        }
      });

      it('a deflated (Redirect-binding encoded) response posted to the POST ACS is refused', async () => {
        const { xml } = signedResponse(s, victim());
        await refused(t, s, { base64: deflateRawSync(Buffer.from(xml)).toString('base64') }, 400, 'malformed_response');
      });

      it('several SAMLResponse (or RelayState) parameters are refused as malformed, not read as "missing"', async () => {
        const a = signedResponse(s, victim()).base64;
        const b = signedResponse(s, email()).base64;
        await refused(t, s, { raw: (r) => r.type('form').send(`SAMLResponse=${encodeURIComponent(a)}&SAMLResponse=${encodeURIComponent(b)}`) }, 400, 'malformed_request', 'two SAMLResponse');
        await refused(t, s, { raw: (r) => r.type('form').send(`SAMLResponse=${encodeURIComponent(b)}&RelayState=x&RelayState=y`) }, 400, 'malformed_request', 'two RelayState');
        await refused(t, s, { raw: (r) => r.type('form').send('RelayState=x') }, 400, 'missing_response', 'none');
        const many = Array.from({ length: 50 }, (_, i) => `p${i}=1`).join('&');
        await refused(t, s, { raw: (r) => r.type('form').send(`SAMLResponse=${encodeURIComponent(b)}&${many}`) }, 400, 'malformed_request', 'too many parameters');
      });

      it('a huge number of attributes: refused with 413 past the size limit, handled quickly below it', async () => {
        const attrs = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`urn:attr:${i}`, `value-${i}-${'v'.repeat(20)}`]));
        const tooMany = signedResponse(s, victim(), { attributes: attrs(40_000) });
        assert.ok(tooMany.base64.length > 2 * 1024 * 1024);
        await refused(t, s, { base64: tooMany.base64 }, 413, 'too_large');
        const e = email();
        const started = Date.now();
        await postAcs(t, s.connection.id, signedResponse(s, e, { attributes: attrs(5_000) }).base64).expect(302);
        assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
      });
    });
  });
}
