import { DOMParser, type Element } from '@xmldom/xmldom';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';

export type IdpMetadata = { entityId: string; ssoUrl: string; certificates: string[] };
export type MetadataProblem = { problem: 'doctype_forbidden' | 'malformed' | 'no_idp' | 'no_redirect_sso' | 'no_signing_certificate'; message: string };

/** True when the XML declares a DTD: entity expansion and external entities are refused before any parser runs. */
export const hasDoctype = (xml: string) => /<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml);

const children = (parent: Element, ns: string, localName: string): Element[] =>
  Array.from(parent.getElementsByTagNameNS(ns, localName));

/**
 * IdP metadata XML (an EntityDescriptor, or an EntitiesDescriptor holding one) → entityID,
 * the HTTP-Redirect SingleSignOnService Location, and the signing certificates
 * (KeyDescriptor use="signing" or without `use`). Lookups are namespace-aware, so any
 * prefix (md:, none, saml2md:) works and look-alike elements in other namespaces are ignored.
 */
export function parseIdpMetadata(xml: string): { ok: true; value: IdpMetadata } | ({ ok: false } & MetadataProblem) {
  if (hasDoctype(xml)) return { ok: false, problem: 'doctype_forbidden', message: 'Metadata with a DOCTYPE is refused' };
  let doc: Document;
  try {
    const errors: string[] = [];
    doc = new DOMParser({
      onError: (level, msg) => {
        if (level !== 'warning') errors.push(msg);
      },
    }).parseFromString(xml, 'application/xml') as unknown as Document;
    if (errors.length || !doc?.documentElement) throw new Error(errors[0] ?? 'no root element');
  } catch (err) {
    return { ok: false, problem: 'malformed', message: `Metadata is not well-formed XML: ${(err as Error).message}` };
  }
  const root = doc.documentElement as unknown as Element;
  const entities = root.namespaceURI === MD && root.localName === 'EntityDescriptor' ? [root] : children(root, MD, 'EntityDescriptor');
  for (const entity of entities) {
    const idp = children(entity, MD, 'IDPSSODescriptor')[0];
    if (!idp) continue;
    const entityId = entity.getAttribute('entityID')?.trim();
    if (!entityId) return { ok: false, problem: 'no_idp', message: 'EntityDescriptor has no entityID' };
    const sso = children(idp, MD, 'SingleSignOnService').find((e) => e.getAttribute('Binding') === REDIRECT);
    const ssoUrl = sso?.getAttribute('Location')?.trim();
    if (!ssoUrl) return { ok: false, problem: 'no_redirect_sso', message: 'No HTTP-Redirect SingleSignOnService in the metadata' };
    const certificates = children(idp, MD, 'KeyDescriptor')
      .filter((kd) => {
        const use = kd.getAttribute('use');
        return !use || use === 'signing';
      })
      .flatMap((kd) => children(kd, DS, 'X509Certificate'))
      .map((c) => (c.textContent ?? '').replace(/\s+/g, ''))
      .filter(Boolean);
    if (!certificates.length) return { ok: false, problem: 'no_signing_certificate', message: 'No signing certificate in the metadata' };
    return { ok: true, value: { entityId, ssoUrl, certificates: [...new Set(certificates)] } };
  }
  return { ok: false, problem: 'no_idp', message: 'No EntityDescriptor with an IDPSSODescriptor found' };
}
