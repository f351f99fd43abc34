import type { CoreDeps } from '../context.js';
import type { Principal } from '../auth/principal.js';
import { actorOf } from '../auth/principal.js';
import { digestsEqual, hashToken, mintToken } from '../auth/tokens.js';
import { createTokenCache } from '../auth/token-cache.js';
import { recordAudit } from '../audit/record.js';
import { badRequest, notFound } from '../errors.js';
import { isUuid } from '../http/params.js';
import { decodeCursor, toPage, type ListQuery } from '../http/pagination.js';
import type { Queryable } from '../db/knex.js';
import { createScimDirectoryQueries, type GroupRoleMapping, type ScimDirectoryRow } from '../db/queries/scim-directories.js';
import { createScimGroupQueries } from '../db/queries/scim-groups.js';
import type { OrgAccess } from './authz.js';
import { assertHoldsAll } from './roles.js';
import { BUILTIN_ROLE_PERMISSIONS, isBuiltinRole, type BuiltinRole } from '../authz/permissions.js';

export type DirectoryRole = 'admin' | 'member' | 'viewer';
export type DirectoryInput = {
  name: string;
  defaultRole?: DirectoryRole;
  groupRoleMappings?: GroupRoleMapping[];
};
export type DirectoryPatch = Partial<DirectoryInput> & { enabled?: boolean };

/** Roles a mapping may name: built-in roles below owner, or a custom role key of the org. */
const MAPPABLE_BUILTIN = new Set(['admin', 'member', 'viewer']);

export function createScimDirectoryService(deps: CoreDeps) {
  const { db, config } = deps;
  const directories = createScimDirectoryQueries(db);
  const groups = createScimGroupQueries(db);
  const tokenCache = createTokenCache<ScimDirectoryRow>(config.scimTokenCacheMs);
  /** After a commit that changes what a directory's token may do (or whether it works). */
  const forget = (id: string) => tokenCache.invalidate((row) => row.id === id);

  const baseUrlOf = (id: string) => `${config.publicUrl}/scim/v2/${id}`;

  function present(row: ScimDirectoryRow) {
    return {
      id: row.id,
      orgId: row.org_id,
      name: row.name,
      scimBaseUrl: baseUrlOf(row.id),
      defaultRole: row.default_role,
      groupRoleMappings: row.group_role_mappings,
      enabled: row.enabled,
      tokenRotatedAt: row.token_rotated_at,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
  /** What the audit log keeps of a directory (never the token hash). */
  const auditView = (row: ScimDirectoryRow) => {
    const { token_hash: _hash, ...rest } = row;
    return rest;
  };

  async function checkMappings(orgId: string, mappings: GroupRoleMapping[], q: Queryable) {
    const customKeys = [...new Set(mappings.map((m) => m.role).filter((r) => !MAPPABLE_BUILTIN.has(r)))];
    if (!customKeys.length) return;
    const found = await q('roles').where({ org_id: orgId }).whereIn('key', customKeys).pluck('key');
    const missing = customKeys.filter((k) => !found.includes(k));
    if (missing.length) {
      throw badRequest('validation.unknown_role', `Unknown role(s) in groupRoleMappings: ${missing.join(', ')}`, { roles: missing });
    }
  }

  /**
   * A directory's token can create members with its default role and mapped roles,
   * so whoever configures it must hold every permission those roles carry.
   */
  async function assertRolesHeld(access: OrgAccess, defaultRole: DirectoryRole | undefined, mappings: GroupRoleMapping[] | undefined, q: Queryable) {
    const builtin = [defaultRole, ...(mappings ?? []).map((m) => m.role)].filter((r): r is BuiltinRole => !!r && isBuiltinRole(r));
    const customKeys = [...new Set((mappings ?? []).map((m) => m.role).filter((r) => !isBuiltinRole(r)))];
    const custom: string[][] = customKeys.length
      ? await q('roles').where({ org_id: access.orgId }).whereIn('key', customKeys).pluck('permissions')
      : [];
    const perms = new Set<string>([...builtin.flatMap((r) => [...BUILTIN_ROLE_PERMISSIONS[r]]), ...custom.flat()]);
    assertHoldsAll(access, [...perms], 'This directory\'s roles');
  }

  async function requireDirectory(orgId: string, id: string, q: Queryable, forUpdate = false) {
    if (!isUuid(id)) throw notFound('SCIM directory');
    const row = await directories.findInOrg(orgId, id, q, { forUpdate });
    if (!row) throw notFound('SCIM directory');
    return row;
  }

  return {
    baseUrlOf,
    /** The org is gone (its directories went by cascade): its tokens stop working at once. */
    forgetOrg: (orgId: string) => tokenCache.invalidate((row) => row.org_id === orgId),

    async create(access: OrgAccess, input: DirectoryInput) {
      const { principal, orgId } = access;
      const { token, hash } = mintToken('scim');
      return db.transaction(async (trx) => {
        const mappings = input.groupRoleMappings ?? [];
        await checkMappings(orgId, mappings, trx);
        await assertRolesHeld(access, input.defaultRole ?? 'member', mappings, trx);
        const row = await directories.insert(
          { org_id: orgId, name: input.name, token_hash: hash, default_role: input.defaultRole ?? 'member', group_role_mappings: mappings },
          trx,
        );
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'scim_directory.create',
          target: { type: 'scim_directory', id: row.id },
          after: auditView(row),
        });
        return { ...present(row), token };
      });
    },

    async list(orgId: string, page: ListQuery) {
      let after: { createdAt: string; id: string } | undefined;
      if (page.after) {
        const [createdAt, id] = decodeCursor(page.after, 2);
        if (typeof createdAt !== 'string' || !isUuid(id) || Number.isNaN(Date.parse(createdAt))) {
          throw badRequest('validation.invalid_cursor', 'The `after` cursor is not valid');
        }
        after = { createdAt, id };
      }
      const rows = await directories.listByOrg(orgId, page.limit, after);
      return toPage(rows, page.limit, (r) => [r.created_at.toISOString(), r.id], present);
    },

    async get(orgId: string, id: string) {
      return present(await requireDirectory(orgId, id, db));
    },

    async update(access: OrgAccess, id: string, patch: DirectoryPatch) {
      const { principal, orgId } = access;
      const updated = await db.transaction(async (trx) => {
        const before = await requireDirectory(orgId, id, trx, true);
        await assertRolesHeld(access, patch.defaultRole, patch.groupRoleMappings, trx);
        if (patch.groupRoleMappings) await checkMappings(orgId, patch.groupRoleMappings, trx);
        const row = (await directories.update(
          orgId,
          id,
          {
            ...(patch.name !== undefined ? { name: patch.name } : {}),
            ...(patch.defaultRole !== undefined ? { default_role: patch.defaultRole } : {}),
            ...(patch.groupRoleMappings !== undefined ? { group_role_mappings: patch.groupRoleMappings } : {}),
            ...(patch.enabled !== undefined ? { enabled: patch.enabled } : {}),
          },
          trx,
        ))!;
        if (patch.groupRoleMappings !== undefined || patch.defaultRole !== undefined) {
          // the new rules apply to every user and group the directory already has
          await groups.syncTeamRoles(orgId, id, row.group_role_mappings, trx);
          await groups.recomputeRoles(orgId, id, row.default_role, row.group_role_mappings, undefined, trx);
        }
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'scim_directory.update',
          target: { type: 'scim_directory', id },
          before: auditView(before),
          after: auditView(row),
        });
        return present(row);
      });
      forget(id);
      return updated;
    },

    /**
     * Deleting a directory deletes its SCIM links and its teams (cascade); the
     * memberships it created stay, as ordinary members the org can manage.
     */
    async remove(principal: Principal, orgId: string, id: string) {
      await db.transaction(async (trx) => {
        const before = await requireDirectory(orgId, id, trx, true);
        await directories.remove(orgId, id, trx);
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'scim_directory.delete',
          target: { type: 'scim_directory', id },
          before: auditView(before),
        });
      });
      forget(id);
    },

    /** A new token; the old one stops working with this commit. */
    async rotateToken(principal: Principal, orgId: string, id: string) {
      const { token, hash } = mintToken('scim');
      const rotated = await db.transaction(async (trx) => {
        await requireDirectory(orgId, id, trx, true);
        const row = (await directories.update(orgId, id, { token_hash: hash, token_rotated_at: trx.fn.now() }, trx))!;
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'scim_directory.rotate_token',
          target: { type: 'scim_directory', id },
          after: { tokenRotatedAt: row.token_rotated_at },
        });
        return { id: row.id, scimBaseUrl: baseUrlOf(row.id), token };
      });
      forget(id);
      return rotated;
    },

    /**
     * SCIM bearer authentication: the token is looked up by its SHA-256 (unique
     * index), the digests are compared in constant time, and the token must belong
     * to the directory named in the URL. `disabled` is reported separately (403).
     * Found rows are reused for SCIM_TOKEN_CACHE_SECONDS (see token-cache.ts).
     */
    async authenticate(directoryId: string, token: string | undefined): Promise<ScimDirectoryRow | 'invalid' | 'disabled'> {
      if (!token || !isUuid(directoryId)) return 'invalid';
      const hash = hashToken(token);
      const row = await tokenCache.lookup(hash, () => directories.findByTokenHash(hash));
      if (!row || !digestsEqual(row.token_hash, hash) || row.id !== directoryId.toLowerCase()) return 'invalid';
      return row.enabled ? row : 'disabled';
    },
  };
}
export type ScimDirectoryService = ReturnType<typeof createScimDirectoryService>;
