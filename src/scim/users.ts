import SCIMMY from 'scimmy';
import type { Knex } from 'knex';
import { recordAudit } from '../audit/record.js';
import type { ScimUserRow } from '../db/queries/scim-users.js';
import { scimError } from './errors.js';
import { assertMutable, normaliseBody, normaliseUserOperations, operationsOf, rejectUnknownAttributes, withoutNulls } from './dialects.js';
import { userResolver } from './filter-sql.js';
import { listResources, matchVersion, type ScimContext, type ListParams } from './resource-kit.js';

/**
 * Users: each SCIM user is a link row (scim_users: userName, externalId, active,
 * the directory's copy of every attribute) to a global account (users, matched
 * by email case-insensitively) and a membership of the directory's org.
 */
type ParsedUser = { userName: string; externalId: string | null; active: boolean; attributes: Record<string, unknown> };

const EMAILISH = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Body → validated, schema-coerced attributes (scimmy), after Entra/Okta normalisation. */
export function parseUserBody(body: unknown): ParsedUser {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw scimError(400, 'Request body must be a JSON object', 'invalidSyntax');
  const given = withoutNulls(body as Record<string, unknown>);
  rejectUnknownAttributes('User', given);
  const normalised = normaliseBody('User', given);
  const instance = new SCIMMY.Schemas.User(normalised, 'in') as unknown as Record<string, unknown>;
  const attributes = JSON.parse(JSON.stringify(instance)) as Record<string, unknown>;
  // passwords stay with the product; readOnly and envelope attributes are not stored
  for (const key of ['schemas', 'meta', 'id', 'password', 'groups']) delete attributes[key];
  const userName = String(attributes.userName ?? '').trim();
  if (!userName) throw scimError(400, 'userName is required', 'invalidValue');
  if (userName.length > 512) throw scimError(400, 'userName is longer than 512 characters', 'invalidValue');
  return {
    userName,
    externalId: typeof attributes.externalId === 'string' ? attributes.externalId : null,
    active: attributes.active !== false,
    attributes,
  };
}

/** The primary (else first) email, else an email-shaped userName. */
export function primaryEmail(user: ParsedUser): string | undefined {
  const emails = Array.isArray(user.attributes.emails) ? (user.attributes.emails as { value?: unknown; primary?: unknown }[]) : [];
  const chosen = emails.find((e) => e.primary === true && typeof e.value === 'string') ?? emails.find((e) => typeof e.value === 'string');
  const email = typeof chosen?.value === 'string' ? chosen.value.trim() : undefined;
  if (email && EMAILISH.test(email)) return email;
  return EMAILISH.test(user.userName) ? user.userName : undefined;
}

export function displayNameOf(user: ParsedUser): string | null {
  const a = user.attributes as { displayName?: unknown; name?: { formatted?: unknown; givenName?: unknown; familyName?: unknown } };
  if (typeof a.displayName === 'string' && a.displayName.trim()) return a.displayName.trim().slice(0, 256);
  if (typeof a.name?.formatted === 'string' && a.name.formatted.trim()) return a.name.formatted.trim().slice(0, 256);
  const parts = [a.name?.givenName, a.name?.familyName].filter((p): p is string => typeof p === 'string' && p.trim() !== '');
  return parts.length ? parts.join(' ').slice(0, 256) : null;
}

type NameParts = { formatted?: unknown; givenName?: unknown; familyName?: unknown };
const joinedName = (n: NameParts) => [n.givenName, n.familyName].filter((p) => typeof p === 'string' && p !== '').join(' ');

/**
 * A PATCH of name.givenName / name.familyName keeps name.formatted in step when
 * formatted was the plain "given family" join (as Entra's documented "Update User
 * [Multi-valued properties]" response shows); a formatted name of its own is kept.
 */
export function withDerivedFormattedName(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> {
  const old = (before.name ?? {}) as NameParts;
  const next = (after.name ?? {}) as NameParts;
  if (typeof old.formatted !== 'string' || old.formatted !== joinedName(old)) return after;
  if (next.formatted !== old.formatted || joinedName(next) === joinedName(old)) return after;
  return { ...after, name: { ...next, formatted: joinedName(next) } };
}

const domainOf = (email: string) => email.slice(email.lastIndexOf('@') + 1).toLowerCase();

/** The SCIM representation scimmy formats for output (it adds schemas and meta.location). */
function toResource(row: ScimUserRow) {
  return {
    ...row.attributes,
    id: row.id,
    userName: row.user_name,
    ...(row.external_id !== null ? { externalId: row.external_id } : {}),
    active: row.active,
    meta: { resourceType: 'User', created: row.created_at, lastModified: row.updated_at, version: `W/"${row.version}"` },
  };
}

export function createUserHandlers(ctx: ScimContext) {
  const { db, dir, queries, basepath } = ctx;
  const actor = { type: 'scim_directory' as const, id: dir.id };
  const usersPath = `${basepath}/Users`;

  const format = (row: ScimUserRow, attributes?: unknown) =>
    new SCIMMY.Schemas.User(toResource(row), 'out', usersPath, attributes as never) as unknown as Record<string, unknown>;

  async function requireRow(id: string, q: Knex | Knex.Transaction, forUpdate = false) {
    const row = /^[0-9a-f-]{36}$/i.test(id) ? await queries.users.find(dir.id, id.toLowerCase(), q, { forUpdate }) : undefined;
    if (!row) throw scimError(404, `Resource ${id} not found`);
    return row;
  }

  /**
   * A directory may change a global account (email, name) only when the org has
   * verified the domain of the account's email and of the new email; otherwise
   * the directory's copy changes and the account stays as it is.
   */
  async function maySetProfile(email: string | undefined, currentEmail: string, trx: Knex.Transaction) {
    if (!(await queries.users.domainVerifiedByOrg(dir.org_id, domainOf(currentEmail), trx))) return false;
    return !email || domainOf(email) === domainOf(currentEmail) || queries.users.domainVerifiedByOrg(dir.org_id, domainOf(email), trx);
  }

  async function syncProfile(userId: string, parsed: ParsedUser, trx: Knex.Transaction) {
    const account = await queries.users.findGlobal(userId, trx);
    if (!account) return;
    const email = primaryEmail(parsed);
    const name = displayNameOf(parsed);
    const nameChanged = Boolean(name && name !== account.name);
    const emailChanged = Boolean(email && email.toLowerCase() !== account.email.toLowerCase());
    // nothing to write (e.g. a PATCH of `active` only): no need to ask whether the directory may write
    if (!nameChanged && !emailChanged) return;
    if (!(await maySetProfile(email, account.email, trx))) return;
    const changes: { email?: string; name?: string | null } = {};
    if (nameChanged) changes.name = name;
    if (emailChanged) {
      const taken = await queries.users.findGlobalByEmail(email!, trx);
      if (!taken) changes.email = email; // someone else's address: keep it on the directory copy only
    }
    if (Object.keys(changes).length) await queries.users.updateGlobalProfile(userId, changes, trx);
  }

  const auditView = (row: ScimUserRow) => ({
    userName: row.user_name,
    externalId: row.external_id,
    active: row.active,
    userId: row.user_id,
    version: row.version,
  });

  async function writeUpdate(before: ScimUserRow, parsed: ParsedUser, trx: Knex.Transaction) {
    const row = await queries.users.update(
      before.id,
      { user_name: parsed.userName, external_id: parsed.externalId, active: parsed.active, attributes: parsed.attributes },
      trx,
    );
    await syncProfile(row.user_id, parsed, trx);
    if (before.active !== row.active) await queries.users.syncMembershipStatus(dir.org_id, dir.id, row.user_id, row.active, trx);
    await recordAudit(trx, {
      orgId: dir.org_id,
      actor,
      action: before.active !== row.active ? (row.active ? 'scim_user.reactivate' : 'scim_user.deactivate') : 'scim_user.update',
      target: { type: 'scim_user', id: row.id },
      before: auditView(before),
      after: auditView(row),
    });
    return row;
  }

  return {
    async list(params: ListParams) {
      return listResources(params, userResolver, queries.users, dir.id, (rows, attrs) => rows.map((row) => format(row, attrs)));
    },

    async get(id: string, attributes: unknown) {
      const row = await requireRow(id, db);
      return { row, body: format(row, attributes) };
    },

    async create(body: unknown, attributes: unknown) {
      const parsed = parseUserBody(body);
      const email = primaryEmail(parsed);
      if (!email) throw scimError(400, 'A user needs an email: emails[primary] or an email-shaped userName', 'invalidValue');
      const row = await db.transaction(async (trx) => {
        const { user, created } = await queries.users.ensureGlobal(email, displayNameOf(parsed), trx);
        if (!created) await syncProfile(user.id, parsed, trx);
        const joined = await queries.users.ensureMembership(dir.org_id, user.id, dir.default_role, parsed.active ? 'active' : 'suspended', trx);
        const inserted = await queries.users.insert(
          {
            org_id: dir.org_id,
            directory_id: dir.id,
            user_id: user.id,
            user_name: parsed.userName,
            external_id: parsed.externalId,
            active: parsed.active,
            attributes: parsed.attributes,
          },
          trx,
        );
        // an adopted membership follows `active` too (a new one was inserted with that status)
        if (!joined) await queries.users.syncMembershipStatus(dir.org_id, dir.id, user.id, parsed.active, trx);
        await recordAudit(trx, {
          orgId: dir.org_id,
          actor,
          action: 'scim_user.create',
          target: { type: 'scim_user', id: inserted.id },
          after: { ...auditView(inserted), accountCreated: created },
        });
        return inserted;
      });
      return { row, body: format(row, attributes) };
    },

    async replace(id: string, body: unknown, ifMatch: string | undefined, attributes: unknown) {
      const parsed = parseUserBody(body);
      const row = await db.transaction(async (trx) => {
        const before = await requireRow(id, trx, true);
        matchVersion(ifMatch, before.version);
        return writeUpdate(before, parsed, trx);
      });
      return { row, body: format(row, attributes) };
    },

    /**
     * PATCH: the row is locked, scimmy applies the operations to the current
     * resource in memory (one user is small), and the result is validated and
     * written like a PUT. An empty Operations array changes nothing.
     */
    async patch(id: string, body: unknown, ifMatch: string | undefined, attributes: unknown) {
      const ops = operationsOf(body);
      assertMutable(ops);
      const row = await db.transaction(async (trx) => {
        const before = await requireRow(id, trx, true);
        matchVersion(ifMatch, before.version);
        if (!ops.length) return before;
        const current = toResource(before);
        const message = { schemas: [SCIMMY.Messages.PatchOp.id], Operations: normaliseUserOperations(ops, current) };
        const instance = new SCIMMY.Schemas.User(current, 'out', usersPath);
        const patched = await new SCIMMY.Messages.PatchOp(message as never).apply(instance as never);
        if (!patched) return before;
        const after = JSON.parse(JSON.stringify(patched)) as Record<string, unknown>;
        return writeUpdate(before, parseUserBody(withDerivedFormattedName(current, after)), trx);
      });
      return { row, body: format(row, attributes) };
    },

    async remove(id: string, ifMatch: string | undefined) {
      await db.transaction(async (trx) => {
        const before = await requireRow(id, trx, true);
        matchVersion(ifMatch, before.version);
        await queries.users.remove(before.id, trx);
        await queries.users.removeMembership(dir.org_id, dir.id, before.user_id, trx);
        await recordAudit(trx, {
          orgId: dir.org_id,
          actor,
          action: 'scim_user.delete',
          target: { type: 'scim_user', id: before.id },
          before: auditView(before),
        });
      });
    },
  };
}
