import { createPublicKey, type KeyObject } from 'node:crypto';
import { SAML, ValidateInResponseTo, generateServiceProviderMetadata, type CacheProvider, type SamlConfig } from '@node-saml/node-saml';
import type { Element } from '@xmldom/xmldom';
import { childElements, verifiedXml } from './verified-xml.js';

/** Each connection is its own SP: entity id, ACS and metadata URLs derive from PUBLIC_URL and the connection id. */
export function spUrls(publicUrl: string, connectionId: string) {
  const base = `${publicUrl}/sso/saml/${connectionId}`;
  return { spEntityId: base, acsUrl: `${base}/acs`, metadataUrl: `${base}/metadata`, loginUrl: `${base}/login` };
}

/** How long an AuthnRequest id stays valid for InResponseTo. */
export const REQUEST_TTL_MS = 10 * 60_000;

export type SpConfig = {
  publicUrl: string;
  connectionId: string;
  idpEntityId: string;
  idpSsoUrl: string;
  idpCertificates: string[];
  /** PEM; decrypts EncryptedAssertion */
  spPrivateKey: string | null;
  spCertificate: string | null;
  clockSkewMs: number;
  cacheProvider: CacheProvider;
  /** verify with the certificates' public keys parsed once (see ConnectionSaml); only for RSA PKCS#1 signatures */
  keyObjects?: boolean;
};

/** The signature algorithms whose xml-crypto verifier takes any crypto.KeyLike (RSA PKCS#1 v1.5). */
export const KEY_OBJECT_ALGORITHMS: ReadonlySet<string> = new Set([
  'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
]);

/** Certificate PEM → its public key, decoded once per certificate (bounded; the oldest entry goes first). */
const publicKeys = new Map<string, KeyObject>();
function publicKeyOf(pem: string): KeyObject {
  let key = publicKeys.get(pem);
  if (!key) {
    key = createPublicKey(pem);
    if (publicKeys.size >= 1000) publicKeys.delete(publicKeys.keys().next().value!);
    publicKeys.set(pem, key);
  }
  return key;
}

/**
 * node-saml hands each trusted certificate to xml-crypto as PEM text, and node:crypto decodes
 * that certificate again for every signature it checks (about 0.4 ms of OpenSSL work per
 * sign-in). xml-crypto takes any crypto.KeyLike as the verification key, so when the ACS has
 * seen that every signature of the response is RSA PKCS#1 (KEY_OBJECT_ALGORITHMS), the same
 * certificates, as node-saml normalised them, go in as public keys decoded once. The key is the
 * same, so the same signatures verify. Otherwise (RSA-PSS, whose xml-crypto verifier accepts only
 * PEM text; an encrypted assertion, whose signature cannot be seen before decryption) node-saml's
 * PEMs are used as they are.
 */
export class ConnectionSaml extends SAML {
  constructor(
    options: SamlConfig,
    private readonly keyObjects: boolean,
  ) {
    super(options);
  }

  protected override async getKeyInfosAsPem(): Promise<string[]> {
    const pems = await super.getKeyInfosAsPem();
    if (!this.keyObjects) return pems;
    try {
      // node-saml types its key list as PEM strings; xml-crypto's publicCert is a crypto.KeyLike
      return pems.map(publicKeyOf) as unknown as string[];
    } catch {
      return pems;
    }
  }

  /**
   * node-saml's `validatePostResponseAsync` for the common shape, one plain Assertion, on the
   * document the ACS already parsed (readEnvelope) instead of a second parse, with the signature
   * located by `verifiedXml` (DOM walks instead of XPath scans; see verified-xml.ts). The same
   * node-saml steps run in the same order: InResponseTo, the Response signature or else the
   * Assertion's, the assertion read back out of the signed bytes only, then node-saml's checks
   * of the signed assertion (times, audience, subject confirmation, profile). Any other shape
   * (encrypted, no assertion, several) goes through node-saml's own method unchanged.
   */
  async validateParsedResponse(xml: string, root: Element, samlResponse: string) {
    const assertions = childElements(root, 'Assertion');
    if (assertions.length !== 1 || childElements(root, 'EncryptedAssertion').length > 0) {
      return this.validatePostResponseAsync({ SAMLResponse: samlResponse });
    }
    const inResponseTo = root.hasAttribute('InResponseTo') ? root.getAttribute('InResponseTo') : null;
    try {
      await this.validateInResponseTo(inResponseTo);
      const keys = await this.getKeyInfosAsPem();
      const verified = verifiedXml(xml, root, keys) ?? verifiedXml(xml, assertions[0]!, keys);
      if (!verified) throw new Error('Invalid signature');
      const signedAssertion = await this.getSignedAssertion(verified);
      if (signedAssertion == null) throw new Error('Cannot obtain assertion from signed data');
      return await this.processValidlySignedAssertionAsync(signedAssertion, xml, inResponseTo as string);
    } catch (err) {
      if (this.mustValidateInResponseTo(Boolean(inResponseTo))) await this.cacheProvider.removeAsync(inResponseTo);
      throw err;
    }
  }
}

/**
 * One node-saml instance per connection and request (cheap; no state of its own).
 *
 * Signatures: node-saml with `wantAssertionsSigned: true` demands a signature on the
 * assertion itself and refuses a response whose only signature is on the Response
 * (checked in test/integration/saml-signin.test.ts). With both flags false it still
 * requires one valid signature, on the Response (covering the assertion) or on the
 * assertion, and it reads the assertion only out of the signed XML. That is the
 * "either signature" rule Okta (response + assertion) and Entra (assertion only) need.
 */
export function samlFor(c: SpConfig): ConnectionSaml {
  const { spEntityId, acsUrl } = spUrls(c.publicUrl, c.connectionId);
  const options: SamlConfig = {
    issuer: spEntityId,
    callbackUrl: acsUrl,
    audience: spEntityId,
    entryPoint: c.idpSsoUrl,
    idpCert: c.idpCertificates,
    idpIssuer: c.idpEntityId,
    wantAssertionsSigned: false,
    wantAuthnResponseSigned: false,
    acceptedClockSkewMs: c.clockSkewMs,
    maxAssertionAgeMs: 0,
    validateInResponseTo: ValidateInResponseTo.ifPresent,
    requestIdExpirationPeriodMs: REQUEST_TTL_MS,
    cacheProvider: c.cacheProvider,
    // let the IdP send its configured NameID format, and do not demand password authentication (Entra passwordless)
    identifierFormat: null,
    disableRequestedAuthnContext: true,
    signatureAlgorithm: 'sha256',
    ...(c.spPrivateKey ? { decryptionPvk: c.spPrivateKey } : {}),
  };
  return new ConnectionSaml(options, c.keyObjects ?? false);
}

/**
 * SP metadata: entity id, ACS (POST binding), WantAssertionsSigned, and the encryption
 * certificate IdPs use to encrypt assertions to us.
 */
export function spMetadataXml(c: Pick<SpConfig, 'publicUrl' | 'connectionId' | 'spPrivateKey' | 'spCertificate'>): string {
  const { spEntityId, acsUrl } = spUrls(c.publicUrl, c.connectionId);
  const canDecrypt = Boolean(c.spPrivateKey && c.spCertificate);
  return generateServiceProviderMetadata({
    issuer: spEntityId,
    callbackUrl: acsUrl,
    identifierFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
    wantAssertionsSigned: true,
    ...(canDecrypt ? { decryptionPvk: c.spPrivateKey!, decryptionCert: c.spCertificate! } : {}),
  });
}
