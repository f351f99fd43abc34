import SCIMMY from 'scimmy';
import type { Knex } from 'knex';
import { recordAudit } from '../audit/record.js';
import type { LinkedAccount, ScimUserLink, ScimUserRow } from '../db/queries/scim-users.js';
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

  const isScimId = (id: string) => /^[0-9a-f-]{36}$/i.test(id);

  async function requireRow(id: string, q: Knex | Knex.Transaction, forUpdate = false) {
    const row = isScimId(id) ? await queries.users.find(dir.id, id.toLowerCase(), q, { forUpdate }) : undefined;
    if (!row) throw scimError(404, `Resource ${id} not found`);
    return row;
  }

  /** Locks the link row for a write; the linked account comes with it (same statement) for the profile sync. */
  async function lockRow(id: string, trx: Knex.Transaction) {
    const found = isScimId(id) ? await queries.users.lockWithAccount(dir.id, id.toLowerCase(), trx) : undefined;
    if (!found) throw scimError(404, `Resource ${id} not found`);
    return found;
  }

  /**
   * A directory may change a global account (email, name) only when the org has
   * verified the domain of the account's email and of the new email; otherwise
   * the directory's copy changes and the account stays as it is.
   * `accountDomainVerified` is passed when the caller already read it.
   */
  async function syncProfile(account: { id: string; email: string; name: string | null }, parsed: ParsedUser, trx: Knex.Transaction, accountDomainVerified?: boolean) {
    const email = primaryEmail(parsed);
    const name = displayNameOf(parsed);
    const nameChanged = Boolean(name && name !== account.name);
    const emailChanged = Boolean(email && email.toLowerCase() !== account.email.toLowerCase());
    // nothing to write (e.g. a PATCH of `active` only): no need to ask whether the directory may write
    if (!nameChanged && !emailChanged) return;
    const verified = accountDomainVerified ?? (await queries.users.domainVerifiedByOrg(dir.org_id, domainOf(account.email), trx));
    if (!verified) return;
    if (email && domainOf(email) !== domainOf(account.email) && !(await queries.users.domainVerifiedByOrg(dir.org_id, domainOf(email), trx))) return;
    const changes: { email?: string; name?: string | null } = {};
    if (nameChanged) changes.name = name;
    if (emailChanged) {
      const taken = await queries.users.findGlobalByEmail(email!, trx);
      if (!taken) changes.email = email; // someone else's address: keep it on the directory copy only
    }
    if (Object.keys(changes).length) await queries.users.updateGlobalProfile(account.id, changes, trx);
  }

  const auditView = (row: ScimUserRow) => ({
    userName: row.user_name,
    externalId: row.external_id,
    active: row.active,
    userId: row.user_id,
    version: row.version,
  });

  /** The write of a PUT or PATCH: link row (+ membership status when `active` flips), account profile, audit. */
  async function writeUpdate(before: ScimUserRow, account: LinkedAccount | undefined, parsed: ParsedUser, trx: Knex.Transaction) {
    const row = await queries.users.update(
      before,
      { user_name: parsed.userName, external_id: parsed.externalId, active: parsed.active, attributes: parsed.attributes },
      trx,
    );
    if (account) await syncProfile(account, parsed, trx, account.domainVerified);
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

  /**
   * Create when an account with the email exists (or appeared concurrently): the directory
   * adopts it, and adopts the person's membership if they already are a member.
   */
  async function linkExistingAccount(email: string, parsed: ParsedUser, link: ScimUserLink, trx: Knex.Transaction) {
    const existing = await queries.users.findGlobalByEmail(email, trx);
    // gone again since the insert saw it: create it after all
    const { user, created } = existing ? { user: existing, created: false } : await queries.users.ensureGlobal(email, displayNameOf(parsed), trx);
    if (!created) await syncProfile(user, parsed, trx);
    const { row: inserted, joined } = await queries.users.insertWithMembership({ ...link, user_id: user.id }, dir.default_role, trx);
    // an adopted membership follows `active` too (a new one was inserted with that status)
    if (!joined) await queries.users.syncMembershipStatus(dir.org_id, dir.id, user.id, parsed.active, trx);
    return { inserted, created };
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
      const link = {
        org_id: dir.org_id,
        directory_id: dir.id,
        user_name: parsed.userName,
        external_id: parsed.externalId,
        active: parsed.active,
        attributes: parsed.attributes,
      };
      const row = await db.transaction(async (trx) => {
        const fresh = await queries.users.insertWithNewAccount(email, displayNameOf(parsed), link, dir.default_role, trx);
        const { inserted, created } = fresh ? { inserted: fresh, created: true } : await linkExistingAccount(email, parsed, link, trx);
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
        const { row: before, account } = await lockRow(id, trx);
        matchVersion(ifMatch, before.version);
        return writeUpdate(before, account, parsed, trx);
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
        const { row: before, account } = await lockRow(id, trx);
        matchVersion(ifMatch, before.version);
        if (!ops.length) return before;
        const current = toResource(before);
        const message = { schemas: [SCIMMY.Messages.PatchOp.id], Operations: normaliseUserOperations(ops, current) };
        const instance = new SCIMMY.Schemas.User(current, 'out', usersPath);
        const patched = await new SCIMMY.Messages.PatchOp(message as never).apply(instance as never);
        if (!patched) return before;
        const after = JSON.parse(JSON.stringify(patched)) as Record<string, unknown>;
        return writeUpdate(before, account, parseUserBody(withDerivedFormattedName(current, after)), trx);
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
