import { X509Certificate } from 'node:crypto';

export type ParsedCertificate = {
  pem: string;
  fingerprintSha256: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
};

/**
 * An IdP signing certificate given as PEM or as bare base64 DER (what metadata XML and
 * most IdP consoles show) → its canonical PEM and the facts an admin checks against
 * the IdP console. Anything node:crypto cannot parse as X.509 is refused (null).
 */
export function parseCertificate(input: string): ParsedCertificate | null {
  const text = input.trim();
  let der: Buffer;
  if (text.includes('-----BEGIN CERTIFICATE-----')) {
    const body = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(text)?.[1];
    if (!body) return null;
    der = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  } else {
    const compact = text.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) return null;
    der = Buffer.from(compact, 'base64');
  }
  try {
    const cert = new X509Certificate(der);
    return {
      pem: cert.toString().trim(),
      fingerprintSha256: cert.fingerprint256,
      subject: cert.subject.replace(/\n/g, ', '),
      issuer: cert.issuer.replace(/\n/g, ', '),
      notBefore: new Date(cert.validFrom),
      notAfter: new Date(cert.validTo),
    };
  } catch {
    return null;
  }
}
