/** Who is calling the admin API. Later issues add user sessions beside service tokens. */
export type ServicePrincipal = { kind: 'service'; tokenId: string; name: string };
export type Principal = ServicePrincipal;

export type AuditActor = {
  type: 'service_token' | 'user' | 'scim_directory' | 'sso_connection' | 'system';
  id: string | null;
};

export function actorOf(principal: Principal): AuditActor {
  switch (principal.kind) {
    case 'service':
      return { type: 'service_token', id: principal.tokenId };
  }
}
