import DataLoader from 'dataloader';
import type { CoreDeps } from '../context.js';
import { createAccessQueries, MAX_PROBED_PAIRS, type AccessFactsRow, type AccessPair, type GrantFact } from '../db/queries/access.js';
import { mfaState, type MfaState } from './authz.js';
import { isUuid } from '../http/params.js';

export type AccessLevel = 'none' | 'read' | 'write' | 'admin';
const RANK: Record<AccessLevel, number> = { none: 0, read: 1, write: 2, admin: 3 };
export const atLeast = (level: AccessLevel, wanted: AccessLevel) => RANK[level] >= RANK[wanted];

/**
 * Why a user has (or lacks) a level. Machine-readable by `source`, readable by people
 * through the names it carries. Grants carry `grantId` so an admin can act on them.
 */
export type AccessReason =
  | { source: 'direct'; grantId: string; level: AccessLevel; external: boolean }
  | { source: 'team'; grantId: string; teamId: string; teamName: string; level: AccessLevel }
  | { source: 'role'; grantId: string; role: string; builtin: true; via: 'membership'; level: AccessLevel }
  | { source: 'role'; grantId: string; role: string; builtin: false; via: 'membership'; level: AccessLevel }
  | { source: 'role'; grantId: string; role: string; builtin: false; via: 'team'; teamId: string; teamName: string; level: AccessLevel }
  | { source: 'org_role'; role: 'owner' | 'admin'; level: 'admin' }
  | { source: 'visibility'; visibility: 'internal' | 'public'; orgVisibility: 'private' | 'public'; level: 'read' }
  | { source: 'not_found' }
  | { source: 'suspended'; scope: 'user' | 'membership' }
  | { source: 'session_invalid' }
  | { source: 'mfa_required'; mfa: Exclude<MfaState, 'satisfied'> }
  | { source: 'sso_required' };

export type AccessDecision = { level: AccessLevel; reasons: AccessReason[] };

const deny = (...reasons: AccessReason[]): AccessDecision => ({ level: 'none', reasons });

function grantReason(g: GrantFact, member: boolean): AccessReason {
  switch (g.kind) {
    case 'direct':
      return { source: 'direct', grantId: g.grantId, level: g.level, external: !member };
    case 'team':
      return { source: 'team', grantId: g.grantId, teamId: g.teamId!, teamName: g.teamName!, level: g.level };
    case 'builtin_role':
      return { source: 'role', grantId: g.grantId, role: g.roleKey!, builtin: true, via: 'membership', level: g.level };
    case 'member_role':
      return { source: 'role', grantId: g.grantId, role: g.roleKey!, builtin: false, via: 'membership', level: g.level };
    case 'team_role':
      return { source: 'role', grantId: g.grantId, role: g.roleKey!, builtin: false, via: 'team', teamId: g.teamId!, teamName: g.teamName!, level: g.level };
  }
}

/**
 * The effective-access rule of SPEC.md, as a pure function of the facts gathered by
 * one query. Denials (suspension, session, MFA, SSO) answer `none` with only the
 * denial reason; otherwise the level is the max over every contributing path and
 * every path is listed.
 */
export function decideAccess(f: AccessFactsRow, now = Date.now()): AccessDecision {
  if (!f.org_id) return deny({ source: 'not_found' });
  if (f.user_status === 'suspended') return deny({ source: 'suspended', scope: 'user' });
  if (f.membership_status === 'suspended') return deny({ source: 'suspended', scope: 'membership' });
  if (f.session_id && !f.live_session_id) return deny({ source: 'session_invalid' });

  const member = f.membership_status === 'active';
  const reasons: AccessReason[] = f.grants.map((g) => grantReason(g, member));
  if (member && (f.membership_role === 'owner' || f.membership_role === 'admin')) {
    reasons.push({ source: 'org_role', role: f.membership_role, level: 'admin' });
  }
  const orgVisibility = f.org_visibility ?? 'private';
  if (f.project_visibility === 'internal' || f.project_visibility === 'public') {
    if (member || (f.project_visibility === 'public' && orgVisibility === 'public')) {
      reasons.push({ source: 'visibility', visibility: f.project_visibility, orgVisibility, level: 'read' });
    }
  }

  // The org's sign-in policies bind the people it knows: members and outside
  // collaborators holding a grant. Anyone else only ever gets public read.
  const knownToOrg = member || f.grants.length > 0;
  if (knownToOrg && f.mfa_required) {
    const org = { mfa_required: true, mfa_grace_period_hours: f.mfa_grace_period_hours, mfa_required_since: f.mfa_required_since };
    // Without a session the question is about the user: enrolment satisfies the policy.
    const state =
      f.live_session_id !== null
        ? mfaState({ amr: f.session_amr ?? [], ssoOrgId: f.session_sso_org_id }, f.org_id, org, f.mfa_enrolled, now)
        : f.mfa_enrolled
          ? 'satisfied'
          : mfaState({ amr: [], ssoOrgId: null }, f.org_id, org, false, now);
    if (state !== 'satisfied') return deny({ source: 'mfa_required', mfa: state });
  }
  // SSO is about how a session signed in; outside collaborators are not in the org's IdP.
  if (member && f.sso_required && f.live_session_id !== null) {
    const fromThisOrgSso = (f.session_amr ?? []).includes('sso') && f.session_sso_org_id === f.org_id;
    if (!fromThisOrgSso) return deny({ source: 'sso_required' });
  }

  let level: AccessLevel = 'none';
  for (const r of reasons) if ('level' in r && RANK[r.level] > RANK[level]) level = r.level;
  return { level, reasons };
}

export function createAccessService(deps: CoreDeps) {
  const queries = createAccessQueries(deps.db);
  const counts = { decisions: 0, statements: 0 };
  // Single decisions asked in the same turn of the event loop share one statement, sent when
  // the turn ends (setImmediate), up to MAX_PROBED_PAIRS at a time: under load, requests that
  // arrived together cost the database one statement; a decision asked alone waits for nothing
  // but the end of its own turn. `cache: false`: no answer is reused, each one reads the database.
  const askedTogether = new DataLoader<AccessPair, AccessFactsRow>(
    async (pairs) => {
      counts.statements++;
      counts.decisions += pairs.length;
      return queries.factsForPairs(pairs);
    },
    { cache: false, maxBatchSize: MAX_PROBED_PAIRS, batchScheduleFn: (send) => setImmediate(send) },
  );
  return {
    /**
     * One decision. `undefined` when the project does not exist. Ids must be UUIDs (the
     * routes check them): a malformed one would fail the statement it shares with others.
     */
    async decide(pair: AccessPair): Promise<(AccessDecision & { orgId: string }) | undefined> {
      if (!isUuid(pair.userId) || !isUuid(pair.projectId) || (pair.sessionId != null && !isUuid(pair.sessionId))) {
        throw new TypeError('access.decide(): userId, projectId and sessionId must be UUIDs');
      }
      const facts = await askedTogether.load(pair);
      if (!facts.org_id) return undefined;
      return { orgId: facts.org_id, ...decideAccess(facts) };
    },

    /** Single decisions answered and the statements that answered them, since start (for /metrics). */
    singleDecisionCounts: (): Readonly<typeof counts> => ({ ...counts }),

    /** Many decisions in one query, answered in input order; unknown projects answer `not_found` in their slot. */
    async decideMany(pairs: readonly AccessPair[]) {
      const rows = await queries.factsForPairs(pairs);
      return rows.map((f) => ({ userId: f.user_id, projectId: f.project_id, orgId: f.org_id, ...decideAccess(f) }));
    },

    /** Every project of the org with the user's decision (none included), ordered by project name. */
    async decideForUserInOrg(orgId: string, userId: string, sessionId: string | null = null) {
      const rows = await queries.factsForUserInOrg(orgId, userId, sessionId);
      return rows.map((f) => ({ projectId: f.project_id, ...decideAccess(f) }));
    },
  };
}
export type AccessService = ReturnType<typeof createAccessService>;
