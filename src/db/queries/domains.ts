import type { Queryable } from '../knex.js';

export type DomainRow = {
  id: string;
  org_id: string;
  domain: string;
  status: 'pending' | 'verified';
  verification_token: string;
  verification_method: 'dns' | 'manual' | null;
  verified_at: Date | null;
  capture_enabled: boolean;
  capture_role: 'admin' | 'member' | 'viewer';
  created_at: Date;
  updated_at: Date;
};

export function createDomainQueries(db: Queryable) {
  return {
    async insert(values: Pick<DomainRow, 'org_id' | 'domain' | 'verification_token'>, q: Queryable = db) {
      const [row] = await q<DomainRow>('domains').insert(values).returning('*');
      return row!;
    },
    async find(orgId: string, domain: string, q: Queryable = db) {
      return q<DomainRow>('domains').where({ org_id: orgId, domain }).first();
    },
    /** Keyset page ordered by domain name (unique within an org). */
    async list(orgId: string, page: { after?: string; limit: number }, q: Queryable = db) {
      const query = q<DomainRow>('domains').where({ org_id: orgId }).orderBy('domain').limit(page.limit + 1);
      if (page.after !== undefined) query.andWhere('domain', '>', page.after);
      return query;
    },
    async update(orgId: string, id: string, values: Partial<DomainRow>, q: Queryable = db) {
      const [row] = await q<DomainRow>('domains')
        .where({ org_id: orgId, id })
        .update({ ...values, updated_at: q.fn.now() } as never)
        .returning('*');
      return row;
    },
    async remove(orgId: string, id: string, q: Queryable = db) {
      return q('domains').where({ org_id: orgId, id }).delete();
    },
    /** The org (if any) that holds this domain verified: at most one, by the domains_verified_key index. */
    async findVerified(domain: string, q: Queryable = db) {
      return q<DomainRow>('domains').where({ domain, status: 'verified' }).first();
    },
  };
}
export type DomainQueries = ReturnType<typeof createDomainQueries>;
