/**
 * The fixed permission catalogue. Custom roles pick from it; built-in roles map
 * to fixed sets. Adding a permission here is the only place to do it.
 */
export const PERMISSIONS = {
  'org:read': 'See the organization and its settings',
  'org:update': 'Rename the organization, change its slug or visibility',
  'org:delete': 'Delete the organization',
  'ownership:manage': 'Grant, revoke or suspend the owner role',
  'members:read': 'List members and their roles',
  'members:invite': 'Create and revoke invites',
  'members:manage': 'Add, remove, suspend members and change their roles',
  'roles:read': 'List custom roles',
  'roles:manage': 'Create, update and delete custom roles',
  'teams:read': 'List teams and their members',
  'teams:manage': 'Create, update and delete teams and their members',
  'projects:read': 'List projects the caller can see',
  'projects:create': 'Create projects',
  'projects:manage': 'Update and delete any project and its grants',
  'sso:manage': 'Manage SAML SSO connections and the SSO policy',
  'scim:manage': 'Manage SCIM directories and their tokens',
  'domains:manage': 'Add and verify email domains',
  'mfa:manage': 'Set the MFA policy',
  'audit:read': 'Read the audit log',
} as const;

export type Permission = keyof typeof PERMISSIONS;
export const ALL_PERMISSIONS = Object.keys(PERMISSIONS) as Permission[];

export const BUILTIN_ROLES = ['owner', 'admin', 'member', 'viewer'] as const;
export type BuiltinRole = (typeof BUILTIN_ROLES)[number];

const READ: Permission[] = ['org:read', 'members:read', 'roles:read', 'teams:read', 'projects:read'];

export const BUILTIN_ROLE_PERMISSIONS: Record<BuiltinRole, ReadonlySet<Permission>> = {
  owner: new Set(ALL_PERMISSIONS),
  admin: new Set(ALL_PERMISSIONS.filter((p) => p !== 'org:delete' && p !== 'ownership:manage')),
  member: new Set([...READ, 'projects:create']),
  viewer: new Set(READ),
};

export const isPermission = (p: string): p is Permission => Object.hasOwn(PERMISSIONS, p);
export const isBuiltinRole = (r: string): r is BuiltinRole => (BUILTIN_ROLES as readonly string[]).includes(r);

/** Role strength for "demote" checks: owner > admin > member > viewer. */
export const BUILTIN_ROLE_RANK: Record<BuiltinRole, number> = { owner: 3, admin: 2, member: 1, viewer: 0 };
