import { randomUUID } from 'node:crypto';
import SCIMMY from 'scimmy';
import type { Knex } from 'knex';
import { auditInsert, recordAudit } from '../audit/record.js';
import type { ScimGroupRow, GroupMemberRow } from '../db/queries/scim-groups.js';
import { isUuid } from '../http/params.js';
import { scimError } from './errors.js';
import { normaliseBody, operationsOf, rejectUnknownAttributes, withoutNulls, type PatchOperation } from './dialects.js';
import { parseFilter, type FilterNode } from './filter-parser.js';
import { groupResolver } from './filter-sql.js';
import { ENTRA_GROUP_SCHEMA, GROUP_SCHEMA } from './schema.js';
import { ifMatchVersions, listResources, matchVersion, outputMeta, preconditionFailed, untilWrittenOrLocked, wantsAttribute, type ListParams, type ScimContext } from './resource-kit.js';

/**
 * Groups: each SCIM group is a team of the directory's org owned by the
 * directory (teams.scim_directory_id), linked by scim_groups. Members are
 * written with set-based SQL; scimmy validates the non-member attributes.
 */
type ParsedGroup = { displayName: string; externalId: string | null; members: string[] | undefined };

/** `members` values → SCIM user ids. Okta sends members without `type`, Entra with `$ref: null`: both are fine. */
function memberIds(value: unknown, where: string): string[] {
  const list = Array.isArray(value) ? value : value === undefined || value === null ? [] : [value];
  return list.map((m, i) => {
    const id = m && typeof m === 'object' ? (m as { value?: unknown }).value : undefined;
    if (typeof id !== 'string' || !id.trim()) throw scimError(400, `${where}: member ${i + 1} needs a string "value"`, 'invalidValue');
    return id.trim();
  });
}

export function parseGroupBody(body: unknown): ParsedGroup {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw scimError(400, 'Request body must be a JSON object', 'invalidSyntax');
  const raw = withoutNulls(body as Record<string, unknown>);
  // Entra lists a Microsoft schema URN next to the core Group schema; it adds nothing we store
  if (Array.isArray(raw.schemas)) raw.schemas = raw.schemas.filter((s) => s !== ENTRA_GROUP_SCHEMA);
  rejectUnknownAttributes('Group', raw);
  const membersKey = Object.keys(raw).find((k) => k.toLowerCase() === 'members');
  const members = membersKey ? memberIds(raw[membersKey], 'members') : undefined;
  if (membersKey) delete raw[membersKey];
  const normalised = normaliseBody('Group', raw);
  // scimmy's schema-definition coercion, as for users (users.ts parseUserBody): the Schema instance's envelope check, then its coercion
  const schemas = normalised.schemas;
  if (Array.isArray(schemas) && schemas.length && !schemas.includes(GROUP_SCHEMA)) {
    throw scimError(400, 'The request body supplied a schema type that is incompatible with this resource', 'invalidSyntax');
  }
  const instance = SCIMMY.Schemas.Group.definition.coerce(normalised as never, 'in') as unknown as { displayName?: unknown; externalId?: unknown };
  const displayName = typeof instance.displayName === 'string' ? instance.displayName.trim() : '';
  if (!displayName) throw scimError(400, 'displayName is required', 'invalidValue');
  if (displayName.length > 512) throw scimError(400, 'displayName is longer than 512 characters', 'invalidValue');
  return { displayName, externalId: typeof instance.externalId === 'string' ? instance.externalId : null, members };
}

/** `members[value eq "a" or value eq "b"]` → ["a", "b"]; other member filters are not supported. */
function idsFromMemberFilter(path: string): string[] {
  const node = parseFilter(path);
  if (node.kind !== 'has' || node.path.toLowerCase() !== 'members') throw scimError(400, `Unsupported path "${path}"`, 'invalidPath');
  const ids: string[] = [];
  const walk = (n: FilterNode) => {
    if (n.kind === 'or') {
      walk(n.left);
      walk(n.right);
    } else if (n.kind === 'compare' && n.op === 'eq' && n.path.toLowerCase() === 'value' && typeof n.value === 'string') {
      ids.push(n.value);
    } else {
      throw scimError(400, `Unsupported member filter in "${path}": use value eq "<id>"`, 'invalidFilter');
    }
  };
  walk(node.filter);
  return ids;
}

const memberOf = (m: GroupMemberRow, basepath: string) => ({ value: m.id, display: m.display_name ?? m.user_name, $ref: `${basepath}/Users/${m.id}`, type: 'User' });

/**
 * The 'out' representation without scimmy's schema pass, for responses without an attribute
 * filter: the stored values already passed scimmy's 'in' coercion, so this is what scimmy
 * builds from `toResource` (test/unit/scim-group-output.test.ts compares the two).
 */
export function groupOutput(row: ScimGroupRow, members: GroupMemberRow[] | undefined, basepath: string): Record<string, unknown> {
  return {
    schemas: [GROUP_SCHEMA],
    id: row.id,
    ...(row.external_id !== null ? { externalId: row.external_id } : {}),
    meta: outputMeta('Group', row, `${basepath}/Groups/${row.id}`),
    displayName: row.display_name,
    ...(members ? { members: members.map((m) => memberOf(m, basepath)) } : {}),
  };
}

/** The SCIM representation scimmy formats for output (it adds schemas and meta.location). */
export function groupResource(row: ScimGroupRow, members: GroupMemberRow[] | undefined, basepath: string) {
  return {
    id: row.id,
    displayName: row.display_name,
    ...(row.external_id !== null ? { externalId: row.external_id } : {}),
    ...(members ? { members: members.map((m) => memberOf(m, basepath)) } : {}),
    meta: { resourceType: 'Group', created: row.created_at, lastModified: row.updated_at, version: `W/"${row.version}"` },
  };
}

export function createGroupHandlers(ctx: ScimContext) {
  const { db, dir, queries, basepath } = ctx;
  const actor = { type: 'scim_directory' as const, id: dir.id, requestId: ctx.requestId };
  const groupsPath = `${basepath}/Groups`;
  const mappings = dir.group_role_mappings ?? [];

  const toResource = (row: ScimGroupRow, members: GroupMemberRow[] | undefined) => groupResource(row, members, basepath);

  const formatOne = (row: ScimGroupRow, members: GroupMemberRow[] | undefined, attributes: unknown) =>
    attributes === undefined
      ? groupOutput(row, members, basepath)
      : (new SCIMMY.Schemas.Group(toResource(row, members), 'out', groupsPath, attributes as never) as unknown as Record<string, unknown>);

  async function formatAll(rows: ScimGroupRow[], attributes: unknown, withMembers: boolean, q: Knex | Knex.Transaction = db) {
    const members = withMembers ? await queries.groups.membersOf(dir.id, dir.org_id, rows.map((r) => r.team_id), q) : [];
    return rows.map((row) => formatOne(row, withMembers ? members.filter((m) => m.team_id === row.team_id) : undefined, attributes));
  }

  async function requireRow(id: string, q: Knex | Knex.Transaction, forUpdate = false) {
    const row = /^[0-9a-f-]{36}$/i.test(id) ? await queries.groups.find(dir.id, id.toLowerCase(), q, { forUpdate }) : undefined;
    if (!row) throw scimError(404, `Resource ${id} not found`);
    return row;
  }

  /** Adds members; refuses (400, the caller's transaction rolls back) when one is not a user of this directory. */
  function refuseUnknown(unknown: string[]) {
    if (unknown.length) {
      throw scimError(400, `members refer to users that do not exist in this directory: ${unknown.slice(0, 10).join(', ')}`, 'invalidValue');
    }
  }
  async function addKnownMembers(group: ScimGroupRow, ids: string[], trx: Knex.Transaction) {
    const { added, unknown } = await queries.groups.addMembers(group, ids, trx);
    refuseUnknown(unknown);
    return added;
  }
  async function replaceWithKnownMembers(group: ScimGroupRow, ids: string[], trx: Knex.Transaction) {
    const { added, removed, unknown } = await queries.groups.replaceMembers(group, ids, trx);
    refuseUnknown(unknown);
    return { added, removed };
  }

  /**
   * The tail shared by PUT and PATCH (the row is locked): write the attributes (a
   * rename also renames the team) and bump the version, re-apply role mappings to
   * the members whose groups changed (all of them after a rename, which can change
   * which mapping matches; and the removed ones too), and audit. Without a rename
   * the version bump and the audit event are one statement.
   */
  async function finishUpdate(
    before: ScimGroupRow,
    values: { display_name: string; external_id: string | null },
    added: string[],
    removed: string[],
    trx: Knex.Transaction,
  ): Promise<ScimGroupRow> {
    const renamed = values.display_name !== before.display_name || values.external_id !== before.external_id;
    const event = (row: Pick<ScimGroupRow, 'display_name' | 'external_id' | 'team_id' | 'version'>) => ({
      orgId: dir.org_id,
      actor,
      action: 'scim_group.update',
      target: { type: 'scim_group', id: before.id },
      before: auditView(before),
      after: { ...auditView(row), membersAdded: sample(added), membersRemoved: sample(removed) },
    });
    if (!renamed) {
      await applyRoleMappings(before, [...new Set([...added, ...removed])], trx);
      return queries.groups.touch(before, {}, auditInsert(event({ ...before, version: before.version + 1 }), { onlyIf: 'updated' }), trx);
    }
    const row = await queries.groups.update(before, values, trx);
    await applyRoleMappings(row, 'all-members', trx);
    if (removed.length) await applyRoleMappings(row, removed, trx);
    await recordAudit(trx, event(row));
    return row;
  }

  async function applyRoleMappings(group: ScimGroupRow, changedUserIds: string[] | 'all-members', trx: Knex.Transaction) {
    if (!mappings.length) return;
    await queries.groups.syncTeamRoles(dir.org_id, dir.id, mappings, trx);
    const userIds =
      changedUserIds === 'all-members'
        ? ((await trx('team_members').where({ org_id: dir.org_id, team_id: group.team_id }).pluck('user_id')) as string[])
        : changedUserIds;
    await queries.groups.recomputeRoles(dir.org_id, dir.id, dir.default_role, mappings, userIds, trx);
  }

  const auditView = (row: Pick<ScimGroupRow, 'display_name' | 'external_id' | 'team_id' | 'version'>) => ({ displayName: row.display_name, externalId: row.external_id, teamId: row.team_id, version: row.version });
  const sample = (ids: string[]) => ({ count: ids.length, userIds: ids.slice(0, 100) });

  return {
    async list(params: ListParams, query: Record<string, unknown>) {
      const withMembers = wantsAttribute(query, 'members');
      return listResources(params, groupResolver, queries.groups, dir.id, (rows, attrs) => formatAll(rows, attrs, withMembers));
    },

    async get(id: string, attributes: unknown, query: Record<string, unknown>) {
      const row = await requireRow(id, db);
      const [body] = await formatAll([row], attributes, wantsAttribute(query, 'members'));
      return { row, body: body! };
    },

    async create(body: unknown, attributes: unknown) {
      const parsed = parseGroupBody(body);
      const ids = { teamId: randomUUID(), groupId: randomUUID() };
      const values = { orgId: dir.org_id, directoryId: dir.id, displayName: parsed.displayName, externalId: parsed.externalId };
      const event = (added: string[]) => ({
        orgId: dir.org_id,
        actor,
        action: 'scim_group.create',
        target: { type: 'scim_group', id: ids.groupId },
        after: { displayName: values.displayName, externalId: values.externalId, teamId: ids.teamId, version: 1, membersAdded: sample(added) },
      });
      if (!parsed.members?.length && !mappings.length) {
        // an empty group (how Entra and Okta create them): one statement with its audit event, no members to read back
        const row = await queries.groups.insert(ids, values, auditInsert(event([]), { onlyIf: 'inserted' }), db);
        return { row, body: formatOne(row, [], attributes) };
      }
      const row = await db.transaction(async (trx) => {
        const group = await queries.groups.insert(ids, values, undefined, trx);
        const added = parsed.members?.length ? await addKnownMembers(group, parsed.members, trx) : [];
        await applyRoleMappings(group, added, trx);
        await recordAudit(trx, event(added));
        return group;
      });
      const [out] = await formatAll([row], attributes, true);
      return { row, body: out! };
    },

    /** PUT replaces everything, members included (absent members means none). */
    async replace(id: string, body: unknown, ifMatch: string | undefined, attributes: unknown) {
      const parsed = parseGroupBody(body);
      const row = await db.transaction(async (trx) => {
        const before = await requireRow(id, trx, true);
        matchVersion(ifMatch, before.version);
        const { added, removed } = await replaceWithKnownMembers(before, parsed.members ?? [], trx);
        return finishUpdate(before, { display_name: parsed.displayName, external_id: parsed.externalId }, added, removed, trx);
      });
      const [out] = await formatAll([row], attributes, wantsAttribute({}, 'members'));
      return { row, body: out! };
    },

    /**
     * PATCH never reads the member list: each member operation is one SQL
     * statement on team_members, so concurrent PATCHes adding or removing
     * different members all take effect. Other attributes are set directly.
     */
    async patch(id: string, body: unknown, ifMatch: string | undefined): Promise<Pick<ScimGroupRow, 'version'>> {
      const ops = operationsOf(body);
      const plan = mappings.length ? undefined : memberOnlyPlan(ops);
      if (plan && isUuid(id)) {
        // what Entra and Okta send all day: one statement, checked and audited in SQL
        const group = { directoryId: dir.id, orgId: dir.org_id, id: id.toLowerCase() };
        const r = await untilWrittenOrLocked(id, db, (trx) => requireRow(id, trx, true), async (q) => {
          const r = await queries.groups.patchMembers(group, { ...plan, versions: ifMatchVersions(ifMatch) }, actor, q);
          if (!r.found) throw scimError(404, `Resource ${id} not found`);
          if (!r.matched) throw preconditionFailed(r.version);
          return r.raced ? undefined : r;
        });
        const missing = new Set(r.missing);
        refuseUnknown(plan.ids.filter((m) => missing.has(m.toLowerCase())));
        return { version: r.version };
      }
      return db.transaction(async (trx) => {
        const before = await requireRow(id, trx, true);
        matchVersion(ifMatch, before.version);
        if (!ops.length) return before;
        const added: string[] = [];
        const removed: string[] = [];
        let displayName = before.display_name;
        let externalId = before.external_id;

        // Consecutive removals (Entra sends one `members[value eq "..."]` op per member) are
        // queued and run as one set-based delete before the next add/replace and at the end.
        let queuedRemovals: string[] = [];
        const flushRemovals = async () => {
          if (!queuedRemovals.length) return;
          removed.push(...(await queries.groups.removeMembers(before, queuedRemovals, trx)));
          queuedRemovals = [];
        };
        const memberOp = async (op: string, value: unknown, where: string) => {
          if (op === 'remove') {
            if (value !== undefined) {
              queuedRemovals.push(...memberIds(value, where));
              return;
            }
            await flushRemovals();
            removed.push(...(await queries.groups.removeMembers(before, undefined, trx)));
            return;
          }
          await flushRemovals();
          const ids = memberIds(value, where);
          if (op === 'add') added.push(...(await addKnownMembers(before, ids, trx)));
          else {
            const result = await replaceWithKnownMembers(before, ids, trx);
            added.push(...result.added);
            removed.push(...result.removed);
          }
        };
        const setAttribute = (op: string, key: string, value: unknown, where: string) => {
          switch (key.toLowerCase()) {
            case 'displayname':
              if (op === 'remove') throw scimError(400, `${where}: displayName is required`, 'mutability');
              if (typeof value !== 'string' || !value.trim() || value.length > 512) throw scimError(400, `${where}: displayName must be a non-empty string`, 'invalidValue');
              displayName = value.trim();
              return;
            case 'externalid':
              if (op !== 'remove' && typeof value !== 'string') throw scimError(400, `${where}: externalId must be a string`, 'invalidValue');
              externalId = op === 'remove' ? null : (value as string);
              return;
            case 'id':
              // Okta repeats the group's own id in replace values
              if (value !== before.id) throw scimError(400, `${where}: id is read-only`, 'mutability');
              return;
            case 'schemas':
            case 'meta':
              return;
            default:
              throw scimError(400, `${where}: unsupported path "${key}"`, 'invalidPath');
          }
        };

        for (const [index, op] of ops.entries()) {
          const where = `operation ${index + 1}`;
          await runOperation(op, where, memberOp, setAttribute);
        }
        await flushRemovals();

        return finishUpdate(before, { display_name: displayName, external_id: externalId }, added, removed, trx);
      });
    },

    async remove(id: string, ifMatch: string | undefined) {
      await db.transaction(async (trx) => {
        const before = await requireRow(id, trx, true);
        matchVersion(ifMatch, before.version);
        const former = await queries.groups.removeMembers(before, undefined, trx);
        await queries.groups.remove(before, trx);
        // former members lose the role the group gave them
        if (mappings.length) await queries.groups.recomputeRoles(dir.org_id, dir.id, dir.default_role, mappings, former, trx);
        await recordAudit(trx, {
          orgId: dir.org_id,
          actor,
          action: 'scim_group.delete',
          target: { type: 'scim_group', id: before.id },
          before: { ...auditView(before), members: sample(former) },
        });
      });
    },
  };
}

/**
 * PATCH operations that only add members, or only remove listed members (by value or by
 * `members[value eq "…"]`), as one kind and the SCIM ids, when every id is a UUID (so the
 * one-statement path can refuse unknown ones). Anything else, including anything the
 * transaction path would refuse, gets undefined: that path then answers, in its order.
 */
function memberOnlyPlan(ops: PatchOperation[]): { kind: 'add' | 'remove'; ids: string[] } | undefined {
  if (!ops.length) return undefined;
  let kind: 'add' | 'remove' | undefined;
  const ids: string[] = [];
  try {
    for (const { op, path, value } of ops) {
      const lower = path?.toLowerCase();
      let k: 'add' | 'remove';
      if (lower === 'members' && op === 'add' && value !== undefined) k = 'add';
      else if (lower === 'members' && op === 'remove' && value !== undefined) k = 'remove';
      else if (lower?.startsWith('members[') && op === 'remove') k = 'remove';
      else return undefined;
      if (kind && kind !== k) return undefined;
      kind = k;
      ids.push(...(lower === 'members' ? memberIds(value, '') : idsFromMemberFilter(path!)));
    }
  } catch {
    return undefined;
  }
  return ids.every(isUuid) ? { kind: kind!, ids } : undefined;
}

async function runOperation(
  { op, path, value }: PatchOperation,
  where: string,
  memberOp: (op: string, value: unknown, where: string) => Promise<void>,
  setAttribute: (op: string, key: string, value: unknown, where: string) => void,
) {
  if (path === undefined) {
    if (op === 'remove') throw scimError(400, `${where}: remove needs a path`, 'noTarget');
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw scimError(400, `${where}: value must be an object when path is absent`, 'invalidValue');
    for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
      if (key.toLowerCase() === 'members') await memberOp(op, v, where);
      else setAttribute(op, key, v, where);
    }
    return;
  }
  if (path.toLowerCase() === 'members') {
    if (op !== 'remove' && value === undefined) throw scimError(400, `${where}: ${op} needs a value`, 'invalidValue');
    // Entra's {"op":"Remove","path":"members","value":[{"value":"<id>"}]} removes only those members
    await memberOp(op, value, where);
    return;
  }
  if (/^members\[/i.test(path)) {
    if (op !== 'remove') throw scimError(400, `${where}: only remove is supported on "${path}"`, 'invalidPath');
    const ids = idsFromMemberFilter(path);
    await memberOp('remove', ids.map((v) => ({ value: v })), where);
    return;
  }
  setAttribute(op, path, value, where);
}
