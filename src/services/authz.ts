import type { Db, Queryable } from '../db/knex.js';
import type { Principal } from '../auth/principal.js';
import { AppError, forbidden, notFound } from '../errors.js';
import { isUuid } from '../http/params.js';
import {
  BUILTIN_ROLE_PERMISSIONS,
  ALL_PERMISSIONS,
  isPermission,
  type BuiltinRole,
  type Permission,
} from '../authz/permissions.js';

/** What the caller may do in one org, resolved once per request. */
export type OrgAccess = {
  orgId: string;
  principal: Principal;
  /** null for service tokens */
  role: BuiltinRole | null;
  permissions: ReadonlySet<Permission>;
};

export type MfaState = 'satisfied' | 'enroll_required' | 'verify_required';

type MembershipFacts = {
  role: BuiltinRole;
  status: 'active' | 'suspended';
  mfa_required: boolean;
  mfa_grace_period_hours: number | null;
  mfa_required_since: Date | null;
  sso_required: boolean;
  custom_permissions: string[];
  mfa_enrolled: boolean;
};

const ALL = new Set<Permission>(ALL_PERMISSIONS);

/**
 * How a session stands against an org's MFA policy. SSO sign-ins are exempt,
 * but only in the org whose connection signed them in.
 */
export function mfaState(
  principal: { amr: string[]; ssoOrgId: string | null },
  orgId: string,
  org: { mfa_required: boolean; mfa_grace_period_hours: number | null; mfa_required_since: Date | null },
  enrolled: boolean,
  now = Date.now(),
): MfaState {
  if (!org.mfa_required) return 'satisfied';
  if (principal.amr.includes('otp')) return 'satisfied';
  if (principal.amr.includes('sso') && principal.ssoOrgId === orgId) return 'satisfied';
  if (enrolled) return 'verify_required';
  const graceEnds =
    org.mfa_required_since && org.mfa_grace_period_hours
      ? org.mfa_required_since.getTime() + org.mfa_grace_period_hours * 3_600_000
      : 0;
  return now < graceEnds ? 'satisfied' : 'enroll_required';
}

export function createAuthzService(db: Db) {
  async function membershipFacts(orgId: string, userId: string, q: Queryable): Promise<MembershipFacts | undefined> {
    const result = await q.raw(
      `select m.role, m.status, o.mfa_required, o.mfa_grace_period_hours, o.mfa_required_since, o.sso_required,
              coalesce((
                select array_agg(distinct p) from (
                  select unnest(r.permissions) as p
                    from membership_roles mr join roles r on r.id = mr.role_id
                   where mr.org_id = m.org_id and mr.user_id = m.user_id
                  union
                  select unnest(r.permissions)
                    from team_members tm
                    join team_roles tr on tr.team_id = tm.team_id
                    join roles r on r.id = tr.role_id
                   where tm.org_id = m.org_id and tm.user_id = m.user_id
                ) x
              ), '{}') as custom_permissions,
              exists (select 1 from user_totp t where t.user_id = m.user_id and t.confirmed_at is not null) as mfa_enrolled
         from memberships m
         join organizations o on o.id = m.org_id
        where m.org_id = ? and m.user_id = ?`,
      [orgId, userId],
    );
    return result.rows[0] as MembershipFacts | undefined;
  }

  /**
   * Resolves the caller's access to an org. A user who is not a member (or an org
   * that does not exist) is a 404, so ids reveal nothing; a suspended membership,
   * an unmet MFA policy or an unmet SSO policy is a 403 with its own code.
   */
  async function resolveOrg(principal: Principal, orgId: string, q: Queryable = db): Promise<OrgAccess> {
    if (!isUuid(orgId)) throw notFound('Organization');
    if (principal.kind === 'service') {
      const org = await q('organizations').where({ id: orgId }).first('id');
      if (!org) throw notFound('Organization');
      return { orgId, principal, role: null, permissions: ALL };
    }
    const facts = await membershipFacts(orgId, principal.userId, q);
    if (!facts) throw notFound('Organization');
    if (facts.status !== 'active') throw forbidden('membership.suspended', 'Your membership of this organization is suspended');
    const mfa = mfaState(principal, orgId, facts, facts.mfa_enrolled);
    if (mfa !== 'satisfied') {
      throw new AppError('mfa_required', 403, 'This organization requires multi-factor authentication', { mfa });
    }
    if (facts.sso_required && !(principal.amr.includes('sso') && principal.ssoOrgId === orgId)) {
      throw forbidden('sso_required', 'This organization requires signing in through its SSO connection');
    }
    const permissions = new Set<Permission>(BUILTIN_ROLE_PERMISSIONS[facts.role]);
    for (const p of facts.custom_permissions) if (isPermission(p)) permissions.add(p);
    return { orgId, principal, role: facts.role, permissions };
  }

  return {
    resolveOrg,
    /** resolveOrg + the permission the endpoint needs (403 `forbidden` naming it when missing). */
    async requireOrg(principal: Principal, orgId: string, permission: Permission, q: Queryable = db): Promise<OrgAccess> {
      const access = await resolveOrg(principal, orgId, q);
      if (!access.permissions.has(permission)) {
        throw forbidden('forbidden', `Missing permission ${permission}`, { permission });
      }
      return access;
    },
  };
}
export type AuthzService = ReturnType<typeof createAuthzService>;
