import { prepared, type Queryable } from '../knex.js';

/** A compiled SCIM filter: SQL on the table's alias, with its bindings. */
export type SqlPredicate = { sql: string; bindings: (string | number | boolean)[] };
export type SqlSort = { sql: string; descending: boolean };

/**
 * Lookup, count and page of a SCIM resource table owned by one directory
 * (scim_users, scim_groups). Every query is scoped by `directory_id`, which
 * is what keeps one directory's resources invisible to another. Filters and
 * sort expressions are compiled against `alias`.
 */
export function directoryResourceQueries<Row extends object>(db: Queryable, table: string, alias: string) {
  function scoped(directoryId: string, where: SqlPredicate | undefined, q: Queryable) {
    const query = q<Row>(`${table} as ${alias}`).where(`${alias}.directory_id`, directoryId);
    if (where) query.whereRaw(where.sql, where.bindings);
    return query;
  }

  return {
    async find(directoryId: string, id: string, q: Queryable = db, opts: { forUpdate?: boolean } = {}): Promise<Row | undefined> {
      const query = q(table).where({ directory_id: directoryId, id }).first();
      return (opts.forUpdate ? query.forUpdate() : query) as Promise<Row | undefined>;
    },
    /** Prepared per filter shape (the compiled filter's text is fixed for a shape; values are bindings). */
    async count(directoryId: string, where: SqlPredicate | undefined, q: Queryable = db): Promise<number> {
      const res = await prepared(
        q,
        `select count(*)::int as count from ${table} as ${alias} where ${alias}.directory_id = ?${where ? ` and (${where.sql})` : ''}`,
        [directoryId, ...(where?.bindings ?? [])],
      );
      return Number((res.rows as { count: number }[])[0]?.count ?? 0);
    },
    async page(directoryId: string, where: SqlPredicate | undefined, sort: SqlSort | undefined, offset: number, limit: number, q: Queryable = db): Promise<Row[]> {
      const query = scoped(directoryId, where, q).select(`${alias}.*`);
      if (sort) query.orderByRaw(`${sort.sql} ${sort.descending ? 'desc' : 'asc'} nulls last`);
      return query.orderBy([{ column: `${alias}.created_at` }, { column: `${alias}.id` }]).offset(offset).limit(limit) as Promise<Row[]>;
    },
  };
}
