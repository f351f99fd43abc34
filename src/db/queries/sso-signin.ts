import type { Queryable } from '../knex.js';

/** What the SAML sign-in flow reads and writes: pending requests, used assertions, one-time codes, and the accounts it links. */
export type SamlRequestRow = {
  id: string;
  org_id: string;
  connection_id: string;
  issue_instant: string;
  relay_state: string | null;
  return_to: string | null;
  created_at: Date;
  expires_at: Date;
};

export type SsoCodeRow = {
  code_hash: string;
  org_id: string;
  connection_id: string;
  session_id: string;
  profile: Record<string, unknown>;
  expires_at: Date;
  used_at: Date | null;
  created_at: Date;
};

export type ScimLink = { user_id: string; active: boolean; external_id: string | null };

export function createSsoSignInQueries(db: Queryable) {
  return {
    // ---- saml_requests: node-saml's CacheProvider, plus the relay state → return URL mapping
    async insertRequest(values: Omit<SamlRequestRow, 'created_at'>, q: Queryable = db) {
      const rows = await q('saml_requests').insert(values).onConflict('id').ignore().returning('id');
      return rows.length > 0;
    },
    async findLiveRequest(connectionId: string, id: string, q: Queryable = db) {
      return q<SamlRequestRow>('saml_requests')
        .where({ connection_id: connectionId, id })
        .where('expires_at', '>', q.fn.now())
        .first();
    },
    async removeRequest(connectionId: string, id: string, q: Queryable = db) {
      const rows = await q<SamlRequestRow>('saml_requests').where({ connection_id: connectionId, id }).delete().returning('*');
      return rows[0];
    },
    async purgeExpiredRequests(q: Queryable = db) {
      return q('saml_requests').where('expires_at', '<=', q.fn.now()).delete();
    },
    /** Housekeeping on the hot paths: each delete walks an expires_at range (indexed for the two big tables). */
    async purgeExpired(q: Queryable = db) {
      await q('saml_requests').where('expires_at', '<=', q.fn.now()).delete();
      await q('saml_used_assertions').where('expires_at', '<=', q.fn.now()).delete();
      await q('sso_codes').where('expires_at', '<=', q.raw(`now() - interval '1 day'`)).delete();
    },

    // ---- replay cache: true when this assertion id was not seen before (atomic across instances)
    async markAssertionUsed(values: { connection_id: string; org_id: string; assertion_id: string; expires_at: Date }, q: Queryable) {
      const rows = await q('saml_used_assertions').insert(values).onConflict(['connection_id', 'assertion_id']).ignore().returning('assertion_id');
      return rows.length > 0;
    },
    async purgeExpiredAssertions(q: Queryable = db) {
      return q('saml_used_assertions').where('expires_at', '<=', q.fn.now()).delete();
    },

    // ---- one-time codes
    async insertCode(values: Omit<SsoCodeRow, 'created_at' | 'used_at'>, q: Queryable) {
      await q('sso_codes').insert({ ...values, profile: JSON.stringify(values.profile) });
    },
    /** Marks the code used if it is live; the row comes back only to the one caller that consumed it. */
    async consumeCode(codeHash: string, q: Queryable) {
      const rows = await q<SsoCodeRow>('sso_codes')
        .where({ code_hash: codeHash })
        .whereNull('used_at')
        .where('expires_at', '>', q.fn.now())
        .update({ used_at: q.fn.now() })
        .returning('*');
      return rows[0];
    },
    /** The session's token is minted when the code is exchanged: no usable token exists before, none is stored. */
    async rotateSessionToken(sessionId: string, tokenHash: string, q: Queryable) {
      const rows = await q('sessions')
        .where({ id: sessionId })
        .whereNull('revoked_at')
        .where('expires_at', '>', q.fn.now())
        .update({ token_hash: tokenHash, last_seen_at: q.fn.now() })
        .returning('*');
      return rows[0] as Record<string, unknown> | undefined;
    },

    // ---- accounts
    async isDomainVerifiedBy(orgId: string, domain: string, q: Queryable) {
      return q('domains')
        .where({ org_id: orgId, domain, status: 'verified' })
        .first<{ id: string; capture_enabled: boolean; capture_role: 'admin' | 'member' | 'viewer' } | undefined>('id', 'capture_enabled', 'capture_role');
    },
    /** The SCIM-provisioned user of this org matching the assertion: by externalId first, then userName/email. */
    async findScimUser(orgId: string, match: { externalId?: string; email: string }, q: Queryable) {
      const base = () =>
        q('scim_users as s')
          .join('users as u', 'u.id', 's.user_id')
          .where('s.org_id', orgId)
          .orderBy('s.created_at')
          .first<ScimLink | undefined>('s.user_id', 's.active', 's.external_id');
      if (match.externalId) {
        const byExternal = await base().andWhere('s.external_id', match.externalId);
        if (byExternal) return byExternal;
      }
      return base().andWhere((w) => w.whereRaw('lower(s.user_name) = ?', [match.email]).orWhereRaw('lower(u.email) = ?', [match.email]));
    },
    /** Every SCIM row of the org's directories that manages this user (several directories may). */
    async scimLinksOfUser(orgId: string, userId: string, q: Queryable) {
      const rows: ScimLink[] = await q('scim_users').where({ org_id: orgId, user_id: userId }).select('user_id', 'active', 'external_id');
      return rows;
    },
    async findUserByEmail(email: string, q: Queryable) {
      return q('users').whereRaw('lower(email) = ?', [email]).first<{ id: string; email: string; name: string | null; status: string } | undefined>('id', 'email', 'name', 'status');
    },
    async findUser(id: string, q: Queryable) {
      return q('users').where({ id }).first<{ id: string; email: string; name: string | null; status: string } | undefined>('id', 'email', 'name', 'status');
    },
    async insertUser(values: { email: string; name: string | null }, q: Queryable) {
      const [row] = await q('users').insert(values).returning(['id', 'email', 'name', 'status']);
      return row as { id: string; email: string; name: string | null; status: string };
    },
    async findMembership(orgId: string, userId: string, q: Queryable) {
      return q('memberships').where({ org_id: orgId, user_id: userId }).first<{ role: string; status: string; source: string } | undefined>('role', 'status', 'source');
    },
    async insertMembership(values: { org_id: string; user_id: string; role: string; source: 'sso_jit' | 'domain_capture' }, q: Queryable) {
      await q('memberships').insert(values);
    },
    async findOrg(orgId: string, q: Queryable) {
      return q('organizations').where({ id: orgId }).first<{ id: string; slug: string; name: string } | undefined>('id', 'slug', 'name');
    },
  };
}
export type SsoSignInQueries = ReturnType<typeof createSsoSignInQueries>;
