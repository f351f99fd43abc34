/**
 * Who is calling the admin API. `requestId` is the id of the request that
 * authenticated it (set by the authenticate middleware), carried into audit events.
 */
export type ServicePrincipal = { kind: 'service'; tokenId: string; name: string; requestId?: string };
export type UserPrincipal = {
  kind: 'user';
  requestId?: string;
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
  /** the HTTP request the action came through (audit_events.request_id); none for CLI and startup actions */
  requestId?: string;
};

export function actorOf(principal: Principal): AuditActor {
  switch (principal.kind) {
    case 'service':
      return { type: 'service_token', id: principal.tokenId, requestId: principal.requestId };
    case 'user':
      return { type: 'user', id: principal.userId, requestId: principal.requestId };
  }
}
