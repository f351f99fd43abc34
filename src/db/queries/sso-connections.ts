import { prepared, type Queryable } from '../knex.js';

export type SsoConnectionRow = {
  id: string;
  org_id: string;
  name: string;
  enabled: boolean;
  idp_entity_id: string;
  idp_sso_url: string;
  idp_metadata_xml: string | null;
  sp_private_key_encrypted: string | null;
  sp_certificate: string | null;
  attribute_mapping: Record<string, string[]>;
  allow_idp_initiated: boolean;
  jit_enabled: boolean;
  default_role: 'admin' | 'member' | 'viewer';
  allowed_return_urls: string[];
  default_return_url: string | null;
  created_at: Date;
  updated_at: Date;
};

export type SsoCertificateRow = {
  id: string;
  org_id: string;
  connection_id: string;
  pem: string;
  fingerprint_sha256: string;
  not_before: Date | null;
  not_after: Date | null;
  created_at: Date;
};

/** The columns the SAML endpoints (metadata, login, ACS) use. */
const SIGN_IN_COLUMNS = [
  'id',
  'org_id',
  'enabled',
  'idp_entity_id',
  'idp_sso_url',
  'sp_private_key_encrypted',
  'sp_certificate',
  'attribute_mapping',
  'allow_idp_initiated',
  'jit_enabled',
  'default_role',
  'allowed_return_urls',
  'default_return_url',
  'updated_at',
] as const satisfies readonly (keyof SsoConnectionRow)[];
export type SignInConnectionRow = Pick<SsoConnectionRow, (typeof SIGN_IN_COLUMNS)[number]>;

export type NewCertificate = Pick<SsoCertificateRow, 'pem' | 'fingerprint_sha256' | 'not_before' | 'not_after'>;

export function createSsoConnectionQueries(db: Queryable) {
  return {
    async insert(values: Partial<SsoConnectionRow> & Pick<SsoConnectionRow, 'org_id' | 'idp_entity_id' | 'idp_sso_url'>, q: Queryable = db) {
      const row = { ...values, attribute_mapping: JSON.stringify(values.attribute_mapping ?? {}) };
      const [inserted] = await q<SsoConnectionRow>('sso_connections').insert(row as never).returning('*');
      return inserted!;
    },
    async find(orgId: string, id: string, q: Queryable = db) {
      return q<SsoConnectionRow>('sso_connections').where({ org_id: orgId, id }).first();
    },
    /**
     * What the SAML endpoints read on every request, in one statement: the connection by id
     * alone (the path names only the id; the org follows from the row) with the PEMs of its
     * IdP certificates, in the order `certificates` lists them. Only the columns the flows use
     * (imported metadata XML can be tens of kilobytes).
     */
    async findForSignIn(id: string, q: Queryable = db): Promise<(SignInConnectionRow & { idp_certificate_pems: string[] }) | undefined> {
      const res = await prepared(
        q,
        `select ${SIGN_IN_COLUMNS.map((column) => `c.${column}`).join(', ')},
                coalesce((select json_agg(k.pem order by k.created_at, k.id) from sso_connection_certificates k
                           where k.org_id = c.org_id and k.connection_id = c.id), '[]'::json) as idp_certificate_pems
           from sso_connections c
          where c.id = ?`,
        [id],
      );
      return res.rows[0];
    },
    /** Keyset page by id (random but stable; created_at would lose microseconds in a JSON cursor). */
    async list(orgId: string, page: { after?: string; limit: number }, q: Queryable = db) {
      const query = q<SsoConnectionRow>('sso_connections').where({ org_id: orgId }).orderBy('id').limit(page.limit + 1);
      if (page.after) query.andWhere('id', '>', page.after);
      return query;
    },
    async update(orgId: string, id: string, values: Partial<SsoConnectionRow>, q: Queryable = db) {
      const row: Record<string, unknown> = { ...values, updated_at: q.fn.now() };
      if (values.attribute_mapping) row.attribute_mapping = JSON.stringify(values.attribute_mapping);
      const [updated] = await q<SsoConnectionRow>('sso_connections').where({ org_id: orgId, id }).update(row as never).returning('*');
      return updated;
    },
    async remove(orgId: string, id: string, q: Queryable = db) {
      return q('sso_connections').where({ org_id: orgId, id }).delete();
    },
    async certificates(orgId: string, connectionIds: string[], q: Queryable = db) {
      if (!connectionIds.length) return [];
      return q<SsoCertificateRow>('sso_connection_certificates')
        .where({ org_id: orgId })
        .whereIn('connection_id', connectionIds)
        .orderBy([{ column: 'created_at' }, { column: 'id' }]);
    },
    /** Replaces the connection's certificate set (rotation: send old + new, later new only). */
    async replaceCertificates(orgId: string, connectionId: string, certs: NewCertificate[], q: Queryable = db) {
      await q('sso_connection_certificates').where({ org_id: orgId, connection_id: connectionId }).delete();
      if (!certs.length) return [];
      return q<SsoCertificateRow>('sso_connection_certificates')
        .insert(certs.map((c) => ({ ...c, org_id: orgId, connection_id: connectionId })))
        .returning('*');
    },
    /** The enabled connection (oldest first) of the org holding `domain` verified. */
    async findEnabledForVerifiedDomain(domain: string, q: Queryable = db) {
      return q('domains as d')
        .join('sso_connections as c', 'c.org_id', 'd.org_id')
        .where({ 'd.domain': domain, 'd.status': 'verified', 'c.enabled': true })
        .orderBy([{ column: 'c.created_at' }, { column: 'c.id' }])
        .first<{ id: string; org_id: string } | undefined>('c.id', 'c.org_id');
    },
    async setSsoRequired(orgId: string, required: boolean, q: Queryable = db) {
      const [row] = await q('organizations')
        .where({ id: orgId })
        .update({ sso_required: required, updated_at: q.fn.now() })
        .returning(['id', 'sso_required']);
      return row as { id: string; sso_required: boolean } | undefined;
    },
    async ssoRequired(orgId: string, q: Queryable = db) {
      const row = await q('organizations').where({ id: orgId }).first<{ sso_required: boolean } | undefined>('sso_required');
      return row?.sso_required;
    },
  };
}
export type SsoConnectionQueries = ReturnType<typeof createSsoConnectionQueries>;
