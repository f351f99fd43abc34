import { DOMParser, type Element } from '@xmldom/xmldom';
import { hasDoctype } from './idp-metadata.js';
import { fail } from './failures.js';

const PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

/** The unsigned outer Response: what node-saml does not check for login responses and we must. */
export type Envelope = {
  xml: string;
  /** the parsed samlp:Response (the signature check reuses this parse) */
  root: Element;
  destination: string | null;
  inResponseTo: string | null;
  issuer: string | null;
  statusCode: string | null;
  /** carries a saml:EncryptedAssertion (decryption failures must then all look alike) */
  encrypted: boolean;
  /** the Response itself carries a ds:Signature (then Destination is mandatory, SAML bindings §3.5.5.2) */
  signed: boolean;
  /** Response@Version (SAML core §3.2.2: required, "2.0") */
  version: string | null;
  /**
   * Algorithm of every element named SignatureMethod, in any namespace (xml-crypto finds it by
   * local name), anywhere in the document (null when it has none): which verification key form
   * the signature check may use (sp.ts, KEY_OBJECT_ALGORITHMS).
   */
  signatureAlgorithms: (string | null)[];
};

/**
 * base64 SAMLResponse → decoded XML and its envelope. Refuses a DOCTYPE before any parser
 * sees the document (entity expansion, XXE), and anything that is not one samlp:Response.
 */
export function readEnvelope(samlResponse: string): Envelope {
  const compact = samlResponse.replace(/\s+/g, '');
  if (!compact || !/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw fail('malformed_response', 400, 'SAMLResponse is not base64');
  const xml = Buffer.from(compact, 'base64').toString('utf8');
  if (hasDoctype(xml)) throw fail('doctype_forbidden', 400, 'SAML responses with a DOCTYPE are refused');
  const errors: string[] = [];
  let root: Element | null = null;
  try {
    const doc = new DOMParser({
      onError: (level, msg) => {
        if (level !== 'warning') errors.push(msg);
      },
    }).parseFromString(xml, 'application/xml');
    root = doc.documentElement;
  } catch (err) {
    errors.push((err as Error).message);
  }
  if (errors.length || !root) throw fail('malformed_response', 400, 'SAMLResponse is not well-formed XML', { detail: errors[0] });
  if (root.namespaceURI !== PROTOCOL || root.localName !== 'Response') {
    throw fail('malformed_response', 400, 'SAMLResponse is not a SAML 2.0 Response');
  }
  const all = (parent: Element, ns: string, name: string) =>
    Array.from(parent.childNodes).filter((n): n is Element => n.nodeType === 1 && (n as Element).namespaceURI === ns && (n as Element).localName === name);
  // The schema allows one Issuer, one Status and one top-level StatusCode. A second one is a
  // parser-confusion attempt (is the first or the last read?): refused rather than guessed.
  const single = (parent: Element, ns: string, name: string) => {
    const found = all(parent, ns, name);
    if (found.length > 1) throw fail('malformed_response', 400, `The response has more than one ${name}`);
    return found[0];
  };
  const issuer = single(root, ASSERTION, 'Issuer');
  const status = single(root, PROTOCOL, 'Status');
  const statusCode = status ? single(status, PROTOCOL, 'StatusCode') : undefined;
  return {
    xml,
    root,
    destination: root.getAttribute('Destination'),
    // an empty attribute names no request: treated like an absent one
    inResponseTo: root.getAttribute('InResponseTo') || null,
    issuer: issuer?.textContent?.trim() ?? null,
    statusCode: statusCode?.getAttribute('Value') ?? null,
    encrypted: all(root, ASSERTION, 'EncryptedAssertion').length > 0,
    signed: all(root, 'http://www.w3.org/2000/09/xmldsig#', 'Signature').length > 0,
    version: root.getAttribute('Version'),
    signatureAlgorithms: Array.from(root.getElementsByTagNameNS('*', 'SignatureMethod')).map((m) => m.getAttribute('Algorithm')),
  };
}

type Xml2Js = { $?: Record<string, string>; _?: string; [k: string]: unknown };
const list = (v: unknown): Xml2Js[] => (Array.isArray(v) ? (v as Xml2Js[]) : []);

/** Facts of the signed assertion (node-saml's xml2js form, prefixes stripped) that node-saml leaves unchecked. */
export function assertionFacts(parsed: unknown) {
  const assertion = (parsed as { Assertion?: Xml2Js }).Assertion ?? {};
  const subject = list(assertion.Subject)[0] ?? {};
  const confirmations = list(subject.SubjectConfirmation);
  const bearer = confirmations
    .filter((sc) => sc.$?.Method === 'urn:oasis:names:tc:SAML:2.0:cm:bearer')
    .map((sc) => list(sc.SubjectConfirmationData)[0]?.$ ?? {});
  const conditions = list(assertion.Conditions)[0]?.$ ?? {};
  return {
    id: assertion.$?.ID ?? null,
    version: assertion.$?.Version ?? null,
    issueInstant: assertion.$?.IssueInstant ?? null,
    bearer: bearer.map((d) => ({
      recipient: d.Recipient ?? null,
      notBefore: d.NotBefore ?? null,
      notOnOrAfter: d.NotOnOrAfter ?? null,
      inResponseTo: d.InResponseTo ?? null,
    })),
    conditionsNotOnOrAfter: conditions.NotOnOrAfter ?? null,
    /** methods of every SubjectConfirmation, bearer or not (to tell "no bearer" from "not for us") */
    confirmationMethods: confirmations.map((sc) => sc.$?.Method ?? null),
    hasAuthnStatement: list(assertion.AuthnStatement).length > 0,
  };
}
