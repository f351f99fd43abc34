/** Who is calling the admin API. */
export type ServicePrincipal = { kind: 'service'; tokenId: string; name: string };
export type UserPrincipal = {
  kind: 'user';
  sessionId: string;
  userId: string;
  /** how the session was authenticated, e.g. ['pwd'], ['pwd','otp'], ['sso'] */
  amr: string[];
  /** the org whose SSO connection created the session (SSO counts as MFA in that org only) */
  ssoOrgId: string | null;
};
export type Principal = ServicePrincipal | UserPrincipal;

export type AuditActor = {
  type: 'service_token' | 'user' | 'scim_directory' | 'sso_connection' | 'system';
  id: string | null;
};

export function actorOf(principal: Principal): AuditActor {
  switch (principal.kind) {
    case 'service':
      return { type: 'service_token', id: principal.tokenId };
    case 'user':
      return { type: 'user', id: principal.userId };
  }
}
