import type { Knex } from 'knex';
import { prepared, type Queryable, type SqlPart } from '../knex.js';
import { sessionInsert, type NewSessionValues } from './sessions.js';

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

/** What `resolveSignIn` reads: the facts the member rules decide on. */
export type SignInFacts = {
  /** the assertion id is already in the replay cache */
  used: boolean;
  /** the org's verified domain of the email, or null */
  domain: { capture_enabled: boolean; capture_role: string } | null;
  user: { id: string; email: string; name: string | null; status: string } | null;
  /** `active` of every SCIM link of the user in the org (empty: not managed by a directory) */
  scimLinksActive: boolean[];
  membership: { role: string; status: string; source: string } | null;
};

/** The writes of a sign-in that passed every check (see `completeSignIn`). */
export type SignInPlan = {
  orgId: string;
  connectionId: string;
  assertionId: string;
  replayExpiresAt: Date;
  /** the AuthnRequest answered (SP-initiated), consumed with the sign-in; null when IdP-initiated */
  inResponseTo: string | null;
  userId: string;
  /** set when the account is created (its id is `userId`); otherwise the user must still be active */
  newUser: { email: string; name: string | null; audit: (onlyIf: string) => SqlPart } | null;
  membership: { role: string; source: 'sso_jit' | 'domain_capture'; audit: (onlyIf: string) => SqlPart } | null;
  session: {
    values: NewSessionValues;
    audit: (onlyIf: string) => SqlPart;
  };
  code: { code_hash: string; profile: Record<string, unknown>; expires_at: Date };
  signedInAudit: (onlyIf: string) => SqlPart;
};

/**
 * requestFound: the answered request was still pending; userActive: the returning user still is;
 * fresh: the assertion was not used before; done: everything was written (else nothing was).
 */
export type SignInOutcome = { requestFound: boolean; userActive: boolean; fresh: boolean; done: boolean };

export function createSsoSignInQueries(db: Queryable) {
  return {
    // ---- saml_requests: node-saml's CacheProvider, plus the relay state → return URL mapping
    /**
     * `purgeExpired`: the SP-initiated login's housekeeping rides along in the same statement
     * (expired requests, expired replay-cache rows, codes a day past expiry; each delete walks
     * an expires_at range, indexed for the two big tables).
     */
    async insertRequest(values: Omit<SamlRequestRow, 'created_at'>, q: Queryable = db, opts: { purgeExpired?: boolean } = {}) {
      if (!opts.purgeExpired) {
        const rows = await q('saml_requests').insert(values).onConflict('id').ignore().returning('id');
        return rows.length > 0;
      }
      const res = await q.raw(
        `with purged_requests as (delete from saml_requests where expires_at <= now()),
         purged_assertions as (delete from saml_used_assertions where expires_at <= now()),
         purged_codes as (delete from sso_codes where expires_at <= now() - interval '1 day')
         insert into saml_requests (id, org_id, connection_id, issue_instant, relay_state, return_to, expires_at)
         values (?, ?, ?, ?, ?, ?, ?) on conflict (id) do nothing returning id`,
        [values.id, values.org_id, values.connection_id, values.issue_instant, values.relay_state, values.return_to, values.expires_at],
      );
      return res.rows.length > 0;
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

    /**
     * Everything the ACS must know about the person before it decides, in ONE read: whether the
     * assertion was used already, the org's verified domain of the email, the SCIM link that
     * matches (externalId first, then userName/email; oldest first), the user (that link's
     * user, else the account with this email), every SCIM link of that user in the org, and
     * the user's membership. The atomic write (`completeSignIn`) re-checks what a concurrent
     * request could change in between (replay, pending request, user status).
     */
    async resolveSignIn(
      input: { orgId: string; connectionId: string; assertionId: string; domain: string | null; email: string; externalId: string | null },
      q: Queryable = db,
    ): Promise<SignInFacts> {
      const res = await prepared(
        q,
        `with scim as (
           select user_id from (
             (select s.user_id, 0 as rank, s.created_at from scim_users s join users u on u.id = s.user_id
               where s.org_id = ? and s.external_id = ? order by s.created_at limit 1)
             union all
             (select s.user_id, 1 as rank, s.created_at from scim_users s
               where s.org_id = ? and lower(s.user_name) = ? order by s.created_at limit 1)
             union all
             (select s.user_id, 1 as rank, s.created_at from users u join scim_users s on s.user_id = u.id
               where lower(u.email) = ? and s.org_id = ? order by s.created_at limit 1)
           ) m order by rank, created_at limit 1
         ), account as (
           select id, email, name, status from users where id = (select user_id from scim)
           union all
           (select id, email, name, status from users where lower(email) = ? and not exists (select 1 from scim) limit 1)
         )
         select
           exists (select 1 from saml_used_assertions where connection_id = ? and assertion_id = ?) as used,
           (select json_build_object('capture_enabled', d.capture_enabled, 'capture_role', d.capture_role)
              from domains d where d.org_id = ? and d.domain = ? and d.status = 'verified' limit 1) as domain,
           (select row_to_json(a) from account a) as "user",
           (select coalesce(json_agg(l.active), '[]'::json) from scim_users l where l.org_id = ? and l.user_id = (select id from account)) as scim_links,
           (select json_build_object('role', m.role, 'status', m.status, 'source', m.source)
              from memberships m where m.org_id = ? and m.user_id = (select id from account)) as membership`,
        [
          input.orgId,
          input.externalId,
          input.orgId,
          input.email,
          input.email,
          input.orgId,
          input.email,
          input.connectionId,
          input.assertionId,
          input.orgId,
          input.domain,
          input.orgId,
          input.orgId,
        ],
      );
      const row = res.rows[0] as { used: boolean; domain: SignInFacts['domain']; user: SignInFacts['user']; scim_links: boolean[]; membership: SignInFacts['membership'] };
      return { used: row.used, domain: row.domain, user: row.user, scimLinksActive: row.scim_links, membership: row.membership };
    },

    /**
     * The sign-in's writes as ONE statement (atomic without BEGIN/COMMIT), each step only if
     * the one before it wrote, so they happen in this order or not at all: lock the pending
     * request (SP-initiated) and re-check that a returning user is active; mark the assertion
     * used (a concurrent twin waits on the primary key, then finds it taken); consume the
     * request; create the user and the membership when joining; open the session; store the
     * one-time code; each with its audit event. Nothing is written unless all of it is.
     */
    async completeSignIn(plan: SignInPlan, q: Queryable = db): Promise<SignInOutcome> {
      const ctes: string[] = [];
      const bindings: Knex.RawBinding[] = [];
      const cte = (name: string, sql: string, values: Knex.RawBinding[] = []) => {
        ctes.push(`${name} as (${sql})`);
        bindings.push(...values);
      };
      const gates: string[] = [];
      if (plan.inResponseTo !== null) {
        cte('request', 'select id from saml_requests where connection_id = ? and id = ? for update', [plan.connectionId, plan.inResponseTo]);
        gates.push('exists (select 1 from request)');
      }
      if (plan.newUser === null) {
        cte('account', "select id from users where id = ? and status = 'active'", [plan.userId]);
        gates.push('exists (select 1 from account)');
      }
      cte('gate', `select 1 as x${gates.length ? ` where ${gates.join(' and ')}` : ''}`);
      cte(
        'used',
        `insert into saml_used_assertions (connection_id, org_id, assertion_id, expires_at) select ?, ?, ?, ? from gate
         on conflict (connection_id, assertion_id) do nothing returning 1 as x`,
        [plan.connectionId, plan.orgId, plan.assertionId, plan.replayExpiresAt],
      );
      let prev = 'used';
      const step = (name: string, sql: string, values: Knex.RawBinding[]) => {
        cte(name, sql.replace('$prev', prev), values);
        prev = name;
      };
      // an audit event written only when the step before it wrote (auditInsert's `onlyIf`)
      const audited = (name: string, audit: (onlyIf: string) => SqlPart) => {
        const part = audit(prev);
        cte(name, `${part.sql} returning 1 as x`, part.bindings);
        prev = name;
      };
      if (plan.inResponseTo !== null) {
        step('consumed', 'delete from saml_requests where connection_id = ? and id = ? and exists (select 1 from $prev) returning 1 as x', [
          plan.connectionId,
          plan.inResponseTo,
        ]);
      }
      if (plan.newUser) {
        step('new_user', 'insert into users (id, email, name) select ?, ?, ? from $prev returning 1 as x', [plan.userId, plan.newUser.email, plan.newUser.name]);
        audited('user_audit', plan.newUser.audit);
      }
      if (plan.membership) {
        step('membership', 'insert into memberships (org_id, user_id, role, source) select ?, ?, ?, ? from $prev returning 1 as x', [
          plan.orgId,
          plan.userId,
          plan.membership.role,
          plan.membership.source,
        ]);
        audited('membership_audit', plan.membership.audit);
      }
      const session = sessionInsert(plan.session.values, '$prev');
      step('session', `${session.sql} returning 1 as x`, session.bindings);
      audited('session_audit', plan.session.audit);
      const c = plan.code;
      step(
        'code',
        'insert into sso_codes (code_hash, org_id, connection_id, session_id, profile, expires_at) select ?, ?, ?, ?, ?::jsonb, ? from $prev returning 1 as x',
        [c.code_hash, plan.orgId, plan.connectionId, plan.session.values.id, JSON.stringify(c.profile), c.expires_at],
      );
      audited('signed_in_audit', plan.signedInAudit);
      const found = (cteName: string, present: boolean) => (present ? `exists (select 1 from ${cteName})` : 'true');
      // one text per shape (SP- or IdP-initiated, new or returning user, joining or not)
      const res = await prepared(
        q,
        `with ${ctes.join(',\n')}
         select ${found('request', plan.inResponseTo !== null)} as request_found, ${found('account', plan.newUser === null)} as user_active,
                exists (select 1 from used) as fresh, exists (select 1 from ${prev}) as done`,
        bindings,
      );
      const row = res.rows[0] as { request_found: boolean; user_active: boolean; fresh: boolean; done: boolean };
      return { requestFound: row.request_found, userActive: row.user_active, fresh: row.fresh, done: row.done };
    },

    // ---- accounts (the code exchange)
    async findUser(id: string, q: Queryable) {
      return q('users').where({ id }).first<{ id: string; email: string; name: string | null; status: string } | undefined>('id', 'email', 'name', 'status');
    },
    async findOrg(orgId: string, q: Queryable) {
      return q('organizations').where({ id: orgId }).first<{ id: string; slug: string; name: string } | undefined>('id', 'slug', 'name');
    },
  };
}
export type SsoSignInQueries = ReturnType<typeof createSsoSignInQueries>;
