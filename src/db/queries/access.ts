import { prepared, type Queryable } from '../knex.js';

export type GrantLevel = 'read' | 'write' | 'admin';

/** One grant that applies to the user, with the names needed to explain it. */
export type GrantFact = {
  kind: 'direct' | 'team' | 'builtin_role' | 'member_role' | 'team_role';
  grantId: string;
  level: GrantLevel;
  teamId: string | null;
  teamName: string | null;
  roleKey: string | null;
};

/** Every fact one access decision needs, for one (user, project, session?) pair. */
export type AccessFactsRow = {
  ord: number;
  user_id: string;
  project_id: string;
  session_id: string | null;
  /** null when the project does not exist */
  org_id: string | null;
  project_visibility: 'private' | 'internal' | 'public' | null;
  org_visibility: 'private' | 'public' | null;
  mfa_required: boolean | null;
  mfa_grace_period_hours: number | null;
  mfa_required_since: Date | null;
  sso_required: boolean | null;
  /** null when the user does not exist */
  user_status: 'active' | 'suspended' | null;
  membership_role: 'owner' | 'admin' | 'member' | 'viewer' | null;
  membership_status: 'active' | 'suspended' | null;
  mfa_enrolled: boolean;
  /** the session, when one was named and it is a live session of this user */
  live_session_id: string | null;
  session_amr: string[] | null;
  session_sso_org_id: string | null;
  grants: GrantFact[];
};

/** What a decision reads about the pair: project, org policy, user and membership. */
const PAIR_COLUMNS = `c.ord, c.user_id, c.project_id, c.session_id,
       p.org_id, p.visibility as project_visibility,
       o.visibility as org_visibility, o.mfa_required, o.mfa_grace_period_hours, o.mfa_required_since, o.sso_required,
       u.status as user_status,
       m.role as membership_role, m.status as membership_status`;
const PAIR_JOINS = `pairs c
  left join projects p on p.id = c.project_id
  left join organizations o on o.id = p.org_id
  left join users u on u.id = c.user_id
  left join memberships m on m.org_id = p.org_id and m.user_id = c.user_id`;
/** MFA enrolment and the named session, when it is a live session of this user. */
const SESSION_COLUMNS = `exists (select 1 from user_totp ut where ut.user_id = c.user_id and ut.confirmed_at is not null) as mfa_enrolled,
       s.id as live_session_id, s.amr as session_amr, s.sso_org_id as session_sso_org_id`;
const SESSION_JOIN = `left join sessions s on s.id = c.session_id and s.user_id = c.user_id and s.revoked_at is null and s.expires_at > now()`;

/**
 * Every grant that applies to the pairs of `k` (ord, user_id, project_id, org_id,
 * membership_role). Each branch starts from the user's side (their teams, their roles)
 * and meets project_grants on its per-subject unique indexes (project_id, subject);
 * `is not null` lets the planner use the partial ones. Team and role names are read
 * only for the grants found (the foreign keys of team_members, team_roles and
 * membership_roles keep every team and role in the org): joined up front, the small
 * teams table was hashed once per pair, half the time of a 1,000-pair batch.
 */
const GRANTS = (k: string) => `
  select k.ord, 'direct' as kind, gr.id as grant_id, gr.level, null::uuid as team_id, null::text as team_name, null::text as role_key
    from ${k} join project_grants gr on gr.project_id = k.project_id and gr.org_id = k.org_id and gr.user_id = k.user_id and gr.user_id is not null
  union all
  select k.ord, 'team', gr.id, gr.level, tm.team_id, (select t.name from teams t where t.id = tm.team_id), null
    from ${k}
    join team_members tm on tm.org_id = k.org_id and tm.user_id = k.user_id
    join project_grants gr on gr.project_id = k.project_id and gr.team_id = tm.team_id and gr.team_id is not null
  union all
  select k.ord, 'builtin_role', gr.id, gr.level, null, null, gr.builtin_role
    from ${k} join project_grants gr on gr.project_id = k.project_id and gr.builtin_role = k.membership_role and gr.builtin_role is not null
  union all
  select k.ord, 'member_role', gr.id, gr.level, null, null, (select r.key from roles r where r.id = mr.role_id)
    from ${k}
    join membership_roles mr on mr.org_id = k.org_id and mr.user_id = k.user_id
    join project_grants gr on gr.project_id = k.project_id and gr.role_id = mr.role_id and gr.role_id is not null
  union all
  select k.ord, 'team_role', gr.id, gr.level, tm.team_id, (select t.name from teams t where t.id = tm.team_id),
         (select r.key from roles r where r.id = tr.role_id)
    from ${k}
    join team_members tm on tm.org_id = k.org_id and tm.user_id = k.user_id
    join team_roles tr on tr.team_id = tm.team_id and tr.org_id = tm.org_id
    join project_grants gr on gr.project_id = k.project_id and gr.role_id = tr.role_id and gr.role_id is not null`;
const GRANTS_JSON = `json_agg(json_build_object('kind', x.kind, 'grantId', x.grant_id, 'level', x.level,
                                   'teamId', x.team_id, 'teamName', x.team_name, 'roleKey', x.role_key)
                 order by x.kind, x.team_name, x.role_key)`;

/**
 * The decision query for one pair: `pairs` is a relation (user_id, project_id,
 * session_id, ord) of one row, and everything else is gathered in the same statement.
 * Its grants are probed per pair (a lateral join); a batch is set-based instead.
 */
const SINGLE_FACTS_SQL = (pairs: string) => `
with pairs as (${pairs})
select ${PAIR_COLUMNS},
       ${SESSION_COLUMNS},
       coalesce(g.grants, '[]'::json) as grants
  from ${PAIR_JOINS}
  ${SESSION_JOIN}
  left join lateral (
    select ${GRANTS_JSON} as grants
      from (${GRANTS(`(select c.ord, c.user_id, p.id as project_id, p.org_id, m.role as membership_role) k`)}) x
  ) g on true
 order by c.ord`;

/**
 * The decision query for many pairs at once. The grants of all pairs are found by
 * joins over the whole set and grouped by pair: probing them pair by pair (as
 * `SINGLE_FACTS_SQL` does) runs a five-branch plan per pair. Run by `withIndexCosts`.
 */
const BATCH_FACTS_SQL = (pairs: string) => `
with pairs as (${pairs}),
c as (select ${PAIR_COLUMNS} from ${PAIR_JOINS}),
x as (${GRANTS('c k')}),
g as (select x.ord, ${GRANTS_JSON} as grants from x group by x.ord)
select c.*,
       ${SESSION_COLUMNS},
       coalesce(g.grants, '[]'::json) as grants
  from c
  ${SESSION_JOIN}
  left join g on g.ord = c.ord
 order by c.ord`;

/**
 * Runs a batch statement planned with `random_page_cost` 1.1 (SET LOCAL, so only for it):
 * with the default 4, PostgreSQL hashed every row of users, memberships and team_members
 * (34k, 34k and 82k rows after a default bench run) for each 1,000-pair batch instead of
 * probing their indexes for the pairs, 50-60 ms per batch against 27 (EXPLAIN ANALYZE,
 * timing off, best of 12; the per-pair lateral plan took 43-55). The pages are cached
 * (the tables are small and hot), so probes cost what 1.1 says. Inside a caller's
 * transaction the statement runs as it is, leaving that transaction's settings alone.
 */
async function withIndexCosts<T>(q: Queryable, run: (q: Queryable) => Promise<T>): Promise<T> {
  if (q.isTransaction) return run(q);
  return q.transaction(async (trx) => {
    await trx.raw('set local random_page_cost = 1.1');
    return run(trx);
  });
}

/** Up to this many pairs are probed pair by pair in one prepared statement; more go set-based. */
export const MAX_PROBED_PAIRS = 32;

/**
 * A few pairs (one, or single decisions asked together), each probed on its own (a lateral
 * join), as a prepared statement: planning took four times as long as running it. Typed
 * scalars, not arrays, so PostgreSQL keeps a plan for that many pairs; counts are rounded up
 * to a power of two with empty pairs (they match no row), so a connection plans 6 statements,
 * not 32. The texts are built once: a hot statement's text is hashed to find its name.
 */
const probedTexts = new Map<number, string>();
function probedFactsSql(slots: number): string {
  let sql = probedTexts.get(slots);
  if (!sql) {
    const rows = Array.from({ length: slots }, (_, i) => `select ?::uuid as user_id, ?::uuid as project_id, ?::uuid as session_id, ${i + 1}::bigint as ord`);
    sql = SINGLE_FACTS_SQL(rows.join(' union all '));
    probedTexts.set(slots, sql);
  }
  return sql;
}

export type AccessPair = { userId: string; projectId: string; sessionId?: string | null };

export function createAccessQueries(db: Queryable) {
  return {
    /** Facts for any number of pairs in one statement, in input order: up to MAX_PROBED_PAIRS probed pair by pair, more set-based. */
    async factsForPairs(pairs: readonly AccessPair[], q: Queryable = db): Promise<AccessFactsRow[]> {
      if (pairs.length === 0) return [];
      if (pairs.length <= MAX_PROBED_PAIRS) {
        const slots = 2 ** Math.ceil(Math.log2(pairs.length));
        const bindings: (string | null)[] = [];
        for (let i = 0; i < slots; i++) bindings.push(pairs[i]?.userId ?? null, pairs[i]?.projectId ?? null, pairs[i]?.sessionId ?? null);
        const probed = await prepared(q, probedFactsSql(slots), bindings);
        return (probed.rows as AccessFactsRow[]).slice(0, pairs.length);
      }
      const sql = BATCH_FACTS_SQL(
        `select x.user_id, x.project_id, x.session_id, x.ord
           from unnest(?::uuid[], ?::uuid[], ?::uuid[]) with ordinality as x(user_id, project_id, session_id, ord)`,
      );
      // knex's typings omit nullable array elements; pg and PGlite both send null as SQL NULL in the array
      const bindings = [pairs.map((p) => p.userId), pairs.map((p) => p.projectId), pairs.map((p) => p.sessionId ?? null) as string[]];
      return withIndexCosts(q, async (t) => (await t.raw(sql, bindings)).rows as AccessFactsRow[]);
    },

    /** Facts for one user against every project of an org (the user's project list), ordered by project name. */
    async factsForUserInOrg(orgId: string, userId: string, sessionId: string | null, q: Queryable = db): Promise<AccessFactsRow[]> {
      const sql = BATCH_FACTS_SQL(
        `select ?::uuid as user_id, pr.id as project_id, ?::uuid as session_id,
                row_number() over (order by lower(pr.name), pr.id) as ord
           from projects pr where pr.org_id = ?`,
      );
      return withIndexCosts(q, async (t) => (await t.raw(sql, [userId, sessionId, orgId])).rows as AccessFactsRow[]);
    },
  };
}
export type AccessQueries = ReturnType<typeof createAccessQueries>;
