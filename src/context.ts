import type { Config } from './config.js';
import type { Db } from './db/knex.js';
import type { Logger } from './logger.js';
import { createServiceTokenQueries } from './db/queries/service-tokens.js';
import { createSessionQueries } from './db/queries/sessions.js';
import { createServiceTokenService } from './services/service-tokens.js';
import { createSessionService } from './services/sessions.js';
import { createAuthzService } from './services/authz.js';
import { createOrgService } from './services/orgs.js';
import { createUserService } from './services/users.js';
import { createMemberService } from './services/members.js';
import { createRoleService } from './services/roles.js';
import { createTeamService } from './services/teams.js';
import { createProjectService } from './services/projects.js';
import { createAccessService } from './services/access.js';
import { createInviteService } from './services/invites.js';
import { createInviteQueries } from './db/queries/invites.js';
import { createAuditEventService } from './services/audit-events.js';
import { createAuditEventQueries } from './db/queries/audit-events.js';
import { createMfaService } from './services/mfa.js';
import { createScimDirectoryService } from './services/scim-directories.js';
import { createDomainService } from './services/domains.js';
import { createSsoConnectionService } from './services/sso-connections.js';

/** What every service factory receives. Services that need another service take it as an explicit extra argument. */
export type CoreDeps = { config: Config; db: Db; logger: Logger };

/** The one wiring point: queries (SQL only) and services (domain rules) built once per process. */
export function createContext(deps: CoreDeps) {
  const { db, config } = deps;
  const queries = {
    serviceTokens: createServiceTokenQueries(db),
    sessions: createSessionQueries(db),
  };
  const authz = createAuthzService(db);
  const sessions = createSessionService(db, config, queries.sessions);
  const access = createAccessService(deps);
  const scimDirectories = createScimDirectoryService(deps);
  const services = {
    serviceTokens: createServiceTokenService(db, queries.serviceTokens, config.serviceTokenCacheMs),
    sessions,
    authz,
    orgs: createOrgService(deps, scimDirectories.forgetOrg),
    users: createUserService(deps, queries.sessions),
    members: createMemberService(deps, authz),
    roles: createRoleService(deps),
    teams: createTeamService(deps),
    projects: createProjectService(deps, authz, access),
    access,
    invites: createInviteService(deps, createInviteQueries(db)),
    auditEvents: createAuditEventService(deps, createAuditEventQueries(db)),
    mfa: createMfaService(deps, authz, sessions),
    scimDirectories,
    domains: createDomainService(deps, authz),
    ssoConnections: createSsoConnectionService(deps, authz, sessions),
  };
  return { ...deps, queries, services };
}
export type AppContext = ReturnType<typeof createContext>;
