import type { Queryable } from '../knex.js';

export type ServiceTokenRow = {
  id: string;
  name: string;
  token_hash: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
};

export function createServiceTokenQueries(db: Queryable) {
  return {
    async findActiveByHash(hash: string, q: Queryable = db): Promise<ServiceTokenRow | undefined> {
      return q<ServiceTokenRow>('service_tokens').where({ token_hash: hash }).whereNull('revoked_at').first();
    },
    async countActive(q: Queryable = db): Promise<number> {
      const row = await q('service_tokens').whereNull('revoked_at').count<{ count: number }[]>({ count: '*' }).first();
      return Number(row?.count ?? 0);
    },
    async insert(values: { name: string; token_hash: string }, q: Queryable = db): Promise<ServiceTokenRow> {
      const [row] = await q<ServiceTokenRow>('service_tokens').insert(values).returning('*');
      return row!;
    },
    async touch(id: string, q: Queryable = db): Promise<void> {
      await q('service_tokens').where({ id }).update({ last_used_at: q.fn.now() });
    },
  };
}
export type ServiceTokenQueries = ReturnType<typeof createServiceTokenQueries>;
