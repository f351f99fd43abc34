import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { generate } from 'selfsigned';
import { SignedXml } from 'xml-crypto';

/**
 * A test identity provider: its own key pair and self-signed certificate (generated per run),
 * SAML 2.0 Responses written as XML strings, signed with xml-crypto (RSA-SHA256, exc-c14n,
 * enveloped signature placed right after the Issuer) and optionally encrypted to the SP's
 * certificate with xml-encryption, the way Okta and Entra ID do it.
 */
const xmlenc = createRequire(import.meta.url)('xml-encryption') as {
  encrypt(content: string, options: Record<string, unknown>, cb: (err: Error | null, result?: string) => void): void;
};

export const NS = {
  samlp: 'urn:oasis:names:tc:SAML:2.0:protocol',
  saml: 'urn:oasis:names:tc:SAML:2.0:assertion',
};
export const EMAIL_FORMAT = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
export const ENTRA_EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
export const ENTRA_GIVEN = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname';
export const ENTRA_SURNAME = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname';
export const ENTRA_GROUPS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups';

export type KeyPair = { privateKey: string; cert: string; certBase64: string };

export async function generateKeyPair(cn = 'test-idp'): Promise<KeyPair> {
  const keyPair = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const pems = await generate([{ name: 'commonName', value: cn }], { keyPair, algorithm: 'sha256' });
  return { privateKey: pems.private, cert: pems.cert, certBase64: pemBody(pems.cert) };
}

export const pemBody = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
export const newId = () => `_${randomBytes(16).toString('hex')}`;
const iso = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString();
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export type ResponseOptions = {
  acsUrl: string;
  spEntityId: string;
  idpEntityId: string;
  nameId: string;
  nameIdFormat?: string;
  attributes?: Record<string, string | string[]>;
  inResponseTo?: string;
  /** override Response@Destination (null: omit) */
  destination?: string | null;
  recipient?: string;
  audience?: string;
  /** Response Issuer (null: omit); defaults to idpEntityId */
  responseIssuer?: string | null;
  assertionIssuer?: string;
  /** Conditions window relative to now */
  notBeforeMs?: number;
  notOnOrAfterMs?: number;
  statusCode?: string;
  assertionId?: string;
  responseId?: string;
};

export function assertionXml(o: ResponseOptions & { assertionId: string }): string {
  const attrs = Object.entries(o.attributes ?? {})
    .map(([name, value]) => {
      const values = (Array.isArray(value) ? value : [value]).map((v) => `<saml:AttributeValue>${esc(v)}</saml:AttributeValue>`).join('');
      return `<saml:Attribute Name="${esc(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">${values}</saml:Attribute>`;
    })
    .join('');
  const notBefore = iso(o.notBeforeMs ?? -60_000);
  const notOnOrAfter = iso(o.notOnOrAfterMs ?? 5 * 60_000);
  const irt = o.inResponseTo ? ` InResponseTo="${esc(o.inResponseTo)}"` : '';
  return (
    `<saml:Assertion xmlns:saml="${NS.saml}" ID="${o.assertionId}" Version="2.0" IssueInstant="${iso(0)}">` +
    `<saml:Issuer>${esc(o.assertionIssuer ?? o.idpEntityId)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="${o.nameIdFormat ?? EMAIL_FORMAT}">${esc(o.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">` +
    `<saml:SubjectConfirmationData NotOnOrAfter="${notOnOrAfter}" Recipient="${esc(o.recipient ?? o.acsUrl)}"${irt}/>` +
    `</saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}">` +
    `<saml:AudienceRestriction><saml:Audience>${esc(o.audience ?? o.spEntityId)}</saml:Audience></saml:AudienceRestriction>` +
    `</saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(0)}" SessionIndex="${newId()}"><saml:AuthnContext>` +
    `<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>` +
    `</saml:AuthnContext></saml:AuthnStatement>` +
    (attrs ? `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` : '') +
    `</saml:Assertion>`
  );
}

/** The Response around an assertion (or any inner XML, for wrapping attacks). */
export function responseXml(o: ResponseOptions, inner: string): string {
  const destination = o.destination === undefined ? o.acsUrl : o.destination;
  const issuer = o.responseIssuer === undefined ? o.idpEntityId : o.responseIssuer;
  return (
    `<samlp:Response xmlns:samlp="${NS.samlp}" xmlns:saml="${NS.saml}" ID="${o.responseId ?? newId()}" Version="2.0" IssueInstant="${iso(0)}"` +
    (destination === null ? '' : ` Destination="${esc(destination)}"`) +
    (o.inResponseTo ? ` InResponseTo="${esc(o.inResponseTo)}"` : '') +
    `>` +
    (issuer === null ? '' : `<saml:Issuer>${esc(issuer)}</saml:Issuer>`) +
    `<samlp:Status><samlp:StatusCode Value="${o.statusCode ?? 'urn:oasis:names:tc:SAML:2.0:status:Success'}"/></samlp:Status>` +
    inner +
    `</samlp:Response>`
  );
}

const SIGN = {
  signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
};
const TRANSFORMS = ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'];

/** Signs the element at `xpath` (enveloped signature inserted after its Issuer). */
export function signElement(xml: string, key: KeyPair, xpath: string): string {
  const sig = new SignedXml({ privateKey: key.privateKey, publicCert: key.cert, ...SIGN });
  sig.addReference({ xpath, transforms: TRANSFORMS, digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256' });
  sig.computeSignature(xml, { location: { reference: `${xpath}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}
export const ASSERTION_XPATH = "/*[local-name(.)='Response']/*[local-name(.)='Assertion']";
export const RESPONSE_XPATH = "/*[local-name(.)='Response']";
export const signAssertionIn = (responseXmlText: string, key: KeyPair) => signElement(responseXmlText, key, ASSERTION_XPATH);
export const signResponse = (responseXmlText: string, key: KeyPair) => signElement(responseXmlText, key, RESPONSE_XPATH);
/** A standalone assertion signed on its own (before encryption or wrapping). */
export const signStandaloneAssertion = (assertion: string, key: KeyPair) => signElement(assertion, key, "/*[local-name(.)='Assertion']");

/** Encrypts an assertion to the SP's certificate (AES-256-GCM, RSA-OAEP) as an EncryptedAssertion element. */
export async function encryptAssertion(assertion: string, spCertPem: string): Promise<string> {
  const rsaPub = createPublicKey(spCertPem).export({ type: 'spki', format: 'pem' }).toString();
  const encrypted = await new Promise<string>((resolve, reject) =>
    xmlenc.encrypt(
      assertion,
      {
        rsa_pub: rsaPub,
        pem: spCertPem,
        encryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
        keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
        disallowEncryptionWithInsecureAlgorithm: true,
        warnInsecureAlgorithm: false,
      },
      (err, result) => (err || !result ? reject(err ?? new Error('no result')) : resolve(result)),
    ),
  );
  return `<saml:EncryptedAssertion xmlns:saml="${NS.saml}">${encrypted}</saml:EncryptedAssertion>`;
}

export type SignMode = 'assertion' | 'response' | 'both' | 'none';

/** The common case: a Response with one assertion, signed as asked, base64-encoded for the POST binding. */
export function buildResponse(o: ResponseOptions, key: KeyPair, sign: SignMode = 'assertion'): { xml: string; base64: string; assertionId: string } {
  const assertionId = o.assertionId ?? newId();
  let xml = responseXml(o, assertionXml({ ...o, assertionId }));
  if (sign === 'assertion' || sign === 'both') xml = signAssertionIn(xml, key);
  if (sign === 'response' || sign === 'both') xml = signResponse(xml, key);
  return { xml, base64: toBase64(xml), assertionId };
}

export const toBase64 = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');

/** IdP metadata XML as Okta/Entra publish it. */
export function idpMetadataXml(o: { entityId: string; ssoUrl: string; certs: string[]; prefix?: string }): string {
  const p = o.prefix === undefined ? 'md:' : o.prefix ? `${o.prefix}:` : '';
  const xmlns = p ? `xmlns:${p.slice(0, -1)}` : 'xmlns';
  const keys = o.certs
    .map(
      (c) =>
        `<${p}KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${pemBody(c)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></${p}KeyDescriptor>`,
    )
    .join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?><${p}EntityDescriptor ${xmlns}="urn:oasis:names:tc:SAML:2.0:metadata" entityID="${esc(o.entityId)}">` +
    `<${p}IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${keys}` +
    `<${p}NameIDFormat>${EMAIL_FORMAT}</${p}NameIDFormat>` +
    `<${p}SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${esc(o.ssoUrl)}/post"/>` +
    `<${p}SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${esc(o.ssoUrl)}"/>` +
    `</${p}IDPSSODescriptor></${p}EntityDescriptor>`
  );
}
