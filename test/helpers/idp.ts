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

// ---------------------------------------------------------------------------------------------
// Attack builders (test/integration/saml-attacks.test.ts). Each takes a response our test IdP
// signed and rewrites it the way a published attack does, so the refusals are tested on real
// signatures rather than on hand-written fragments.
// ---------------------------------------------------------------------------------------------

const DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const xmldom = createRequire(import.meta.url)('@xmldom/xmldom') as typeof import('@xmldom/xmldom');
type XElement = import('@xmldom/xmldom').Element;
type XDocument = import('@xmldom/xmldom').Document;

export const parseXmlDoc = (xml: string): XDocument => new xmldom.DOMParser().parseFromString(xml, 'application/xml');
export const serializeXml = (doc: XDocument): string => new xmldom.XMLSerializer().serializeToString(doc);
const childElements = (parent: XElement, ns: string, localName: string): XElement[] =>
  Array.from(parent.childNodes).filter(
    (n): n is XElement => n.nodeType === 1 && (n as XElement).namespaceURI === ns && (n as XElement).localName === localName,
  );
/** Sets the NameID of an assertion element (the "evil" edit of every wrapping attack). */
function setNameIdOf(assertion: XElement, value: string) {
  const nameId = assertion.getElementsByTagNameNS(NS.saml, 'NameID')[0]!;
  while (nameId.firstChild) nameId.removeChild(nameId.firstChild);
  nameId.appendChild(nameId.ownerDocument!.createTextNode(value));
}
const withoutSignature = (el: XElement): XElement => {
  const copy = el.cloneNode(true) as XElement;
  for (const sig of childElements(copy, DSIG, 'Signature')) copy.removeChild(sig);
  return copy;
};

export type XswVariant = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

/**
 * The eight XML Signature Wrapping variants of Somorovsky et al., "On Breaking SAML: Be Whoever
 * You Want to Be" (USENIX Security 2012), in the shapes SAML Raider generates. XSW1/XSW2 take a
 * Response signed on the Response; XSW3–XSW8 a Response whose Assertion is signed. The evil
 * assertion carries `evilNameId`; the signed original stays somewhere in the document.
 */
export function signatureWrapping(variant: XswVariant, signedXml: string, evilNameId: string): string {
  const doc = parseXmlDoc(signedXml);
  const response = doc.documentElement as unknown as XElement;
  if (variant === 1 || variant === 2) {
    const signature = childElements(response, DSIG, 'Signature')[0]!;
    const original = withoutSignature(response); // what the signature covers
    const evil = withoutSignature(response);
    evil.setAttribute('ID', newId());
    setNameIdOf(childElements(evil, NS.saml, 'Assertion')[0]!, evilNameId);
    const issuer = childElements(evil, NS.saml, 'Issuer')[0]!;
    evil.insertBefore(signature, issuer.nextSibling);
    // XSW1: the original Response inside the Signature (enveloping); XSW2: beside it (detached)
    if (variant === 1) signature.appendChild(original);
    else evil.insertBefore(original, signature.nextSibling);
    doc.replaceChild(evil, response);
    return serializeXml(doc);
  }
  const assertion = childElements(response, NS.saml, 'Assertion')[0]!;
  const signature = childElements(assertion, DSIG, 'Signature')[0]!;
  const unsignedCopy = withoutSignature(assertion);
  const evilCopy = () => {
    const evil = withoutSignature(assertion);
    evil.setAttribute('ID', newId());
    setNameIdOf(evil, evilNameId);
    return evil;
  };
  switch (variant) {
    case 3: // evil assertion before the signed one, as a sibling
      response.insertBefore(evilCopy(), assertion);
      break;
    case 4: {
      // the signed assertion becomes a child of the evil one
      const evil = evilCopy();
      response.replaceChild(evil, assertion);
      evil.appendChild(assertion);
      break;
    }
    case 5: // the signed assertion is edited in place (keeps its Signature); an unsigned original is appended
      setNameIdOf(assertion, evilNameId);
      response.appendChild(unsignedCopy);
      break;
    case 6: // edited in place; the original sits inside the Signature
      setNameIdOf(assertion, evilNameId);
      signature.appendChild(unsignedCopy);
      break;
    case 7: {
      // edited in place; the original goes into samlp:Extensions (a lax schema slot)
      setNameIdOf(assertion, evilNameId);
      const extensions = doc.createElementNS(NS.samlp, 'samlp:Extensions');
      extensions.appendChild(unsignedCopy);
      const issuer = childElements(response, NS.saml, 'Issuer')[0]!;
      response.insertBefore(extensions, issuer.nextSibling);
      break;
    }
    case 8: {
      // edited in place; the original inside ds:Object within the Signature
      setNameIdOf(assertion, evilNameId);
      const object = doc.createElementNS(DSIG, 'Object');
      object.appendChild(unsignedCopy);
      signature.appendChild(object);
      break;
    }
  }
  return serializeXml(doc);
}

export type CustomSignOptions = {
  signatureAlgorithm?: string;
  digestAlgorithm?: string;
  canonicalizationAlgorithm?: string;
  transforms?: string[];
  /** KeyInfo content: the signer's certificate (default), an RSA KeyValue of the signer's key, or none */
  keyInfo?: 'x509' | 'keyValue' | 'none';
  /** sign with HMAC using this shared secret instead of the RSA key (key-confusion attack) */
  hmacKey?: string;
  /** extra transform algorithms the signer implements (the verifier does not): URI → output */
  customTransforms?: Record<string, (node: unknown) => string>;
  /** Reference URI="" (the whole document) instead of #ID */
  emptyUri?: boolean;
  /** a second Reference, to the element at this xpath */
  extraReferenceXpath?: string;
};

/** Like signElement, with every knob an attacker (or a broken IdP) could turn. */
export function signElementWith(xml: string, key: KeyPair, xpath: string, o: CustomSignOptions = {}): string {
  const keyValue = () => {
    const jwk = createPublicKey(key.privateKey).export({ format: 'jwk' }) as { n: string; e: string };
    const b64 = (s: string) => Buffer.from(s, 'base64url').toString('base64');
    return `<KeyValue><RSAKeyValue><Modulus>${b64(jwk.n)}</Modulus><Exponent>${b64(jwk.e)}</Exponent></RSAKeyValue></KeyValue>`;
  };
  const sig = new SignedXml({
    privateKey: o.hmacKey ?? key.privateKey,
    publicCert: o.keyInfo === 'none' || o.hmacKey ? undefined : key.cert,
    signatureAlgorithm: o.signatureAlgorithm ?? SIGN.signatureAlgorithm,
    canonicalizationAlgorithm: o.canonicalizationAlgorithm ?? SIGN.canonicalizationAlgorithm,
    ...(o.keyInfo === 'keyValue' ? { getKeyInfoContent: keyValue } : {}),
  });
  if (o.hmacKey) sig.enableHMAC();
  for (const [uri, process] of Object.entries(o.customTransforms ?? {})) {
    (sig.CanonicalizationAlgorithms as Record<string, unknown>)[uri] = class {
      includeComments = false;
      process = process;
      getAlgorithmName = () => uri;
    };
  }
  sig.addReference({
    xpath,
    transforms: o.transforms ?? TRANSFORMS,
    digestAlgorithm: o.digestAlgorithm ?? 'http://www.w3.org/2001/04/xmlenc#sha256',
    ...(o.emptyUri ? { isEmptyUri: true } : {}),
  });
  if (o.extraReferenceXpath) {
    sig.addReference({ xpath: o.extraReferenceXpath, transforms: [EXC_C14N_URI], digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256' });
  }
  sig.computeSignature(xml, { location: { reference: `${xpath}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

const EXC_C14N_URI = 'http://www.w3.org/2001/10/xml-exc-c14n#';

/** The PEM exactly as node-saml hands it to xml-crypto (RFC 7468 normalised), i.e. the bytes an HMAC key-confusion attack would use. */
export const verifierPem = (pem: string) => `${(pem.trim().replace(/\r\n|\r/g, '\n').match(/.{1,64}/g) ?? []).join('\n')}\n`;

/** encryptAssertion with a chosen data-encryption algorithm (e.g. AES-CBC, the mode the XML Encryption padding oracle targets). */
export async function encryptAssertionWith(assertion: string, spCertPem: string, encryptionAlgorithm: string): Promise<string> {
  const rsaPub = createPublicKey(spCertPem).export({ type: 'spki', format: 'pem' }).toString();
  const encrypted = await new Promise<string>((resolve, reject) =>
    xmlenc.encrypt(
      assertion,
      {
        rsa_pub: rsaPub,
        pem: spCertPem,
        encryptionAlgorithm,
        keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
        disallowEncryptionWithInsecureAlgorithm: false,
        warnInsecureAlgorithm: false,
      },
      (err, result) => (err || !result ? reject(err ?? new Error('no result')) : resolve(result)),
    ),
  );
  return `<saml:EncryptedAssertion xmlns:saml="${NS.saml}">${encrypted}</saml:EncryptedAssertion>`;
}
