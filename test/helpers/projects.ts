import { randomBytes } from 'node:crypto';
import type { TestApp } from './app.js';

/**
 * Arrange teams, roles, projects, grants, sessions and MFA enrolment straight in the
 * database, for the teams / projects / access tests.
 */
export async function insertTeam(t: TestApp, orgId: string, opts: { name?: string; scimDirectoryId?: string } = {}) {
  const [row] = await t.testDb
    .db('teams')
    .insert({ org_id: orgId, name: opts.name ?? `team-${randomBytes(3).toString('hex')}`, scim_directory_id: opts.scimDirectoryId ?? null })
    .returning('*');
  return row as { id: string; name: string };
}

export async function addTeamMember(t: TestApp, orgId: string, teamId: string, userId: string) {
  await t.testDb.db('team_members').insert({ org_id: orgId, team_id: teamId, user_id: userId });
}

export async function insertRole(t: TestApp, orgId: string, key: string, permissions: string[] = []) {
  const [row] = await t.testDb.db('roles').insert({ org_id: orgId, key, name: key, permissions }).returning('*');
  return row as { id: string; key: string };
}

export async function giveRole(t: TestApp, orgId: string, userId: string, roleId: string) {
  await t.testDb.db('membership_roles').insert({ org_id: orgId, user_id: userId, role_id: roleId });
}

export async function giveTeamRole(t: TestApp, orgId: string, teamId: string, roleId: string) {
  await t.testDb.db('team_roles').insert({ org_id: orgId, team_id: teamId, role_id: roleId });
}

export async function insertProject(t: TestApp, orgId: string, opts: { name?: string; visibility?: 'private' | 'internal' | 'public' } = {}) {
  const [row] = await t.testDb
    .db('projects')
    .insert({ org_id: orgId, name: opts.name ?? `project-${randomBytes(3).toString('hex')}`, visibility: opts.visibility ?? 'private' })
    .returning('*');
  return row as { id: string; name: string; org_id: string };
}

type Subject = { user_id: string } | { team_id: string } | { role_id: string } | { builtin_role: string };
export async function insertGrant(t: TestApp, orgId: string, projectId: string, subject: Subject, level: 'read' | 'write' | 'admin') {
  const subject_type = 'user_id' in subject ? 'user' : 'team_id' in subject ? 'team' : 'role';
  const [row] = await t.testDb
    .db('project_grants')
    .insert({ org_id: orgId, project_id: projectId, subject_type, level, ...subject })
    .returning('*');
  return row as { id: string };
}

export async function insertScimDirectory(t: TestApp, orgId: string) {
  const [row] = await t.testDb
    .db('scim_directories')
    .insert({ org_id: orgId, name: 'Okta', token_hash: randomBytes(32).toString('hex') })
    .returning('*');
  return row as { id: string };
}

export async function insertSsoConnection(t: TestApp, orgId: string) {
  const [row] = await t.testDb
    .db('sso_connections')
    .insert({ org_id: orgId, idp_entity_id: `https://idp.test/${randomBytes(3).toString('hex')}`, idp_sso_url: 'https://idp.test/sso' })
    .returning('*');
  return row as { id: string };
}

/** A session row as the ACS or TOTP verification would leave it (amr `sso`/`otp` cannot be claimed through the API). */
export async function insertSession(t: TestApp, userId: string, amr: string[], opts: { ssoOrgId?: string; ssoConnectionId?: string; revoked?: boolean } = {}) {
  const [row] = await t.testDb
    .db('sessions')
    .insert({
      token_hash: randomBytes(32).toString('hex'),
      user_id: userId,
      amr,
      sso_org_id: opts.ssoOrgId ?? null,
      sso_connection_id: opts.ssoConnectionId ?? null,
      expires_at: new Date(Date.now() + 3_600_000),
      revoked_at: opts.revoked ? new Date() : null,
    })
    .returning('*');
  return row as { id: string };
}

export async function enrolTotp(t: TestApp, userId: string, confirmed = true) {
  await t.testDb.db('user_totp').insert({ user_id: userId, secret_encrypted: 'x', confirmed_at: confirmed ? new Date() : null });
}
