import type { Queryable } from '../knex.js';

export type UserRow = {
  id: string;
  email: string;
  name: string | null;
  avatar_url: string | null;
  status: 'active' | 'suspended';
  created_at: Date;
  updated_at: Date;
};

export type UserPatch = Partial<Pick<UserRow, 'name' | 'avatar_url' | 'status'>>;

/** Users are global (no org_id): the only table here that is not tenant-owned. */
export function createUserQueries(db: Queryable) {
  return {
    async insert(values: Pick<UserRow, 'email' | 'name'>, q: Queryable = db): Promise<UserRow> {
      const [row] = await q<UserRow>('users').insert(values).returning('*');
      return row!;
    },
    async findById(id: string, q: Queryable = db, opts: { forUpdate?: boolean } = {}): Promise<UserRow | undefined> {
      const query = q<UserRow>('users').where({ id }).first();
      return opts.forUpdate ? query.forUpdate() : query;
    },
    /** Keyset page ordered by lower(email) (unique), optionally one exact case-insensitive email. */
    async list(opts: { email?: string; afterEmail?: string; limit: number }, q: Queryable = db): Promise<UserRow[]> {
      const query = q<UserRow>('users').select('*').orderByRaw('lower(email)').limit(opts.limit + 1);
      if (opts.email !== undefined) query.whereRaw('lower(email) = lower(?)', [opts.email]);
      if (opts.afterEmail !== undefined) query.whereRaw('lower(email) > ?', [opts.afterEmail]);
      return query;
    },
    async update(id: string, patch: UserPatch, q: Queryable = db): Promise<UserRow> {
      const [row] = await q<UserRow>('users').where({ id }).update({ ...patch, updated_at: q.fn.now() }).returning('*');
      return row!;
    },
  };
}
export type UserQueries = ReturnType<typeof createUserQueries>;
