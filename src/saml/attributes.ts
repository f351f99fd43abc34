import { z } from 'zod';

const EMAIL_FORMAT = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

/**
 * Where each profile field is looked for, first match wins. The defaults cover Entra ID
 * (WS-Fed claim URIs), Okta (plain names as configured in its attribute statements) and
 * the LDAP/eduPerson OIDs many other IdPs send.
 */
export const DEFAULT_ATTRIBUTE_MAPPING = {
  email: [
    'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
    'email',
    'mail',
    'urn:oid:0.9.2342.19200300.100.1.3',
  ],
  firstName: ['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname', 'firstName', 'givenName', 'given_name', 'urn:oid:2.5.4.42'],
  lastName: ['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname', 'lastName', 'surname', 'sn', 'family_name', 'urn:oid:2.5.4.4'],
  name: ['http://schemas.microsoft.com/identity/claims/displayname', 'displayName', 'name', 'urn:oid:2.16.840.1.113730.3.1.241'],
  groups: ['http://schemas.microsoft.com/ws/2008/06/identity/claims/groups', 'groups', 'memberOf'],
  externalId: ['http://schemas.microsoft.com/identity/claims/objectidentifier', 'externalId', 'userId'],
} as const satisfies Record<string, readonly string[]>;

export type AttributeField = keyof typeof DEFAULT_ATTRIBUTE_MAPPING;
export type AttributeMapping = Record<AttributeField, string[]>;

const AttributeNames = z.array(z.string().trim().min(1).max(512)).min(1).max(20);
/** What an admin may send: any subset of fields, each an ordered list of attribute names. */
export const AttributeMappingInput = z.strictObject({
  email: AttributeNames.optional(),
  firstName: AttributeNames.optional(),
  lastName: AttributeNames.optional(),
  name: AttributeNames.optional(),
  groups: AttributeNames.optional(),
  externalId: AttributeNames.optional(),
});
export type AttributeMappingInput = z.infer<typeof AttributeMappingInput>;

export function effectiveMapping(stored: Partial<Record<string, string[]>> | null | undefined): AttributeMapping {
  const out = {} as AttributeMapping;
  for (const field of Object.keys(DEFAULT_ATTRIBUTE_MAPPING) as AttributeField[]) {
    const custom = stored?.[field];
    out[field] = Array.isArray(custom) && custom.length ? [...custom] : [...DEFAULT_ATTRIBUTE_MAPPING[field]];
  }
  return out;
}

export type SignedInProfile = {
  email: string | null;
  firstName: string | null;
  lastName: string | null;
  name: string | null;
  groups: string[];
  externalId: string | null;
  nameId: string | null;
  nameIdFormat: string | null;
};

type AttributeValue = unknown;
const asStrings = (v: AttributeValue): string[] =>
  (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string').map((s) => s.trim()).filter(Boolean);

/**
 * node-saml's profile (attributes: Name → string | string[]) → our fields. Only the
 * `attributes` of the signed assertion are read, never the top-level copies node-saml
 * also makes. The email falls back to the NameID only when its format is emailAddress.
 */
export function mapProfile(
  input: { nameID?: string; nameIDFormat?: string; attributes?: Record<string, AttributeValue> },
  mapping: AttributeMapping,
): SignedInProfile {
  const attrs = input.attributes ?? {};
  const first = (names: string[]) => {
    for (const n of names) {
      const v = asStrings(attrs[n])[0];
      if (v) return v;
    }
    return null;
  };
  const all = (names: string[]) => [...new Set(names.flatMap((n) => asStrings(attrs[n])))];
  const nameId = input.nameID?.trim() || null;
  const emailFromNameId = input.nameIDFormat === EMAIL_FORMAT ? nameId : null;
  const email = (first(mapping.email) ?? emailFromNameId)?.toLowerCase() ?? null;
  const firstName = first(mapping.firstName);
  const lastName = first(mapping.lastName);
  return {
    email,
    firstName,
    lastName,
    name: first(mapping.name) ?? ([firstName, lastName].filter(Boolean).join(' ') || null),
    groups: all(mapping.groups),
    externalId: first(mapping.externalId),
    nameId,
    nameIdFormat: input.nameIDFormat ?? null,
  };
}

/** The domain part of a syntactically plain email (one @, no spaces or angle brackets), else null. */
export function emailDomain(email: string): string | null {
  const m = /^[^\s@<>()",;]+@([a-z0-9.-]+)$/.exec(email);
  return m ? m[1]!.replace(/\.+$/, '') : null;
}
