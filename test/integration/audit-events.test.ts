import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { insertOrg, insertUser, memberWithSession, sessionAuth, orgWithOwner } from '../helpers/fixtures.js';
import { encodeCursor } from '../../src/http/pagination.js';

const BASE = Date.parse('2026-01-01T00:00:00Z');
const MINUTE = 60_000;
const ACTIONS = ['member.added', 'member.removed', 'invite.created', 'project.updated', 'member_role.assigned'] as const;

type Seeded = { id: string; i: number; action: string; actorType: string; actorId: string | null; targetType: string; targetId: string; at: number };
type Page = { data: { id: string; orgId: string; action: string; createdAt: string }[]; next: string | null };

for (const backend of testBackends()) {
  describe(`audit events [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());


    /**
     * 30 events in `orgId`, one a minute from BASE, interleaved (by id) with 10 events of `otherOrgId`
     * that carry the same actors and actions: only org_id tells them apart.
     */
    async function seed(orgId: string, otherOrgId: string, users: [string, string]) {
      const ours: Seeded[] = [];
      for (let i = 0; i < 30; i++) {
        const actor = i % 3 === 2 ? { type: 'service_token', id: 'svc-token-1' } : { type: 'user', id: users[i % 3]! };
        const target = i % 2 === 0 ? { type: 'user', id: users[0] } : { type: 'project', id: `proj-${i % 4}` };
        const row = {
          org_id: orgId,
          actor_type: actor.type,
          actor_id: actor.id,
          action: ACTIONS[i % ACTIONS.length]!,
          target_type: target.type,
          target_id: target.id,
          after: JSON.stringify({ i }),
          request_id: `req-${i}`,
          created_at: new Date(BASE + i * MINUTE),
        };
        const [{ id }] = await t.testDb.db('audit_events').insert(row).returning('id');
        ours.push({ id: String(id), i, action: row.action, actorType: actor.type, actorId: actor.id, targetType: target.type, targetId: target.id, at: BASE + i * MINUTE });
        if (i % 3 === 0) {
          await t.testDb.db('audit_events').insert({ ...row, org_id: otherOrgId, request_id: `other-${i}` });
        }
      }
      return ours;
    }

    /** Follows `next` until null; asserts page sizes, newest-first order and no overlap. */
    async function walk(orgId: string, auth: string, params: Record<string, string | number>, limit: number) {
      const all: Page['data'] = [];
      const sizes: number[] = [];
      let next: string | null = null;
      do {
        const res: { body: Page } = await t.http
          .get(`/api/v1/orgs/${orgId}/audit-events`)
          .query({ ...params, limit, ...(next ? { after: next } : {}) })
          .set('Authorization', auth)
          .expect(200);
        sizes.push(res.body.data.length);
        all.push(...res.body.data);
        next = res.body.next;
        assert.ok(sizes.length < 50, 'pagination terminates');
      } while (next);
      const ids = all.map((e) => BigInt(e.id));
      for (let k = 1; k < ids.length; k++) assert.ok(ids[k - 1]! > ids[k]!, 'strictly newest first, no overlap between pages');
      for (const e of all) assert.equal(e.orgId, orgId);
      return { ids: all.map((e) => e.id), sizes, events: all };
    }

    const expectedIds = (rows: Seeded[]) => [...rows].sort((a, b) => b.i - a.i).map((r) => r.id);

    describe('GET /orgs/:orgId/audit-events', () => {
      let org: { id: string };
      let ownerAuth: string;
      let seeded: Seeded[];
      let users: [string, string];
      let otherOrg: { id: string };
      let otherAuth: string;

      before(async () => {
        ({ org, ownerAuth } = await orgWithOwner(t));
        ({ org: otherOrg, ownerAuth: otherAuth } = await orgWithOwner(t));
        users = [(await insertUser(t)).id, (await insertUser(t)).id];
        seeded = await seed(org.id, otherOrg.id, users);
      });

      it('pages through every event of the org, newest first, with next null on the last page', async () => {
        const { ids, sizes } = await walk(org.id, ownerAuth, {}, 7);
        assert.deepEqual(sizes, [7, 7, 7, 7, 2]);
        assert.deepEqual(ids, expectedIds(seeded));
        // exactly a page's worth: the last page still says next null
        const exact = await walk(org.id, ownerAuth, {}, 10);
        assert.deepEqual(exact.sizes, [10, 10, 10]);
        const all = await t.http.get(`/api/v1/orgs/${org.id}/audit-events`).query({ limit: 200 }).set('Authorization', ownerAuth).expect(200);
        assert.equal(all.body.data.length, 30);
        assert.equal(all.body.next, null);
      });

      it('returns the documented shape', async () => {
        const newest = seeded[29]!;
        const res = await t.http.get(`/api/v1/orgs/${org.id}/audit-events`).query({ limit: 1 }).set('Authorization', ownerAuth).expect(200);
        assert.deepEqual(res.body.data[0], {
          id: newest.id,
          orgId: org.id,
          actor: { type: newest.actorType, id: newest.actorId },
          action: newest.action,
          target: { type: newest.targetType, id: newest.targetId },
          before: null,
          after: { i: 29 },
          requestId: 'req-29',
          createdAt: new Date(newest.at).toISOString(),
        });
        assert.equal(typeof res.body.next, 'string');
      });

      it('filters by action prefix and exact action, across pages', async () => {
        const prefix = await walk(org.id, ownerAuth, { action: 'member.*' }, 3);
        const expected = seeded.filter((s) => s.action.startsWith('member.'));
        assert.equal(expected.length, 12);
        assert.deepEqual(prefix.ids, expectedIds(expected));
        // `_` is literal, not a wildcard: member_role.* does not match member.*, and vice versa
        const underscored = await walk(org.id, ownerAuth, { action: 'member_*' }, 4);
        assert.deepEqual(underscored.ids, expectedIds(seeded.filter((s) => s.action === 'member_role.assigned')));
        const exact = await walk(org.id, ownerAuth, { action: 'invite.created' }, 2);
        assert.deepEqual(exact.ids, expectedIds(seeded.filter((s) => s.action === 'invite.created')));
        const none = await t.http.get(`/api/v1/orgs/${org.id}/audit-events`).query({ action: 'member' }).set('Authorization', ownerAuth).expect(200);
        assert.deepEqual(none.body, { data: [], next: null });
      });

      it('filters by actor and target, across pages', async () => {
        const byUser = await walk(org.id, ownerAuth, { actorType: 'user', actorId: users[1] }, 4);
        assert.deepEqual(byUser.ids, expectedIds(seeded.filter((s) => s.actorId === users[1])));
        const bySvc = await walk(org.id, ownerAuth, { actorType: 'service_token' }, 4);
        assert.deepEqual(bySvc.ids, expectedIds(seeded.filter((s) => s.actorType === 'service_token')));
        const byTarget = await walk(org.id, ownerAuth, { targetType: 'project', targetId: 'proj-1' }, 2);
        const expected = seeded.filter((s) => s.targetType === 'project' && s.targetId === 'proj-1');
        assert.ok(expected.length >= 4);
        assert.deepEqual(byTarget.ids, expectedIds(expected));
      });

      it('filters by time range (since inclusive, until exclusive), also combined with other filters', async () => {
        const since = new Date(BASE + 5 * MINUTE).toISOString();
        const until = new Date(BASE + 20 * MINUTE).toISOString();
        const range = await walk(org.id, ownerAuth, { since, until }, 4);
        assert.deepEqual(range.ids, expectedIds(seeded.filter((s) => s.i >= 5 && s.i < 20)));
        // an offset other than Z means the same instant
        const offset = await walk(org.id, ownerAuth, { since: '2026-01-01T02:10:00+02:00' }, 8);
        assert.deepEqual(offset.ids, expectedIds(seeded.filter((s) => s.i >= 10)));
        const combined = await walk(org.id, ownerAuth, { since, until, action: 'member.*', actorType: 'user' }, 2);
        assert.deepEqual(
          combined.ids,
          expectedIds(seeded.filter((s) => s.i >= 5 && s.i < 20 && s.action.startsWith('member.') && s.actorType === 'user')),
        );
        const dateOnly = await t.http.get(`/api/v1/orgs/${org.id}/audit-events`).query({ until: '2026-01-01' }).set('Authorization', ownerAuth).expect(200);
        assert.deepEqual(dateOnly.body.data, []);
      });

      it('never lists another org’s events (tenant isolation)', async () => {
        const ours = await walk(org.id, ownerAuth, {}, 200);
        const theirs = await walk(otherOrg.id, otherAuth, {}, 200);
        assert.equal(theirs.ids.length, 10);
        assert.equal(ours.ids.filter((id) => theirs.ids.includes(id)).length, 0);
        // a cursor from one org does not leak the other's rows
        const cursor = encodeCursor([String(BigInt(ours.ids[0]!) + 1n)]);
        const res = await t.http.get(`/api/v1/orgs/${otherOrg.id}/audit-events`).query({ after: cursor }).set('Authorization', otherAuth).expect(200);
        for (const e of res.body.data) assert.equal(e.orgId, otherOrg.id);
        assert.equal(res.body.data.length, 10);
      });

      it('bad query is a 400 naming the field', async () => {
        const cases: [Record<string, string>, string][] = [
          [{ since: 'yesterday' }, 'since'],
          [{ until: '2026-13-01T00:00:00Z' }, 'until'],
          [{ since: '2026-01-01T00:00:00' }, 'since'], // no offset: ambiguous
          [{ since: '2026-02-30T00:00:00Z' }, 'since'],
          [{ since: '2026-02-30' }, 'since'],
          [{ since: '2026-01-02T00:00:00Z', until: '2026-01-01T00:00:00Z' }, 'until'],
          [{ action: 'Member.*' }, 'action'],
          [{ action: 'member.**' }, 'action'],
          [{ action: '*' }, 'action'],
          [{ actorType: 'robot' }, 'actorType'],
          [{ limit: '201' }, 'limit'],
          [{ limit: '-1' }, 'limit'],
          [{ actor: 'x' }, ''],
        ];
        for (const [q, path] of cases) {
          const res = await t.http.get(`/api/v1/orgs/${org.id}/audit-events`).query(q).set('Authorization', ownerAuth);
          assert.equal(res.status, 400, JSON.stringify(q));
          assert.equal(res.body.error.code, 'validation.failed');
          assert.equal(res.body.error.details[0].path, path, JSON.stringify(q));
        }
        for (const after of ['garbage', encodeCursor(['abc']), encodeCursor([12]), encodeCursor(['1', '2']), encodeCursor(['0'])]) {
          const res = await t.http.get(`/api/v1/orgs/${org.id}/audit-events`).query({ after }).set('Authorization', ownerAuth).expect(400);
          assert.equal(res.body.error.code, 'validation.invalid_cursor');
        }
      });

      it('401 without auth; 403 without audit:read; 404 for another org’s user or an unknown org', async () => {
        const path = `/api/v1/orgs/${org.id}/audit-events`;
        await t.http.get(path).expect(401);
        for (const role of ['member', 'viewer'] as const) {
          const m = await memberWithSession(t, org.id, role);
          const res = await t.http.get(path).set('Authorization', m.auth).expect(403);
          assert.equal(res.body.error.code, 'forbidden');
          assert.equal(res.body.error.details.permission, 'audit:read');
        }
        // a custom role with audit:read is enough
        const auditor = await memberWithSession(t, org.id, 'viewer');
        const [role] = await t.testDb.db('roles').insert({ org_id: org.id, key: 'auditor', name: 'Auditor', permissions: ['audit:read'] }).returning('*');
        await t.testDb.db('membership_roles').insert({ org_id: org.id, user_id: auditor.user.id, role_id: role.id });
        await t.http.get(path).set('Authorization', auditor.auth).expect(200);
        // admins have audit:read; service tokens may read any org
        const admin = await memberWithSession(t, org.id, 'admin');
        await t.http.get(path).set('Authorization', admin.auth).expect(200);
        await t.http.get(path).set('Authorization', t.adminAuth).expect(200);
        await t.http.get(path).set('Authorization', otherAuth).expect(404);
        await t.http.get('/api/v1/orgs/not-a-uuid/audit-events').set('Authorization', t.adminAuth).expect(404);
        await t.http.get('/api/v1/orgs/00000000-0000-4000-8000-000000000000/audit-events').set('Authorization', t.adminAuth).expect(404);
      });
    });

    it('lists the events of invite create, revoke and accept (with request id, actor, target), and none for refused requests', async () => {
      const { org, owner, ownerAuth } = await orgWithOwner(t);
      const viewer = await memberWithSession(t, org.id, 'viewer');
      const list = async () =>
        (await t.http.get(`/api/v1/orgs/${org.id}/audit-events`).set('Authorization', ownerAuth).expect(200)).body.data as {
          id: string;
          action: string;
          actor: { type: string; id: string };
          target: { type: string; id: string } | null;
          requestId: string;
          after: Record<string, unknown> | null;
        }[];

      const created = await t.http
        .post(`/api/v1/orgs/${org.id}/invites`)
        .set('Authorization', ownerAuth)
        .set('X-Request-Id', 'req-invite-create')
        .send({ email: 'audited@example.com', role: 'member' })
        .expect(201);
      const toRevoke = await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', t.adminAuth).send({ email: 'revoked@example.com', role: 'viewer' }).expect(201);
      // refused: no permission, bad input, wrong email
      await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', viewer.auth).send({ email: 'x@example.com', role: 'member' }).expect(403);
      await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', ownerAuth).send({ email: 'x@example.com', role: 'god' }).expect(400);
      await t.http.delete(`/api/v1/orgs/${org.id}/invites/${toRevoke.body.id}`).set('Authorization', viewer.auth).expect(403);
      const stranger = await insertUser(t, { email: 'not-audited@example.com' });
      await t.http.post('/api/v1/invites/accept').set('Authorization', await sessionAuth(t, stranger.id)).send({ token: created.body.token }).expect(403);

      await t.http.delete(`/api/v1/orgs/${org.id}/invites/${toRevoke.body.id}`).set('Authorization', ownerAuth).expect(204);
      const invitee = await insertUser(t, { email: 'audited@example.com' });
      await t.http
        .post('/api/v1/invites/accept')
        .set('Authorization', await sessionAuth(t, invitee.id))
        .set('X-Request-Id', 'req-invite-accept')
        .send({ token: created.body.token })
        .expect(200);

      const events = await list();
      assert.deepEqual(
        events.map((e) => e.action),
        ['member.added', 'invite.accepted', 'invite.revoked', 'invite.created', 'invite.created'],
      );
      const [added, accepted, revoked, createdByService, createdByOwner] = events;
      assert.deepEqual(createdByOwner!.actor, { type: 'user', id: owner.id });
      assert.deepEqual(createdByOwner!.target, { type: 'invite', id: created.body.id });
      assert.equal(createdByOwner!.requestId, 'req-invite-create');
      assert.equal(createdByService!.actor.type, 'service_token');
      assert.deepEqual(revoked!.target, { type: 'invite', id: toRevoke.body.id });
      assert.deepEqual(accepted!.actor, { type: 'user', id: invitee.id });
      assert.equal(accepted!.requestId, 'req-invite-accept');
      assert.deepEqual(added!.target, { type: 'user', id: invitee.id });
      assert.equal(added!.after?.source, 'invite');

      const onlyInvites = await t.http.get(`/api/v1/orgs/${org.id}/audit-events`).query({ action: 'invite.*', actorType: 'user', actorId: owner.id }).set('Authorization', ownerAuth).expect(200);
      assert.deepEqual(onlyInvites.body.data.map((e: { action: string }) => e.action), ['invite.revoked', 'invite.created']);
    });

    it('keeps the events of a deleted org in the table; the API answers 404 for it', async () => {
      const { org, ownerAuth } = await orgWithOwner(t);
      await t.http.post(`/api/v1/orgs/${org.id}/invites`).set('Authorization', ownerAuth).send({ email: 'gone@example.com', role: 'member' }).expect(201);
      await t.testDb.db('organizations').where({ id: org.id }).del();
      assert.equal((await t.testDb.db('audit_events').where({ org_id: org.id })).length, 1);
      await t.http.get(`/api/v1/orgs/${org.id}/audit-events`).set('Authorization', t.adminAuth).expect(404);
    });
  });
}
