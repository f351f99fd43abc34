import type { Knex } from 'knex';
import SCIMMY from 'scimmy';
import type { Db } from '../db/knex.js';
import type { ScimDirectoryRow } from '../db/queries/scim-directories.js';
import type { ScimUserQueries } from '../db/queries/scim-users.js';
import type { SqlPredicate, SqlSort } from '../db/queries/directory-resources.js';
import type { ScimGroupQueries } from '../db/queries/scim-groups.js';
import { scimError } from './errors.js';
import { parseFilter } from './filter-parser.js';
import { compileFilter, sortExpression, type Resolver } from './filter-sql.js';
import { pageParams, pageWindow } from './paging.js';

/** Everything a SCIM request handler needs; built per request, so nothing is shared between directories. */
export type ScimContext = {
  db: Db;
  dir: ScimDirectoryRow;
  queries: { users: ScimUserQueries; groups: ScimGroupQueries };
  /** `${publicUrl}/scim/v2/${directoryId}`: meta.location is built from it per request */
  basepath: string;
  /** for the audit events the request writes */
  requestId: string;
};

export type ListParams = {
  filter?: string;
  sortBy?: string;
  sortOrder?: 'ascending' | 'descending';
  startIndex: number;
  count: number;
  attributes?: unknown;
};

const stringParam = (query: Record<string, unknown>, name: string): string | undefined => {
  const key = Object.keys(query).find((k) => k.toLowerCase() === name.toLowerCase());
  const value = key ? query[key] : undefined;
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw scimError(400, `${name} must be given once`, 'invalidValue');
  return value;
};

/**
 * `attributes` / `excludedAttributes` as scimmy's attribute filter (scimmy's
 * Schema 'out' formatting applies it). The Resource class is only used to parse
 * them; its global basepath is never read.
 */
export function attributeFilter(resource: 'User' | 'Group', query: Record<string, unknown>): unknown {
  const attributes = stringParam(query, 'attributes');
  const excludedAttributes = stringParam(query, 'excludedAttributes');
  if (attributes === undefined && excludedAttributes === undefined) return undefined;
  const params = { ...(attributes !== undefined ? { attributes } : {}), ...(excludedAttributes !== undefined ? { excludedAttributes } : {}) };
  const R = resource === 'User' ? SCIMMY.Resources.User : SCIMMY.Resources.Group;
  return (new R(params as never) as unknown as { attributes?: unknown }).attributes;
}

/** Would the response include `members`? (`excludedAttributes=members` must not even load them.) */
export function wantsAttribute(query: Record<string, unknown>, name: string): boolean {
  const list = (v: string | undefined) => v?.split(',').map((s) => s.trim().toLowerCase().replace(/^urn:ietf:params:scim:schemas:core:2\.0:group:/, '')) ?? [];
  const attributes = list(stringParam(query, 'attributes'));
  if (attributes.length) return attributes.some((a) => a === name || a.startsWith(`${name}.`));
  return !list(stringParam(query, 'excludedAttributes')).includes(name);
}

export function listParams(resource: 'User' | 'Group', query: Record<string, unknown>): ListParams {
  const { startIndex, count } = pageParams(query);
  const sortOrder = stringParam(query, 'sortOrder');
  if (sortOrder !== undefined && !['ascending', 'descending'].includes(sortOrder)) {
    throw scimError(400, 'sortOrder must be "ascending" or "descending"', 'invalidValue');
  }
  return {
    filter: stringParam(query, 'filter'),
    sortBy: stringParam(query, 'sortBy'),
    sortOrder: sortOrder as ListParams['sortOrder'],
    startIndex,
    count,
    attributes: attributeFilter(resource, query),
  };
}

type Pager<Row> = {
  count(directoryId: string, where: SqlPredicate | undefined): Promise<number>;
  page(directoryId: string, where: SqlPredicate | undefined, sort: SqlSort | undefined, offset: number, limit: number): Promise<Row[]>;
};

/** Filter, sort and page in SQL (a count and one page query), then a scimmy ListResponse with the true totalResults. */
export async function listResources<Row>(
  params: ListParams,
  resolver: Resolver,
  pager: Pager<Row>,
  directoryId: string,
  formatAll: (rows: Row[], attributes: unknown) => Promise<unknown[]> | unknown[],
) {
  const where = params.filter !== undefined ? compileFilter(parseFilter(params.filter), resolver) : undefined;
  const sort = params.sortBy ? { sql: sortExpression(params.sortBy, resolver), descending: params.sortOrder === 'descending' } : undefined;
  const total = await pager.count(directoryId, where);
  const { offset, limit } = pageWindow(params.startIndex, params.count, total);
  // nothing matched: no page to fetch (the common Okta lookup before a create)
  const rows = limit > 0 && total > 0 ? await pager.page(directoryId, where, sort, offset, limit) : [];
  const resources = await formatAll(rows, params.attributes);
  const list = new SCIMMY.Messages.ListResponse(resources as never[], { startIndex: params.startIndex, count: params.count, totalResults: total } as never);
  // RFC 7644 §3.4.2: itemsPerPage is the number returned on this page (scimmy reports the requested count)
  list.itemsPerPage = list.Resources.length;
  return list;
}

/**
 * `If-Match` → the versions it accepts (the digits of each `W/"<n>"` or `"<n>"` tag, as
 * written), or null when it accepts any (absent, blank, or `*` among the tags).
 */
export function ifMatchVersions(ifMatch: string | undefined): string[] | null {
  if (ifMatch === undefined || !ifMatch.trim()) return null;
  const tags = ifMatch.split(',').map((t) => t.trim());
  if (tags.includes('*')) return null;
  return tags.flatMap((t) => /^(?:W\/)?"(\d+)"$/.exec(t)?.[1] ?? []);
}

/** `If-Match` against the resource version (ETag `W/"<version>"`); `*` matches anything. */
export function matchVersion(ifMatch: string | undefined, version: number): void {
  const accepted = ifMatchVersions(ifMatch);
  if (accepted && !accepted.includes(String(version))) throw preconditionFailed(version);
}
export const preconditionFailed = (version: number) => scimError(412, `Resource version is W/"${version}"; the If-Match precondition failed`);

export const etagOf = (version: number) => `W/"${version}"`;

const LOCK_AFTER_LOST_RACES = 2;

/**
 * Version-checked writes: `write` returns undefined when another writer changed the
 * resource after it was read, and runs again (reading afresh); after 20 lost races the
 * client gets 409 and retries itself. `underLock`, when given, runs the same write
 * behind the row's lock and is used from the third attempt on: a write that keeps
 * losing under a stream of writers then waits its turn instead of running out of tries.
 */
export async function untilWritten<T>(id: string, write: () => Promise<T | undefined>, underLock?: () => Promise<T | undefined>): Promise<T> {
  for (let attempt = 0; attempt <= 20; attempt++) {
    const written = await (underLock && attempt >= LOCK_AFTER_LOST_RACES ? underLock() : write());
    if (written !== undefined) return written;
  }
  throw scimError(409, `Resource ${id} is being changed by other requests; retry`);
}

/**
 * `untilWritten` for a one-statement write that takes its connection: optimistic on `db`,
 * then in a transaction that first takes the row's lock (`lock`), so the statement's
 * snapshot is taken after the wait and it cannot lose again.
 */
export function untilWrittenOrLocked<T>(
  id: string,
  db: Db,
  lock: (trx: Knex.Transaction) => Promise<unknown>,
  write: (q: Db | Knex.Transaction) => Promise<T | undefined>,
): Promise<T> {
  return untilWritten(id, () => write(db), () => db.transaction(async (trx) => (await lock(trx), write(trx))));
}

/** `meta` as scimmy's 'out' pass writes it (for the outputs built without that pass). */
export const outputMeta = (resourceType: 'User' | 'Group', row: { created_at: Date; updated_at: Date; version: number }, location: string) => ({
  resourceType,
  created: new Date(row.created_at).toISOString(),
  lastModified: new Date(row.updated_at).toISOString(),
  location,
  version: etagOf(row.version),
});
