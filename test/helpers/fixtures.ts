import { randomBytes } from 'node:crypto';
import type { TestApp } from './app.js';
import type { BuiltinRole } from '../../src/authz/permissions.js';

/**
 * Arrange data straight in the database (fast, independent of the endpoints under
 * test), and open real sessions through the API.
 */
const uniq = () => randomBytes(4).toString('hex');

export async function insertUser(t: TestApp, opts: { email?: string; name?: string; status?: 'active' | 'suspended' } = {}) {
  const [row] = await t.testDb
    .db('users')
    .insert({ email: opts.email ?? `user-${uniq()}@example.com`, name: opts.name ?? 'Test User', status: opts.status ?? 'active' })
    .returning('*');
  return row as { id: string; email: string; name: string };
}

export async function insertOrg(t: TestApp, opts: { slug?: string; name?: string; visibility?: 'private' | 'public'; ownerId?: string } = {}) {
  const [org] = await t.testDb
    .db('organizations')
    .insert({ slug: opts.slug ?? `org-${uniq()}`, name: opts.name ?? 'Test Org', visibility: opts.visibility ?? 'private' })
    .returning('*');
  if (opts.ownerId) await addMember(t, org.id, opts.ownerId, 'owner');
  return org as { id: string; slug: string; name: string };
}

export async function addMember(
  t: TestApp,
  orgId: string,
  userId: string,
  role: BuiltinRole = 'member',
  opts: { status?: 'active' | 'suspended'; source?: string } = {},
) {
  await t.testDb.db('memberships').insert({ org_id: orgId, user_id: userId, role, status: opts.status ?? 'active', source: opts.source ?? 'manual' });
}

/** Opens a password session for the user through POST /api/v1/sessions; returns the Authorization header value. */
export async function sessionAuth(t: TestApp, userId: string, amr: string[] = ['pwd']): Promise<string> {
  const res = await t.http.post('/api/v1/sessions').set('Authorization', t.adminAuth).send({ userId, amr });
  if (res.status !== 201) throw new Error(`session create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return `Bearer ${res.body.token}`;
}

/** A user with a session who is a member of `orgId` with `role`. */
export async function memberWithSession(t: TestApp, orgId: string, role: BuiltinRole = 'member') {
  const user = await insertUser(t);
  await addMember(t, orgId, user.id, role);
  return { user, auth: await sessionAuth(t, user.id) };
}

/** Audit events of an action (optionally for one target), oldest first. */
export async function auditEvents(t: TestApp, action: string, targetId?: string) {
  const q = t.testDb.db('audit_events').where({ action }).orderBy('id');
  if (targetId) q.andWhere({ target_id: targetId });
  return q;
}

/** An org whose owner has a password session. */
export async function orgWithOwner(t: TestApp) {
  const owner = await insertUser(t);
  const org = await insertOrg(t, { ownerId: owner.id });
  return { org, owner, ownerAuth: await sessionAuth(t, owner.id) };
}
