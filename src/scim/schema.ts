import SCIMMY from 'scimmy';

/**
 * scimmy's global declarations, done once per process. We use scimmy for the
 * schema definitions (coercion and validation of bodies, attribute metadata),
 * PatchOp application on users, and the SCIM message shapes; routing, storage
 * and per-directory URLs are ours (see router.ts for why).
 */
export const USER_SCHEMA = SCIMMY.Schemas.User.definition.id;
export const GROUP_SCHEMA = SCIMMY.Schemas.Group.definition.id;
export const ENTERPRISE_SCHEMA = SCIMMY.Schemas.EnterpriseUser.definition.id;
export const PATCH_OP_SCHEMA = SCIMMY.Messages.PatchOp.id;
/** Entra adds this schema URN to Group POST bodies; it declares no attributes we would store. */
export const ENTRA_GROUP_SCHEMA = 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group';

export const MAX_RESULTS = 1000;
export const DEFAULT_COUNT = 100;

let declared = false;
export function declareScimResources(): void {
  if (declared) return;
  declared = true;
  if (!SCIMMY.Resources.declared('User')) SCIMMY.Resources.declare(SCIMMY.Resources.User).extend(SCIMMY.Schemas.EnterpriseUser, false);
  if (!SCIMMY.Resources.declared('Group')) SCIMMY.Resources.declare(SCIMMY.Resources.Group);
  // What ServiceProviderConfig advertises; each flag is implemented in this folder.
  SCIMMY.Config.set({
    documentationUri: undefined,
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_RESULTS },
    changePassword: { supported: false },
    sort: { supported: true },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'Bearer token',
        description: 'The directory token shown once when the directory is created or its token rotated',
        specUri: 'https://www.rfc-editor.org/info/rfc6750',
        primary: true,
      },
    ],
  } as never);
}
declareScimResources();

/** The parts of scimmy's Attribute class we read (its typings are looser than its runtime). */
export type AttrDef = {
  name: string;
  type: string;
  config: { multiValued: boolean; caseExact: boolean; mutable: boolean | string; required: boolean; direction?: string };
  subAttributes?: AttrDef[];
};
type SchemaDef = { id: string; attributes: (AttrDef | SchemaDef)[] };

const isAttr = (a: AttrDef | SchemaDef): a is AttrDef => 'type' in a && 'config' in a;

export const userDefinition = SCIMMY.Schemas.User.definition as unknown as SchemaDef;
export const groupDefinition = SCIMMY.Schemas.Group.definition as unknown as SchemaDef;
const enterpriseDefinition = SCIMMY.Schemas.EnterpriseUser.definition as unknown as SchemaDef;

export type ResolvedPath = {
  /** the schema extension URN holding the attribute, or undefined for core attributes */
  extension?: string;
  attr: AttrDef;
  sub?: AttrDef;
};

/**
 * Resolves an attribute path (`userName`, `NAME.givenName`, `emails.value`,
 * `urn:…:enterprise:2.0:User:manager.value`) against a resource's schemas,
 * case-insensitively, to the canonical attribute definitions. undefined if unknown.
 */
export function resolvePath(resource: 'User' | 'Group', path: string): ResolvedPath | undefined {
  const core = resource === 'User' ? userDefinition : groupDefinition;
  const extensions = resource === 'User' ? [enterpriseDefinition] : [];
  let rest = path;
  let container: SchemaDef = core;
  let extension: string | undefined;
  const lower = path.toLowerCase();
  const ext = extensions.find((e) => lower.startsWith(`${e.id.toLowerCase()}:`));
  if (ext) {
    extension = ext.id;
    container = ext;
    rest = path.slice(ext.id.length + 1);
  } else if (lower.startsWith(`${core.id.toLowerCase()}:`)) {
    rest = path.slice(core.id.length + 1);
  } else if (lower.startsWith('urn:')) {
    return undefined;
  }
  const [top, subName, ...more] = rest.split('.');
  if (!top || more.length) return undefined;
  const attr = container.attributes.filter(isAttr).find((a) => a.name.toLowerCase() === top.toLowerCase());
  if (!attr) return undefined;
  if (subName === undefined) return { extension, attr };
  const sub = attr.subAttributes?.find((a) => a.name.toLowerCase() === subName.toLowerCase());
  return sub ? { extension, attr, sub } : undefined;
}

/** Top-level attribute names a body may carry, lower-cased → canonical (plus declared extension URNs). */
export function knownTopLevel(resource: 'User' | 'Group'): Map<string, AttrDef | 'extension'> {
  const core = resource === 'User' ? userDefinition : groupDefinition;
  const map = new Map<string, AttrDef | 'extension'>();
  for (const a of core.attributes) {
    if (isAttr(a)) map.set(a.name.toLowerCase(), a);
  }
  if (resource === 'User') map.set(enterpriseDefinition.id.toLowerCase(), 'extension');
  return map;
}

export function extensionAttributes(urn: string): AttrDef[] {
  return urn.toLowerCase() === enterpriseDefinition.id.toLowerCase() ? enterpriseDefinition.attributes.filter(isAttr) : [];
}

/**
 * `manager` → `urn:…:enterprise:2.0:User:manager` when the name is not a core User
 * attribute but an enterprise one (Entra's tutorial, Example 5, PATCHes path
 * "manager"). Core names win, so nothing that resolves today changes meaning.
 */
export function qualifyExtensionPath(resource: 'User' | 'Group', path: string): string {
  if (resource !== 'User' || path.toLowerCase().startsWith('urn:')) return path;
  const top = path.split(/[.[]/, 1)[0]!.toLowerCase();
  if (userDefinition.attributes.filter(isAttr).some((a) => a.name.toLowerCase() === top)) return path;
  const inExtension = enterpriseDefinition.attributes.filter(isAttr).some((a) => a.name.toLowerCase() === top);
  return inExtension ? `${enterpriseDefinition.id}:${path}` : path;
}
