import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SAML, ValidateInResponseTo, type CacheProvider } from '@node-saml/node-saml';
import { readEnvelope } from '../../src/saml/envelope.js';
import { fromNodeSamlError } from '../../src/saml/failures.js';
import { samlFor, spUrls } from '../../src/saml/sp.js';
import {
  ASSERTION_XPATH,
  assertionXml,
  buildResponse,
  generateKeyPair,
  newId,
  responseXml,
  signatureWrapping,
  signElementWith,
  toBase64,
  type ResponseOptions,
  type SignMode,
  type XswVariant,
} from '../helpers/idp.js';

/**
 * ConnectionSaml.validateParsedResponse replaces node-saml's signature location (XPath) with DOM
 * walks and narrows xml-crypto's id lookup to `ID`. Whatever it is given, it must decide as
 * node-saml's own validatePostResponseAsync does: the same profile for what node-saml accepts,
 * a refusal with the same error code for what node-saml refuses.
 */
const memoryCache = (): CacheProvider => {
  const items = new Map<string, string>();
  return {
    saveAsync: async (key, value) => (items.set(key, value), { value, createdAt: Date.now() }),
    getAsync: async (key) => items.get(key) ?? null,
    removeAsync: async (key) => (key !== null && items.delete(key) ? key : null),
  };
};

describe('SAML signature check on the parsed response (against node-saml)', async () => {
  const idp = await generateKeyPair('verified-xml');
  const other = await generateKeyPair('verified-xml-other');
  const { spEntityId, acsUrl } = spUrls('https://sp.test', 'c1');
  const idpEntityId = 'https://idp.test/verified-xml';
  const base: ResponseOptions = { acsUrl, spEntityId, idpEntityId, nameId: 'alice@corp.test' };
  const config = (keyObjects: boolean) => ({
    publicUrl: 'https://sp.test',
    connectionId: 'c1',
    idpEntityId,
    idpSsoUrl: 'https://idp.test/sso',
    idpCertificates: [other.cert, idp.cert],
    spPrivateKey: null,
    spCertificate: null,
    clockSkewMs: 1000,
    cacheProvider: memoryCache(),
    keyObjects,
  });
  const outcome = async (run: () => Promise<{ profile: { nameID?: string } | null }>) => {
    try {
      const { profile } = await run();
      return `accepted ${profile?.nameID}`;
    } catch (err) {
      return `refused ${fromNodeSamlError(err).code}`;
    }
  };
  /** Both paths on one document: node-saml's, and ours on the envelope's parse (with and without decoded keys). */
  async function compare(label: string, xml: string, expected: 'accepted' | 'refused', oursInstead?: string) {
    const b64 = toBase64(xml);
    const theirs = await outcome(() => new SAML({ ...samlOptions(), cacheProvider: memoryCache() }).validatePostResponseAsync({ SAMLResponse: b64 }));
    assert.ok(theirs.startsWith(expected), `${label}: node-saml ${theirs}`);
    for (const keyObjects of [false, true]) {
      const envelope = readEnvelope(b64);
      const ours = await outcome(() => samlFor(config(keyObjects)).validateParsedResponse(envelope.xml, envelope.root, b64));
      assert.equal(ours, oursInstead ?? theirs, `${label} (keyObjects ${keyObjects})`);
    }
  }
  const samlOptions = () => ({
    issuer: spEntityId,
    callbackUrl: acsUrl,
    audience: spEntityId,
    idpCert: [other.cert, idp.cert],
    idpIssuer: idpEntityId,
    wantAssertionsSigned: false,
    wantAuthnResponseSigned: false,
    acceptedClockSkewMs: 1000,
    maxAssertionAgeMs: 0,
    validateInResponseTo: ValidateInResponseTo.ifPresent,
  });

  it('accepts the same signed shapes and refuses the unsigned one', async () => {
    for (const mode of ['assertion', 'response', 'both'] as SignMode[]) await compare(mode, buildResponse(base, idp, mode).xml, 'accepted');
    await compare('unsigned', buildResponse(base, idp, 'none').xml, 'refused');
    await compare('signed by an unknown key', buildResponse(base, await generateKeyPair('stranger'), 'assertion').xml, 'refused');
    // CR LF in the document as sent, where the IdP signed LF (XML parsers normalise line ends before the digest)
    const lf = responseXml(base, assertionXml({ ...base, assertionId: newId() }).replace('<saml:Subject>', '<saml:Subject>\n'));
    await compare('CRLF between elements', signElementWith(lf, idp, ASSERTION_XPATH).replace('\n', '\r\n'), 'accepted');
    await compare('a line break added after signing', buildResponse(base, idp, 'assertion').xml.replace('<saml:Subject>', '<saml:Subject>\r\n'), 'refused');
  });

  it('refuses every XML signature wrapping variant as node-saml does', async () => {
    for (const variant of [1, 2, 3, 4, 5, 6, 7, 8] as XswVariant[]) {
      const { xml } = buildResponse(base, idp, variant <= 2 ? 'response' : 'assertion');
      await compare(`XSW${variant}`, signatureWrapping(variant, xml, 'mallory@corp.test'), 'refused');
    }
  });

  it('refuses another element carrying the signed id under ID, Id, id, iD or a prefixed ID', async () => {
    const { xml, assertionId } = buildResponse(base, idp, 'assertion');
    for (const attr of ['ID', 'Id', 'id', 'iD', 'x:ID']) {
      const ns = attr.startsWith('x:') ? ' xmlns:x="urn:x"' : '';
      const before = xml.replace('<samlp:Status>', `<samlp:Extensions><saml:Assertion${ns} ${attr}="${assertionId}"/></samlp:Extensions><samlp:Status>`);
      await compare(`duplicate ${attr} before the assertion`, before, 'refused');
      const after = xml.replace('</samlp:Response>', `<saml:Advice${ns} ${attr}="${assertionId}"/></samlp:Response>`);
      await compare(`duplicate ${attr} after the assertion`, after, 'refused');
    }
  });

  it('refuses a signed assertion named by Id instead of the ID the SAML schema requires (node-saml accepts it)', async () => {
    const o = { ...base, assertionId: newId() };
    const assertion = assertionXml(o).replace(` ID="${o.assertionId}"`, ` Id="${o.assertionId}"`);
    const signed = signElementWith(responseXml(base, assertion), idp, ASSERTION_XPATH);
    await compare('Id-named assertion', signed, 'accepted', 'refused signature_invalid');
  });

  it('refuses two signatures, a signature below the assertion, a planted foreign reference and a third transform', async () => {
    const { xml } = buildResponse(base, idp, 'assertion');
    const signature = /<Signature\b[\s\S]*?<\/Signature>/.exec(xml)![0];
    await compare('two signatures', xml.replace(signature, signature + signature), 'refused');
    await compare('nested signature', xml.replace(signature, '').replace('<saml:Subject>', `<saml:Subject>${signature}`), 'refused');
    const otherId = newId();
    const withExt = responseXml(base, `<samlp:Extensions ID="${otherId}"><saml:Issuer>${idpEntityId}</saml:Issuer></samlp:Extensions>` + assertionXml({ ...base, assertionId: newId() }));
    const signedOther = signElementWith(withExt, idp, `//*[@ID='${otherId}']`);
    const foreign = /<Signature\b[\s\S]*?<\/Signature>/.exec(signedOther)![0];
    await compare('planted', signedOther.replace(foreign, '').replace(/(<saml:Assertion\b[\s\S]*?<\/saml:Issuer>)/, `$1${foreign}`), 'refused');
    const threeTransforms = signElementWith(responseXml(base, assertionXml({ ...base, assertionId: newId() })), idp, ASSERTION_XPATH, {
      transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    });
    await compare('three transforms', threeTransforms, 'refused');
  });

  it('hands the shapes it does not handle itself (no assertion, two assertions) to node-saml', async () => {
    await compare('no assertion', responseXml(base, ''), 'refused');
    const a = assertionXml({ ...base, assertionId: newId() });
    await compare('two assertions', signElementWith(responseXml(base, a + assertionXml({ ...base, assertionId: newId() })), idp, "/*[local-name(.)='Response']"), 'refused');
  });
});
