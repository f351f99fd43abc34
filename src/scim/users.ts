import { randomUUID } from 'node:crypto';
import SCIMMY from 'scimmy';
import type { Knex } from 'knex';
import { auditInsert, recordAudit, type AuditEvent } from '../audit/record.js';
import type { LinkedAccount, ScimUserLink, ScimUserRow } from '../db/queries/scim-users.js';
import { scimError } from './errors.js';
import { assertMutable, normaliseBody, normaliseUserOperations, operationsOf, rejectUnknownAttributes, withoutNulls, type PatchOperation } from './dialects.js';
import { userResolver } from './filter-sql.js';
import { ifMatchVersions, listResources, matchVersion, outputMeta, preconditionFailed, untilWritten, untilWrittenOrLocked, type ScimContext, type ListParams } from './resource-kit.js';
import { isUuid } from '../http/params.js';
import { ENTERPRISE_SCHEMA, USER_SCHEMA } from './schema.js';

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
  // scimmy's schema-definition coercion (the check a Schema instance runs, without building
  // the instance's accessors: half the CPU); the instance's own envelope check is this one
  const schemas = normalised.schemas;
  if (Array.isArray(schemas) && schemas.length && !schemas.includes(USER_SCHEMA)) {
    throw scimError(400, 'The request body supplied a schema type that is incompatible with this resource', 'invalidSyntax');
  }
  const coerced = SCIMMY.Schemas.User.definition.coerce(normalised as never, 'in') as unknown;
  const attributes = JSON.parse(JSON.stringify(coerced)) as Record<string, unknown>;
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
export function toResource(row: ScimUserRow) {
  return {
    ...row.attributes,
    id: row.id,
    userName: row.user_name,
    ...(row.external_id !== null ? { externalId: row.external_id } : {}),
    active: row.active,
    meta: { resourceType: 'User', created: row.created_at, lastModified: row.updated_at, version: `W/"${row.version}"` },
  };
}

/**
 * The 'out' representation without scimmy's schema pass, for responses without an
 * attribute filter: the stored attributes already passed scimmy's 'in' coercion
 * (and never hold password), so the result is what scimmy would build (a unit test
 * compares the two); it is most of the CPU of a SCIM write otherwise.
 */
export function toOutput(row: ScimUserRow, usersPath: string): Record<string, unknown> {
  const { externalId: _storedExternalId, ...attributes } = row.attributes;
  return {
    schemas: attributes[ENTERPRISE_SCHEMA] !== undefined ? [USER_SCHEMA, ENTERPRISE_SCHEMA] : [USER_SCHEMA],
    id: row.id,
    ...(row.external_id !== null ? { externalId: row.external_id } : {}),
    meta: outputMeta('User', row, `${usersPath}/${row.id}`),
    ...attributes,
    userName: row.user_name,
    active: row.active,
  };
}

/** `active` set (Okta's and Entra's deactivate/reactivate) and nothing else: the new value, else undefined. */
function activeOnly(ops: PatchOperation[]): boolean | undefined {
  let active: boolean | undefined;
  for (const op of ops) {
    if (op.op !== 'replace' && op.op !== 'add') return undefined;
    const value =
      op.path === undefined
        ? op.value && typeof op.value === 'object' && !Array.isArray(op.value) && Object.keys(op.value).length === 1
          ? (op.value as Record<string, unknown>).active
          : undefined
        : op.path === 'active'
          ? op.value
          : undefined;
    if (typeof value !== 'boolean') return undefined;
    active = value;
  }
  return active;
}

/**
 * `active` when the operations set nothing else, judged before the row is read: the normalisation
 * reads the current resource only for filtered paths, which are never `active` alone. Operations it
 * refuses go the long way, which refuses them after the row is known to exist.
 */
function activeOnlyPatch(ops: PatchOperation[]): boolean | undefined {
  if (!ops.length) return undefined;
  try {
    return activeOnly(normaliseUserOperations(ops, {}));
  } catch {
    return undefined;
  }
}

export function createUserHandlers(ctx: ScimContext) {
  const { db, dir, queries, basepath } = ctx;
  const actor = { type: 'scim_directory' as const, id: dir.id, requestId: ctx.requestId };
  const usersPath = `${basepath}/Users`;

  const format = (row: ScimUserRow, attributes?: unknown) =>
    attributes === undefined
      ? toOutput(row, usersPath)
      : (new SCIMMY.Schemas.User(toResource(row), 'out', usersPath, attributes as never) as unknown as Record<string, unknown>);

  async function requireRow(id: string, q: Knex | Knex.Transaction, forUpdate = false) {
    const row = isUuid(id) ? await queries.users.find(dir.id, id.toLowerCase(), q, { forUpdate }) : undefined;
    if (!row) throw scimError(404, `Resource ${id} not found`);
    return row;
  }

  /** The link row and its account (same statement), for a write that checks the version. */
  async function readRow(id: string) {
    const found = isUuid(id) ? await queries.users.readWithAccount(dir.id, id.toLowerCase(), db) : undefined;
    if (!found) throw scimError(404, `Resource ${id} not found`);
    return found;
  }

  /**
   * A directory may change a global account (email, name) only when the org has
   * verified the domain of the account's email and of the new email; otherwise
   * the directory's copy changes and the account stays as it is.
   * `accountDomainVerified` is passed when the caller already read it.
   */
  function profileChanges(account: { email: string; name: string | null }, parsed: ParsedUser) {
    const email = primaryEmail(parsed);
    const name = displayNameOf(parsed);
    return {
      email,
      name,
      nameChanged: Boolean(name && name !== account.name),
      emailChanged: Boolean(email && email.toLowerCase() !== account.email.toLowerCase()),
    };
  }

  async function syncProfile(account: { id: string; email: string; name: string | null }, parsed: ParsedUser, trx: Knex.Transaction, accountDomainVerified?: boolean) {
    const { email, name, nameChanged, emailChanged } = profileChanges(account, parsed);
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

  /**
   * The write of a PUT or PATCH: link row (+ membership status when `active` flips)
   * and audit in one statement, if the row is still at `before.version`; the account
   * profile in the same transaction when it may change. undefined when another writer
   * changed the row meanwhile.
   */
  async function writeUpdate(before: ScimUserRow, account: LinkedAccount | undefined, parsed: ParsedUser): Promise<ScimUserRow | undefined> {
    const values = { user_name: parsed.userName, external_id: parsed.externalId, active: parsed.active, attributes: parsed.attributes };
    const after = { ...auditView(before), userName: values.user_name, externalId: values.external_id, active: values.active, version: before.version + 1 };
    const audit = auditInsert(
      {
        orgId: dir.org_id,
        actor,
        action: before.active !== values.active ? (values.active ? 'scim_user.reactivate' : 'scim_user.deactivate') : 'scim_user.update',
        target: { type: 'scim_user', id: before.id },
        before: auditView(before),
        after,
      },
      { onlyIf: 'updated' },
    );
    const changes = account ? profileChanges(account, parsed) : undefined;
    const written =
      !account || !changes || (!changes.nameChanged && !changes.emailChanged) || !account.domainVerified
        ? await queries.users.update(before, values, audit, db)
        : await db.transaction(async (trx) => {
            const written = await queries.users.update(before, values, audit, trx);
            if (written) await syncProfile(account, parsed, trx, account.domainVerified);
            return written;
          });
    if (written?.shared) await queries.users.reconcileMembershipStatus(dir.org_id, before.user_id);
    return written?.row;
  }

  /**
   * Read, compute, write-if-unchanged; a concurrent writer makes it read again, so
   * every update applies to the state it was computed from (If-Match included).
   */
  async function updateRow(id: string, ifMatch: string | undefined, compute: (before: ScimUserRow) => ParsedUser | undefined | Promise<ParsedUser | undefined>): Promise<ScimUserRow> {
    return untilWritten(id, async () => {
      const { row: before, account } = await readRow(id);
      matchVersion(ifMatch, before.version);
      const parsed = await compute(before);
      if (!parsed) return before;
      return writeUpdate(before, account, parsed);
    });
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
      const ids = { userId: randomUUID(), scimId: randomUUID() };
      const createEvent = (inserted: { id: string; user_id: string; version: number }, created: boolean): AuditEvent => ({
        orgId: dir.org_id,
        actor,
        action: 'scim_user.create',
        target: { type: 'scim_user', id: inserted.id },
        after: { userName: link.user_name, externalId: link.external_id, active: link.active, userId: inserted.user_id, version: inserted.version, accountCreated: created },
      });
      // the common case, a new person: one statement with its audit event
      const fresh = await queries.users.insertWithNewAccount(
        ids,
        email,
        displayNameOf(parsed),
        link,
        dir.default_role,
        auditInsert(createEvent({ id: ids.scimId, user_id: ids.userId, version: 1 }, true), { onlyIf: 'inserted' }),
        db,
      );
      const row =
        fresh ??
        (await db.transaction(async (trx) => {
          const { inserted, created } = await linkExistingAccount(email, parsed, link, trx);
          await recordAudit(trx, createEvent(inserted, created));
          return inserted;
        }));
      // an adopted person may be linked from another directory of the org too (or be being linked
      // there right now, which this statement's snapshot cannot show): rare, so always reconcile
      if (!fresh) await queries.users.reconcileMembershipStatus(dir.org_id, row.user_id);
      return { row, body: format(row, attributes) };
    },

    async replace(id: string, body: unknown, ifMatch: string | undefined, attributes: unknown) {
      const parsed = parseUserBody(body);
      const row = await updateRow(id, ifMatch, () => parsed);
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
      const active = isUuid(id) ? activeOnlyPatch(ops) : undefined;
      if (active !== undefined) {
        // deactivate/reactivate, what a deprovisioning wave sends: one statement, checked and audited in SQL
        const link = { directoryId: dir.id, orgId: dir.org_id, id: id.toLowerCase() };
        const r = await untilWrittenOrLocked(id, db, (trx) => requireRow(id, trx, true), async (q) => {
          const r = await queries.users.setActive(link, active, ifMatchVersions(ifMatch), actor, q);
          if (!r.found) throw scimError(404, `Resource ${id} not found`);
          if (!r.row && !r.raced) throw preconditionFailed(r.version!);
          return r.row && { row: r.row, shared: r.shared };
        });
        if (r.shared) await queries.users.reconcileMembershipStatus(dir.org_id, r.row.user_id);
        return { row: r.row, body: format(r.row, attributes) };
      }
      const row = await updateRow(id, ifMatch, async (before) => {
        if (!ops.length) return undefined;
        const current = toResource(before);
        const normalised = normaliseUserOperations(ops, current);
        // deactivate/reactivate: the stored attributes with `active` set are valid as they are
        const active = activeOnly(normalised);
        if (active !== undefined) {
          return { userName: before.user_name, externalId: before.external_id, active, attributes: { ...before.attributes, active } };
        }
        const message = { schemas: [SCIMMY.Messages.PatchOp.id], Operations: normalised };
        const instance = new SCIMMY.Schemas.User(current, 'out', usersPath);
        const patched: unknown = await new SCIMMY.Messages.PatchOp(message as never).apply(instance as never);
        if (!patched) return undefined;
        const after = JSON.parse(JSON.stringify(patched)) as Record<string, unknown>;
        return parseUserBody(withDerivedFormattedName(current, after));
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
