import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertOrg, insertUser, memberWithSession, sessionAuth, orgWithOwner } from '../helpers/fixtures.js';
import { hashToken } from '../../src/auth/tokens.js';

const HOUR = 3_600_000;

for (const backend of testBackends()) {
  describe(`invites [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());


    async function insertRole(orgId: string, key: string, permissions: string[] = []) {
      const [row] = await t.testDb.db('roles').insert({ org_id: orgId, key, name: key, permissions }).returning('*');
      return row as { id: string; key: string };
    }

    /** Creates an invite through the API with the service token. */
    async function invite(orgId: string, payload: Record<string, unknown>) {
      const res = await t.http.post(`/api/v1/orgs/${orgId}/invites`).set('Authorization', t.adminAuth).send(payload);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body as { id: string; token: string; email: string; status: string };
    }

    const accept = (auth: string, token: string) => t.http.post('/api/v1/invites/accept').set('Authorization', auth).send({ token });
    const inviteRow = (id: string) => t.testDb.db('invites').where({ id }).first();
    const membership = (orgId: string, userId: string) => t.testDb.db('memberships').where({ org_id: orgId, user_id: userId }).first();

    describe('POST /orgs/:orgId/invites', () => {
      it('creates an invite: token shown once, only its SHA-256 stored, 7-day default expiry, audited', async () => {
        const { org, owner, ownerAuth } = await orgWithOwner(t);
        await insertRole(org.id, 'billing');
        const before = Date.now();
        const res = await t.http
          .post(`/api/v1/orgs/${org.id}/invites`)
          .set('Authorization', ownerAuth)
          .send({ email: '  New.Person@Example.com ', role: 'admin', roles: ['billing'] })
          .expect(201);
        assert.match(res.body.token, /^inv_[A-Za-z0-9_-]{43}$/);
        assert.equal(res.body.email, 'New.Person@Example.com');
        assert.equal(res.body.orgId, org.id);
        assert.equal(res.body.role, 'admin');
        assert.deepEqual(res.body.roles, ['billing']);
        assert.equal(res.body.status, 'pending');
        assert.equal(res.body.invitedByUserId, owner.id);
        assert.equal(res.body.acceptedAt, null);
        assert.equal(res.body.acceptUrl, undefined);
        const expires = new Date(res.body.expiresAt).getTime();
        assert.ok(Math.abs(expires - (before + 7 * 24 * HOUR)) < 60_000, `expiresAt ${res.body.expiresAt}`);

        const row = await inviteRow(res.body.id);
        assert.equal(row.token_hash, hashToken(res.body.token));
        assert.ok(!JSON.stringify(row).includes(res.body.token));

        const events = await auditEvents(t, 'invite.created', res.body.id);
        assert.equal(events.length, 1);
        assert.equal(events[0].org_id, org.id);
        assert.equal(events[0].actor_type, 'user');
        assert.equal(events[0].actor_id, owner.id);
        assert.equal(events[0].after.email, 'New.Person@Example.com');
        assert.ok(!JSON.stringify(events[0]).includes(res.body.token), 'the token never reaches the audit log');
      });

      it('a service token may invite; expiresInHours sets the expiry', async () => {
        const { org } = await orgWithOwner(t);
        const before = Date.now();
        const res = await t.http
          .post(`/api/v1/orgs/${org.id}/invites`)
          .set('Authorization', t.adminAuth)
          .send({ email: 'svc-invited@example.com', role: 'viewer', expiresInHours: 2 })
          .expect(201);
        assert.equal(res.body.invitedByUserId, null);
        assert.ok(Math.abs(new Date(res.body.expiresAt).getTime() - (before + 2 * HOUR)) < 60_000);
        const [event] = await auditEvents(t, 'invite.created', res.body.id);
        assert.equal(event.actor_type, 'service_token');
      });

      it('bad input is a 400 naming the field, and writes nothing', async () => {
        const { org, ownerAuth } = await orgWithOwner(t);
        await insertRole(org.id, 'known');
        const cases: [Record<string, unknown>, string][] = [
          [{ role: 'member' }, 'email'],
          [{ email: 'not-an-email', role: 'member' }, 'email'],
          [{ email: 'a@example.com', role: 'superuser' }, 'role'],
          [{ email: 'a@example.com', role: 'member', expiresInHours: 0 }, 'expiresInHours'],
          [{ email: 'a@example.com', role: 'member', expiresInHours: 721 }, 'expiresInHours'],
          [{ email: 'a@example.com', role: 'member', roles: ['Bad Key'] }, 'roles.0'],
          [{ email: 'a@example.com', role: 'member', extra: true }, ''],
        ];
        for (const [payload, path] of cases) {
          const res = await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', ownerAuth).send(payload).expect(400);
          assert.equal(res.body.error.code, 'validation.failed', JSON.stringify(payload));
          assert.ok(
            res.body.error.details.some((d: { path: string; message: string }) => d.path === path || (path === '' && /extra/.test(d.message))),
            `${JSON.stringify(payload)} → ${JSON.stringify(res.body.error.details)}`,
          );
        }
        // a custom role key that does not exist in the org is named
        const res = await t.http
          .post(`/api/v1/orgs/${org.id}/invites`)
          .set('Authorization', ownerAuth)
          .send({ email: 'a@example.com', role: 'member', roles: ['known', 'ghost'] })
          .expect(400);
        assert.equal(res.body.error.code, 'invite.unknown_role');
        assert.match(res.body.error.message, /ghost/);
        assert.equal(res.body.error.details[0].path, 'roles.1');
        // a role of ANOTHER org does not count
        const other = await orgWithOwner(t);
        await insertRole(other.org.id, 'elsewhere');
        await t.http
          .post(`/api/v1/orgs/${org.id}/invites`)
          .set('Authorization', ownerAuth)
          .send({ email: 'a@example.com', role: 'member', roles: ['elsewhere'] })
          .expect(400);
        assert.equal((await t.testDb.db('invites').where({ org_id: org.id })).length, 0);
        const events = await t.testDb.db('audit_events').where({ org_id: org.id, action: 'invite.created' });
        assert.equal(events.length, 0);
      });

      it('missing auth is 401; a member without members:invite is 403; another org’s user is 404', async () => {
        const { org } = await orgWithOwner(t);
        const payload = { email: 'x@example.com', role: 'member' };
        await t.http.post(`/api/v1/orgs/${org.id}/invites`).send(payload).expect(401);
        const member = await memberWithSession(t, org.id, 'member');
        const forbiddenRes = await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', member.auth).send(payload).expect(403);
        assert.equal(forbiddenRes.body.error.code, 'forbidden');
        assert.equal(forbiddenRes.body.error.details.permission, 'members:invite');
        const stranger = await orgWithOwner(t);
        await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', stranger.ownerAuth).send(payload).expect(404);
        await t.http.post('/api/v1/orgs/not-a-uuid/invites').set('Authorization', t.adminAuth).send(payload).expect(404);
        await t.http.post('/api/v1/orgs/00000000-0000-4000-8000-000000000000/invites').set('Authorization', t.adminAuth).send(payload).expect(404);
        assert.equal((await t.testDb.db('invites').where({ org_id: org.id })).length, 0);
        assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id })).length, 0);
      });

      it('a custom role granting members:invite is enough; owner invites need ownership:manage', async () => {
        const { org, ownerAuth } = await orgWithOwner(t);
        const recruiter = await memberWithSession(t, org.id, 'member');
        const role = await insertRole(org.id, 'recruiter', ['members:invite']);
        await t.testDb.db('membership_roles').insert({ org_id: org.id, user_id: recruiter.user.id, role_id: role.id });
        await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', recruiter.auth).send({ email: 'r1@example.com', role: 'member' }).expect(201);

        const admin = await memberWithSession(t, org.id, 'admin');
        const refused = await t.http
          .post(`/api/v1/orgs/${org.id}/invites`)
          .set('Authorization', admin.auth)
          .send({ email: 'next-owner@example.com', role: 'owner' })
          .expect(403);
        assert.equal(refused.body.error.details.permission, 'ownership:manage');
        assert.equal((await t.testDb.db('invites').where({ org_id: org.id }).whereRaw('email = ?', ['next-owner@example.com'])).length, 0);
        const ok = await t.http
          .post(`/api/v1/orgs/${org.id}/invites`)
          .set('Authorization', ownerAuth)
          .send({ email: 'next-owner@example.com', role: 'owner' })
          .expect(201);
        assert.equal(ok.body.role, 'owner');
        assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id, action: 'invite.created' })).length, 2);
      });

      it('refuses an existing member (409) and a second pending invite for the same email, case-insensitively (409)', async () => {
        const { org, owner } = await orgWithOwner(t);
        const existing = await insertUser(t, { email: `Member-${Date.now()}@Example.com` });
        await addMember(t, org.id, existing.id, 'viewer');
        const memberRes = await t.http
          .post(`/api/v1/orgs/${org.id}/invites`)
          .set('Authorization', t.adminAuth)
          .send({ email: existing.email.toLowerCase(), role: 'member' })
          .expect(409);
        assert.equal(memberRes.body.error.code, 'invite.already_member');
        const ownerUser = await t.testDb.db('users').where({ id: owner.id }).first();
        await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', t.adminAuth).send({ email: ownerUser.email, role: 'member' }).expect(409);

        const first = await invite(org.id, { email: 'twice@example.com', role: 'member' });
        const dup = await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', t.adminAuth).send({ email: 'TWICE@example.com', role: 'admin' }).expect(409);
        assert.equal(dup.body.error.code, 'invite.pending_exists');
        // once revoked, a new invite may be sent
        await t.http.delete(`/api/v1/orgs/${org.id}/invites/${first.id}`).set('Authorization', t.adminAuth).expect(204);
        await invite(org.id, { email: 'TWICE@example.com', role: 'admin' });
        // another org may invite the same email at the same time
        const other = await orgWithOwner(t);
        await invite(other.org.id, { email: 'twice@example.com', role: 'member' });
        assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id, action: 'invite.created' })).length, 2);
      });
    });

    describe('GET /orgs/:orgId/invites', () => {
      it('lists newest first with derived status, ?status= filter, pagination, and never the token', async () => {
        const { org } = await orgWithOwner(t);
        const created = [];
        for (let i = 0; i < 7; i++) created.push(await invite(org.id, { email: `list-${i}@example.com`, role: 'member' }));
        // make statuses: 0 accepted, 1 revoked, 2 expired, the rest pending
        const acceptor = await insertUser(t, { email: 'list-0@example.com' });
        await accept(await sessionAuth(t, acceptor.id), created[0]!.token).expect(200);
        await t.http.delete(`/api/v1/orgs/${org.id}/invites/${created[1]!.id}`).set('Authorization', t.adminAuth).expect(204);
        await t.testDb.db('invites').where({ id: created[2]!.id }).update({ expires_at: new Date(Date.now() - 1000) });
        // another org's invite never shows up
        const other = await orgWithOwner(t);
        await invite(other.org.id, { email: 'list-x@example.com', role: 'member' });

        const viewer = await memberWithSession(t, org.id, 'viewer'); // members:read is enough
        const seen: { id: string; status: string; email: string }[] = [];
        let next: string | null = null;
        let pages = 0;
        do {
          const res: { body: { data: Record<string, string>[]; next: string | null } } = await t.http
            .get(`/api/v1/orgs/${org.id}/invites`)
            .query({ limit: 3, ...(next ? { after: next } : {}) })
            .set('Authorization', viewer.auth)
            .expect(200);
          pages++;
          assert.ok(res.body.data.length <= 3);
          for (const item of res.body.data) {
            assert.equal(item.token, undefined);
            assert.equal(item.tokenHash, undefined);
            assert.equal(item.orgId, org.id);
          }
          seen.push(...(res.body.data as unknown as typeof seen));
          next = res.body.next;
        } while (next);
        assert.equal(pages, 3);
        assert.deepEqual(
          seen.map((i) => i.id),
          [...created].reverse().map((i) => i.id),
          'newest first, each exactly once',
        );
        const statusOf = (id: string) => seen.find((i) => i.id === id)?.status;
        assert.equal(statusOf(created[0]!.id), 'accepted');
        assert.equal(statusOf(created[1]!.id), 'revoked');
        assert.equal(statusOf(created[2]!.id), 'expired');
        assert.equal(statusOf(created[3]!.id), 'pending');

        for (const [status, expected] of [
          ['accepted', [created[0]!.id]],
          ['revoked', [created[1]!.id]],
          ['expired', [created[2]!.id]],
          ['pending', created.slice(3).reverse().map((i) => i.id)],
        ] as const) {
          const res = await t.http.get(`/api/v1/orgs/${org.id}/invites`).query({ status }).set('Authorization', t.adminAuth).expect(200);
          assert.deepEqual(res.body.data.map((i: { id: string }) => i.id), expected, status);
          assert.equal(res.body.next, null);
        }
        const byEmail = await t.http.get(`/api/v1/orgs/${org.id}/invites`).query({ email: 'LIST-4@example.com' }).set('Authorization', t.adminAuth).expect(200);
        assert.deepEqual(byEmail.body.data.map((i: { id: string }) => i.id), [created[4]!.id]);

        const one = await t.http.get(`/api/v1/orgs/${org.id}/invites/${created[3]!.id}`).set('Authorization', viewer.auth).expect(200);
        assert.equal(one.body.email, 'list-3@example.com');
        assert.equal(one.body.token, undefined);
        await t.http.get(`/api/v1/orgs/${other.org.id}/invites/${created[3]!.id}`).set('Authorization', t.adminAuth).expect(404);
      });

      it('bad query is a 400 naming the field; 401 without auth; 404 for another org’s user', async () => {
        const { org } = await orgWithOwner(t);
        for (const [q, path] of [
          [{ status: 'done' }, 'status'],
          [{ limit: '0' }, 'limit'],
          [{ limit: 'many' }, 'limit'],
          [{ bogus: '1' }, ''],
        ] as const) {
          const res = await t.http.get(`/api/v1/orgs/${org.id}/invites`).query(q).set('Authorization', t.adminAuth).expect(400);
          assert.equal(res.body.error.code, 'validation.failed');
          if (path) assert.equal(res.body.error.details[0].path, path);
        }
        const bad = await t.http.get(`/api/v1/orgs/${org.id}/invites`).query({ after: 'garbage' }).set('Authorization', t.adminAuth).expect(400);
        assert.equal(bad.body.error.code, 'validation.invalid_cursor');
        await t.http.get(`/api/v1/orgs/${org.id}/invites`).expect(401);
        const stranger = await orgWithOwner(t);
        await t.http.get(`/api/v1/orgs/${org.id}/invites`).set('Authorization', stranger.ownerAuth).expect(404);
        // every built-in role includes members:read, so a member can always list; a suspended one cannot
        const suspended = await insertUser(t);
        await addMember(t, org.id, suspended.id, 'admin', { status: 'suspended' });
        const res = await t.http.get(`/api/v1/orgs/${org.id}/invites`).set('Authorization', await sessionAuth(t, suspended.id)).expect(403);
        assert.equal(res.body.error.code, 'membership.suspended');
      });
    });

    describe('DELETE /orgs/:orgId/invites/:inviteId', () => {
      it('revokes a pending invite (204, audited); revoking again is a no-op; the token then answers 410 invite.revoked', async () => {
        const { org, owner, ownerAuth } = await orgWithOwner(t);
        const inv = await invite(org.id, { email: 'revoke-me@example.com', role: 'member' });
        await t.http.delete(`/api/v1/orgs/${org.id}/invites/${inv.id}`).set('Authorization', ownerAuth).expect(204);
        const row = await inviteRow(inv.id);
        assert.ok(row.revoked_at instanceof Date);
        const events = await auditEvents(t, 'invite.revoked', inv.id);
        assert.equal(events.length, 1);
        assert.equal(events[0].actor_id, owner.id);
        assert.equal(events[0].before.email, 'revoke-me@example.com');

        await t.http.delete(`/api/v1/orgs/${org.id}/invites/${inv.id}`).set('Authorization', ownerAuth).expect(204);
        assert.equal((await auditEvents(t, 'invite.revoked', inv.id)).length, 1);

        const invitee = await insertUser(t, { email: 'revoke-me@example.com' });
        const res = await accept(await sessionAuth(t, invitee.id), inv.token).expect(410);
        assert.equal(res.body.error.code, 'invite.revoked');
        assert.equal(await membership(org.id, invitee.id), undefined);
      });

      it('an accepted invite cannot be revoked (409, nothing written)', async () => {
        const { org } = await orgWithOwner(t);
        const inv = await invite(org.id, { email: 'accepted-first@example.com', role: 'member' });
        const invitee = await insertUser(t, { email: 'accepted-first@example.com' });
        await accept(await sessionAuth(t, invitee.id), inv.token).expect(200);
        const res = await t.http.delete(`/api/v1/orgs/${org.id}/invites/${inv.id}`).set('Authorization', t.adminAuth).expect(409);
        assert.equal(res.body.error.code, 'invite.already_accepted');
        assert.equal((await inviteRow(inv.id)).revoked_at, null);
        assert.equal((await auditEvents(t, 'invite.revoked', inv.id)).length, 0);
      });

      it('401 without auth, 403 without members:invite, 404 for another org’s user, invite or a malformed id', async () => {
        const { org } = await orgWithOwner(t);
        const inv = await invite(org.id, { email: 'keep-me@example.com', role: 'member' });
        const path = `/api/v1/orgs/${org.id}/invites/${inv.id}`;
        await t.http.delete(path).expect(401);
        const viewer = await memberWithSession(t, org.id, 'viewer');
        const res = await t.http.delete(path).set('Authorization', viewer.auth).expect(403);
        assert.equal(res.body.error.details.permission, 'members:invite');
        const stranger = await orgWithOwner(t);
        await t.http.delete(path).set('Authorization', stranger.ownerAuth).expect(404);
        // the invite id through an org the caller does administer: still 404
        await t.http.delete(`/api/v1/orgs/${stranger.org.id}/invites/${inv.id}`).set('Authorization', stranger.ownerAuth).expect(404);
        await t.http.delete(`/api/v1/orgs/${org.id}/invites/not-a-uuid`).set('Authorization', t.adminAuth).expect(404);
        await t.http.delete(`/api/v1/orgs/${org.id}/invites/00000000-0000-4000-8000-000000000000`).set('Authorization', t.adminAuth).expect(404);
        assert.equal((await inviteRow(inv.id)).revoked_at, null);
        assert.equal((await auditEvents(t, 'invite.revoked', inv.id)).length, 0);
      });
    });

    describe('POST /invites/accept', () => {
      it('the invited user accepts (email matched case-insensitively): membership with role and custom roles, audited', async () => {
        const { org } = await orgWithOwner(t);
        const billing = await insertRole(org.id, 'billing', ['audit:read']);
        const inv = await invite(org.id, { email: 'Carol.Case@Example.COM', role: 'admin', roles: ['billing'] });
        const carol = await insertUser(t, { email: 'carol.case@example.com' });
        const auth = await sessionAuth(t, carol.id);

        const res = await accept(auth, inv.token).expect(200);
        assert.equal(res.body.invite.id, inv.id);
        assert.equal(res.body.invite.status, 'accepted');
        assert.equal(res.body.invite.acceptedByUserId, carol.id);
        assert.equal(res.body.invite.token, undefined);
        const { createdAt, updatedAt, ...rest } = res.body.membership;
        assert.deepEqual(rest, { orgId: org.id, userId: carol.id, email: 'carol.case@example.com', name: 'Test User', role: 'admin', roles: ['billing'], status: 'active', source: 'invite' });
        assert.ok(!Number.isNaN(Date.parse(createdAt)) && !Number.isNaN(Date.parse(updatedAt)));

        const m = await membership(org.id, carol.id);
        assert.equal(m.role, 'admin');
        assert.equal(m.source, 'invite');
        assert.equal(m.status, 'active');
        const roles = await t.testDb.db('membership_roles').where({ org_id: org.id, user_id: carol.id });
        assert.deepEqual(roles.map((r) => r.role_id), [billing.id]);
        const row = await inviteRow(inv.id);
        assert.ok(row.accepted_at instanceof Date);
        assert.equal(row.accepted_by_user_id, carol.id);

        const [accepted] = await auditEvents(t, 'invite.accepted', inv.id);
        assert.equal(accepted.org_id, org.id);
        assert.equal(accepted.actor_type, 'user');
        assert.equal(accepted.actor_id, carol.id);
        const [added] = await auditEvents(t, 'member.added', carol.id);
        assert.equal(added.after.source, 'invite');
        assert.equal(added.after.role, 'admin');
        assert.equal(accepted.request_id, added.request_id);

        // the new member now acts in the org with the invite's role
        await t.http.get(`/api/v1/orgs/${org.id}/audit-events`).set('Authorization', auth).expect(200);
      });

      it('single use: a second accept is 410 invite.already_accepted and writes nothing', async () => {
        const { org } = await orgWithOwner(t);
        const inv = await invite(org.id, { email: 'once@example.com', role: 'member' });
        const user = await insertUser(t, { email: 'once@example.com' });
        const auth = await sessionAuth(t, user.id);
        await accept(auth, inv.token).expect(200);
        const res = await accept(auth, inv.token).expect(410);
        assert.equal(res.body.error.code, 'invite.already_accepted');
        assert.equal((await auditEvents(t, 'invite.accepted', inv.id)).length, 1);
      });

      it('expired is 410 invite.expired; unknown token is 404; nothing is written', async () => {
        const { org } = await orgWithOwner(t);
        const inv = await invite(org.id, { email: 'late@example.com', role: 'member' });
        await t.testDb.db('invites').where({ id: inv.id }).update({ expires_at: new Date(Date.now() - 1000) });
        const user = await insertUser(t, { email: 'late@example.com' });
        const auth = await sessionAuth(t, user.id);
        const res = await accept(auth, inv.token).expect(410);
        assert.equal(res.body.error.code, 'invite.expired');
        await accept(auth, 'inv_' + 'A'.repeat(43)).expect(404);
        await accept(auth, inv.token.slice(0, -1) + (inv.token.endsWith('A') ? 'B' : 'A')).expect(404);
        assert.equal(await membership(org.id, user.id), undefined);
        assert.equal((await auditEvents(t, 'invite.accepted', inv.id)).length, 0);
      });

      it('a user with a different email is refused (403 invite.email_mismatch); the invite stays usable', async () => {
        const { org } = await orgWithOwner(t);
        const inv = await invite(org.id, { email: 'right@example.com', role: 'member' });
        const wrong = await insertUser(t, { email: 'wrong@example.com' });
        const res = await accept(await sessionAuth(t, wrong.id), inv.token).expect(403);
        assert.equal(res.body.error.code, 'invite.email_mismatch');
        assert.equal(await membership(org.id, wrong.id), undefined);
        assert.equal((await inviteRow(inv.id)).accepted_at, null);
        assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id }).whereIn('action', ['invite.accepted', 'member.added'])).length, 0);
        const right = await insertUser(t, { email: 'right@example.com' });
        await accept(await sessionAuth(t, right.id), inv.token).expect(200);
      });

      it('an existing member gets 409 invite.already_member and the invite stays pending', async () => {
        const { org } = await orgWithOwner(t);
        const inv = await invite(org.id, { email: 'joined-meanwhile@example.com', role: 'admin' });
        const user = await insertUser(t, { email: 'joined-meanwhile@example.com' });
        await addMember(t, org.id, user.id, 'viewer');
        const res = await accept(await sessionAuth(t, user.id), inv.token).expect(409);
        assert.equal(res.body.error.code, 'invite.already_member');
        assert.equal((await membership(org.id, user.id)).role, 'viewer');
        const row = await inviteRow(inv.id);
        assert.equal(row.accepted_at, null);
        assert.equal(row.accepted_by_user_id, null);
        assert.equal((await auditEvents(t, 'invite.accepted', inv.id)).length, 0);
      });

      it('needs a user session (service token 403, none 401) and a valid body (400 with the field)', async () => {
        const { org } = await orgWithOwner(t);
        const inv = await invite(org.id, { email: 'body@example.com', role: 'member' });
        await t.http.post('/api/v1/invites/accept').send({ token: inv.token }).expect(401);
        const svc = await accept(t.adminAuth, inv.token).expect(403);
        assert.equal(svc.body.error.code, 'auth.session_required');
        const user = await insertUser(t, { email: 'body@example.com' });
        const auth = await sessionAuth(t, user.id);
        const missing = await t.http.post('/api/v1/invites/accept').set('Authorization', auth).send({}).expect(400);
        assert.equal(missing.body.error.details[0].path, 'token');
        const extra = await t.http.post('/api/v1/invites/accept').set('Authorization', auth).send({ token: inv.token, orgId: org.id }).expect(400);
        assert.equal(extra.body.error.code, 'validation.failed');
        await t.http.post('/api/v1/invites/accept').set('Authorization', auth).send({ token: 42 }).expect(400);
        assert.equal((await inviteRow(inv.id)).accepted_at, null);
      });

      it('a custom role deleted after the invite was sent is skipped, not granted', async () => {
        const { org } = await orgWithOwner(t);
        const keep = await insertRole(org.id, 'keep');
        const gone = await insertRole(org.id, 'gone');
        const inv = await invite(org.id, { email: 'roles@example.com', role: 'member', roles: ['keep', 'gone'] });
        await t.testDb.db('roles').where({ id: gone.id }).del();
        const user = await insertUser(t, { email: 'roles@example.com' });
        const res = await accept(await sessionAuth(t, user.id), inv.token).expect(200);
        assert.deepEqual(res.body.membership.roles, ['keep']);
        const roles = await t.testDb.db('membership_roles').where({ org_id: org.id, user_id: user.id });
        assert.deepEqual(roles.map((r) => r.role_id), [keep.id]);
      });

      it('two concurrent accepts of one token: exactly one succeeds', async () => {
        for (let round = 0; round < 3; round++) {
          const { org } = await orgWithOwner(t);
          const email = `race-${round}-${Date.now()}@example.com`;
          const inv = await invite(org.id, { email, role: 'member' });
          const user = await insertUser(t, { email });
          const [a1, a2] = [await sessionAuth(t, user.id), await sessionAuth(t, user.id)];
          const results = await Promise.all([accept(a1, inv.token), accept(a2, inv.token)]);
          const statuses = results.map((r) => r.status).sort();
          assert.deepEqual(statuses, [200, 410], JSON.stringify(results.map((r) => r.body)));
          assert.equal(results.find((r) => r.status === 410)!.body.error.code, 'invite.already_accepted');
          assert.equal((await t.testDb.db('memberships').where({ org_id: org.id, user_id: user.id })).length, 1);
          assert.equal((await auditEvents(t, 'invite.accepted', inv.id)).length, 1);
          assert.equal((await auditEvents(t, 'member.added', user.id)).length, 1);
        }
      });
    });
  });
}
