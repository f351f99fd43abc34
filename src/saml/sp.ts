import { SAML, ValidateInResponseTo, generateServiceProviderMetadata, type CacheProvider } from '@node-saml/node-saml';

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
};

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
export function samlFor(c: SpConfig): SAML {
  const { spEntityId, acsUrl } = spUrls(c.publicUrl, c.connectionId);
  return new SAML({
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
  });
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
