import type { CoreDeps } from '../context.js';
import type { Principal } from '../auth/principal.js';
import { actorOf } from '../auth/principal.js';
import { recordAudit } from '../audit/record.js';
import { createOrgQueries, type OrgPatch, type OrgRow } from '../db/queries/orgs.js';
import { createMembershipQueries } from '../db/queries/memberships.js';
import { createUserQueries } from '../db/queries/users.js';
import { conflict, forbidden, notFound } from '../errors.js';
import { toPage, type ListQuery } from '../http/pagination.js';
import { presentMembershipOf, stringCursor } from './users.js';

export function presentOrg(row: OrgRow) {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    visibility: row.visibility,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export type NewOrg = { name: string; slug: string; visibility?: 'private' | 'public'; ownerUserId?: string };

/** `onRemoved` runs after an org's deletion commits (caches of its SCIM tokens). */
export function createOrgService(deps: CoreDeps, onRemoved?: (orgId: string) => void) {
  const { db } = deps;
  const orgs = createOrgQueries(db);
  const memberships = createMembershipQueries(db);
  const users = createUserQueries(db);

  return {
    /**
     * Creates an org and its first owner in one transaction: the calling user, or
     * `ownerUserId` when a service token calls. SPEC makes `ownerUserId` optional, so
     * the product's backend may also create an org first and add its owner later
     * (until then only service tokens can manage it); from the first owner on, the
     * last-owner rule keeps one.
     */
    async create(principal: Principal, input: NewOrg) {
      let ownerId: string | undefined;
      if (principal.kind === 'service') {
        ownerId = input.ownerUserId;
      } else {
        if (input.ownerUserId && input.ownerUserId !== principal.userId) {
          throw forbidden('forbidden', 'Only a service token may make another user the first owner');
        }
        ownerId = principal.userId;
      }
      const created = await db.transaction(async (trx) => {
        if (ownerId) {
          const owner = await users.findById(ownerId, trx);
          if (!owner) throw notFound('User');
          if (owner.status !== 'active') throw conflict('conflict.user_suspended', 'A suspended user cannot own an organization');
        }
        const org = await orgs.insert({ name: input.name, slug: input.slug, visibility: input.visibility ?? 'private' }, trx);
        if (ownerId) {
          await memberships.insert({ org_id: org.id, user_id: ownerId, role: 'owner', status: 'active', source: 'manual' }, trx);
        }
        await recordAudit(trx, {
          orgId: org.id,
          actor: actorOf(principal),
          action: 'org.created',
          target: { type: 'organization', id: org.id },
          after: { ...presentOrg(org), ownerUserId: ownerId ?? null },
        });
        return org;
      });
      return presentOrg(created);
    },

    /** A user sees the orgs it belongs to with its membership there; a service token sees every org. */
    async list(principal: Principal, page: ListQuery) {
      const afterSlug = stringCursor(page.after);
      if (principal.kind === 'service') {
        const rows = await orgs.listAll({ afterSlug, limit: page.limit });
        return toPage(rows, page.limit, (r) => [r.slug], presentOrg);
      }
      const rows = await orgs.listForUser(principal.userId, { afterSlug, limit: page.limit });
      return toPage(rows, page.limit, (r) => [r.slug], (r) => ({ ...presentOrg(r), membership: presentMembershipOf(r) }));
    },

    /** The caller's access was checked by the route (requireOrg). */
    async get(orgId: string) {
      const row = await orgs.findById(orgId);
      if (!row) throw notFound('Organization');
      return presentOrg(row);
    },

    async update(principal: Principal, orgId: string, patch: OrgPatch) {
      const row = await db.transaction(async (trx) => {
        const before = await orgs.findById(orgId, trx, { forUpdate: true });
        if (!before) throw notFound('Organization');
        const after = await orgs.update(orgId, patch, trx);
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'org.updated',
          target: { type: 'organization', id: orgId },
          before: presentOrg(before),
          after: presentOrg(after),
        });
        return after;
      });
      return presentOrg(row);
    },

    /**
     * Refused while the org owns projects. The org row is locked first: a project
     * insert (its foreign key check) waits for us, so none can slip in between the
     * count and the delete. Memberships, teams, roles, domains, SSO connections and
     * SCIM directories go by FK cascade; the audit event has no FK and stays.
     */
    async remove(principal: Principal, orgId: string) {
      await db.transaction(async (trx) => {
        const before = await orgs.findById(orgId, trx, { forUpdate: true });
        if (!before) throw notFound('Organization');
        const contents = await orgs.contents(orgId, trx);
        if (contents.projects > 0) {
          throw conflict('conflict.org_has_projects', 'Delete the projects of this organization first', { projects: contents.projects });
        }
        await orgs.remove(orgId, trx);
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'org.deleted',
          target: { type: 'organization', id: orgId },
          before: { ...presentOrg(before), members: contents.members, teams: contents.teams, roles: contents.roles },
        });
      });
      onRemoved?.(orgId);
    },
  };
}
export type OrgService = ReturnType<typeof createOrgService>;
