import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { SCIM_JSON, scimDirectory, scimUserRow, teamMemberIds, teamOfGroup, userBody } from '../fixtures/scim/harness.js';

const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

for (const backend of testBackends()) {
  describe(`SCIM protocol [${backend}]`, () => {
    let t: TestApp;
    let d: Awaited<ReturnType<typeof scimDirectory>>;
    before(async () => {
      t = await createTestApp(backend);
      d = await scimDirectory(t);
    });
    after(() => t.close());

    const scimChanges = () => t.testDb.db('audit_events').where({ actor_type: 'scim_directory' }).count<{ c: number }[]>({ c: '*' }).first();

    describe('authentication', () => {
      it('missing, wrong and cross-directory tokens get 401; a disabled directory 403; a rotated token stops at once', async () => {
        const other = await scimDirectory(t);
        assert.equal((await t.http.get(`${d.base}/Users`)).status, 401);
        const wrong = await t.http.get(`${d.base}/Users`).set('Authorization', 'Bearer scim_nope');
        assert.equal(wrong.status, 401);
        assert.deepEqual(wrong.body.schemas, ['urn:ietf:params:scim:api:messages:2.0:Error']);
        assert.equal(wrong.body.status, '401');
        assert.equal((await t.http.get(`${d.base}/Users`).set('Authorization', other.auth)).status, 401, "B's token on A's URL");
        assert.equal((await t.http.get('/scim/v2/not-a-uuid/Users').set('Authorization', d.auth)).status, 401);

        await t.http.patch(`/api/v1/orgs/${other.orgId}/scim-directories/${other.id}`).set('Authorization', t.adminAuth).send({ enabled: false });
        assert.equal((await other.scim.get('/Users')).status, 403);

        const rotated = await t.http.post(`/api/v1/orgs/${other.orgId}/scim-directories/${other.id}/rotate-token`).set('Authorization', t.adminAuth);
        assert.equal(rotated.status, 200);
        await t.http.patch(`/api/v1/orgs/${other.orgId}/scim-directories/${other.id}`).set('Authorization', t.adminAuth).send({ enabled: true });
        assert.equal((await other.scim.get('/Users')).status, 401, 'the old token stopped working');
        assert.equal((await t.http.get(`${other.base}/Users`).set('Authorization', `Bearer ${rotated.body.token}`)).status, 200);
      });

      it('tokens of a deleted directory or a deleted org stop at once, although token lookups are cached', async () => {
        const gone = await scimDirectory(t);
        assert.equal((await gone.scim.get('/Users')).status, 200); // cached now
        await t.http.delete(`/api/v1/orgs/${gone.orgId}/scim-directories/${gone.id}`).set('Authorization', t.adminAuth).expect(204);
        assert.equal((await gone.scim.get('/Users')).status, 401);

        const orgGone = await scimDirectory(t);
        assert.equal((await orgGone.scim.get('/Users')).status, 200);
        await t.http.delete(`/api/v1/orgs/${orgGone.orgId}`).set('Authorization', t.adminAuth).expect(204);
        assert.equal((await orgGone.scim.get('/Users')).status, 401);
      });

      it('meta.location is per directory even under concurrent requests to two directories', async () => {
        const other = await scimDirectory(t);
        const a = await d.scim.post('/Users', userBody('loc-a@example.com'));
        const b = await other.scim.post('/Users', userBody('loc-b@example.com'));
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 ? other.scim.get(`/Users/${b.body.id}`) : d.scim.get(`/Users/${a.body.id}`))),
        );
        results.forEach((r, i) => {
          const dir = i % 2 ? other : d;
          assert.ok(r.body.meta.location.startsWith(`http://sp.test/scim/v2/${dir.id}/Users/`), r.body.meta.location);
        });
        assert.equal((await other.scim.get(`/Users/${a.body.id}`)).status, 404, "a directory cannot read another's users");
      });
    });

    describe('bad input answers a SCIM error and changes nothing', () => {
      const cases: [string, () => Promise<{ status: number; body: { scimType?: string; status?: string } }>, number, string | undefined][] = [
        ['malformed JSON', () => t.http.post(`${d.base}/Users`).set('Authorization', d.auth).set('Content-Type', SCIM_JSON).send('{"userName": '), 400, 'invalidSyntax'],
        ['wrong schemas', () => d.scim.post('/Users', { ...userBody('bad1@example.com'), schemas: ['urn:example:wrong'] }), 400, 'invalidSyntax'],
        ['unknown attribute', () => d.scim.post('/Users', userBody('bad2@example.com', { shoeSize: 44 })), 400, 'invalidSyntax'],
        ['unknown sub-attribute', () => d.scim.post('/Users', userBody('bad3@example.com', { name: { givenName: 'x', nickname: 'y' } })), 400, 'invalidSyntax'],
        ['wrong type', () => d.scim.post('/Users', userBody('bad4@example.com', { active: 'maybe' })), 400, 'invalidValue'],
        ['missing userName', () => d.scim.post('/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], emails: [{ value: 'x@example.com' }] }), 400, 'invalidValue'],
        ['no email at all', () => d.scim.post('/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'no-email' }), 400, 'invalidValue'],
        ['oversized body', () => d.scim.post('/Users', userBody('big@example.com', { title: 'x'.repeat(6 * 1024 * 1024) })), 413, undefined],
        ['invalid filter', () => d.scim.get('/Users?filter=' + encodeURIComponent('userName eq')), 400, 'invalidFilter'],
        ['unknown filter attribute', () => d.scim.get('/Users?filter=' + encodeURIComponent('shoeSize eq 44')), 400, 'invalidFilter'],
        ['boolean compared with gt', () => d.scim.get('/Users?filter=' + encodeURIComponent('active gt true')), 400, 'invalidFilter'],
        ['PATCH without PatchOp schema', () => d.scim.patch(`/Users/00000000-0000-4000-8000-000000000000`, { Operations: [] }), 400, 'invalidSyntax'],
      ];
      for (const [name, send, status, scimType] of cases) {
        it(name, async () => {
          const before = await scimChanges();
          const res = await send();
          assert.equal(res.status, status, JSON.stringify(res.body));
          assert.equal(res.body.status, String(status));
          assert.equal(res.body.scimType, scimType);
          assert.deepEqual(await scimChanges(), before);
        });
      }

      it('PATCH errors on a real user leave it unchanged: read-only path, bad path, bad value', async () => {
        const u = await d.scim.post('/Users', userBody('patch-errors@example.com'));
        const url = `/Users/${u.body.id}`;
        const ro = await d.scim.patch(url, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'id', value: 'x' }] });
        assert.deepEqual([ro.status, ro.body.scimType], [400, 'mutability']);
        const badPath = await d.scim.patch(url, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'shoeSize', value: 1 }] });
        assert.deepEqual([badPath.status, badPath.body.scimType], [400, 'invalidPath']);
        const badOp = await d.scim.patch(url, { schemas: [PATCH], Operations: [{ op: 'merge', path: 'title', value: 'x' }] });
        assert.equal(badOp.status, 400);
        const after = await d.scim.get(url);
        assert.equal(after.body.meta.version, 'W/"1"');
      });

      it('unknown members on a group are invalidValue and add nobody', async () => {
        const g = await d.scim.post('/Groups', { schemas: [GROUP], displayName: 'Strict' });
        const res = await d.scim.patch(`/Groups/${g.body.id}`, { schemas: [PATCH], Operations: [{ op: 'add', path: 'members', value: [{ value: '11111111-1111-4111-8111-111111111111' }] }] });
        assert.deepEqual([res.status, res.body.scimType], [400, 'invalidValue']);
        assert.deepEqual(await teamMemberIds(t, (await teamOfGroup(t, g.body.id)).id), []);
      });
    });

    describe('known breakages of other servers', () => {
      it('an empty Operations array is a no-op (200, version unchanged)', async () => {
        const u = await d.scim.post('/Users', userBody('noop@example.com'));
        const res = await d.scim.patch(`/Users/${u.body.id}`, { schemas: [PATCH], Operations: [] });
        assert.equal(res.status, 200);
        assert.equal(res.body.meta.version, 'W/"1"');
        const g = await d.scim.post('/Groups', { schemas: [GROUP], displayName: 'Noop' });
        assert.equal((await d.scim.patch(`/Groups/${g.body.id}`, { schemas: [PATCH], Operations: [] })).status, 204);
      });

      it('Entra "False" as a no-path value deactivates; "True" reactivates', async () => {
        const u = await d.scim.post('/Users', userBody('strbool@example.com', { active: 'True' }));
        assert.equal(u.status, 201, JSON.stringify(u.body));
        const off = await d.scim.patch(`/Users/${u.body.id}`, { schemas: [PATCH], Operations: [{ op: 'Replace', value: { active: 'False' } }] });
        assert.equal(off.body.active, false);
        const m = await t.testDb.db('memberships').where({ org_id: d.orgId, user_id: (await scimUserRow(t, u.body.id)).user_id }).first();
        assert.equal(m.status, 'suspended');
      });

      it('Okta members without type in POST and PUT bodies are stored', async () => {
        const u = await d.scim.post('/Users', userBody('okta-member@example.com'));
        const g = await d.scim.post('/Groups', { schemas: [GROUP], displayName: 'Okta typed', members: [{ value: u.body.id, display: 'x' }] });
        assert.equal(g.body.members.length, 1);
        const put = await d.scim.put(`/Groups/${g.body.id}`, { schemas: [GROUP], displayName: 'Okta typed', members: [{ value: u.body.id }] });
        assert.equal(put.body.members.length, 1);
        assert.equal(put.body.members[0].type, 'User');
      });

      it('concurrent PATCHes adding and removing different members of one group never lose an update', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 12; i++) ids.push((await d.scim.post('/Users', userBody(`conc-${i}@example.com`))).body.id);
        const g = await d.scim.post('/Groups', { schemas: [GROUP], displayName: 'Busy', members: ids.slice(0, 6).map((value) => ({ value })) });
        const ops = [
          ...ids.slice(6).map((id) => ({ op: 'add', path: 'members', value: [{ value: id }] })),
          ...ids.slice(0, 3).map((id) => ({ op: 'remove', path: `members[value eq "${id}"]` })),
        ];
        const results = await Promise.all(ops.map((op) => d.scim.patch(`/Groups/${g.body.id}`, { schemas: [PATCH], Operations: [op] })));
        assert.ok(results.every((r) => r.status === 204), JSON.stringify(results.map((r) => r.status)));
        const got = await d.scim.get(`/Groups/${g.body.id}`);
        assert.deepEqual(got.body.members.map((m: { value: string }) => m.value).sort(), ids.slice(3).sort());
        assert.equal(got.body.meta.version, `W/"${1 + ops.length}"`);
      });
    });

    describe('uniqueness, retries and concurrency', () => {
      it('eight parallel POSTs of one userName: one 201, seven 409 uniqueness, one row', async () => {
        const body = userBody('Race@Example.com');
        const results = await Promise.all(Array.from({ length: 8 }, () => d.scim.post('/Users', body)));
        const statuses = results.map((r) => r.status).sort();
        assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
        assert.ok(results.filter((r) => r.status === 409).every((r) => r.body.scimType === 'uniqueness'));
        assert.equal((await t.testDb.db('scim_users').where({ directory_id: d.id }).whereRaw('lower(user_name) = ?', ['race@example.com'])).length, 1);
        assert.equal((await t.testDb.db('users').whereRaw('lower(email) = ?', ['race@example.com'])).length, 1);
        // a retry (even with other casing) does not duplicate
        const retry = await d.scim.post('/Users', userBody('RACE@example.com'));
        assert.deepEqual([retry.status, retry.body.scimType], [409, 'uniqueness']);
      });

      it('parallel PATCHes of different attributes of one user all take effect (no lost update)', async () => {
        const u = await d.scim.post('/Users', userBody('parallel-patch@example.com'));
        const changes: [string, string][] = [
          ['title', 'Engineer'],
          ['nickName', 'pp'],
          ['displayName', 'Parallel Patch'],
          ['locale', 'fr-FR'],
          ['timezone', 'Europe/Paris'],
          ['preferredLanguage', 'fr'],
          ['userType', 'Employee'],
          ['profileUrl', 'https://example.com/pp'],
        ];
        const results = await Promise.all(
          changes.map(([path, value]) => d.scim.patch(`/Users/${u.body.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path, value }] })),
        );
        assert.deepEqual(results.map((r) => r.status), changes.map(() => 200));
        const after = await d.scim.get(`/Users/${u.body.id}`);
        for (const [path, value] of changes) assert.equal(after.body[path], value, path);
        assert.equal(after.body.meta.version, `W/"${1 + changes.length}"`);
        const events = await t.testDb.db('audit_events').where({ action: 'scim_user.update', target_id: u.body.id });
        assert.equal(events.length, changes.length, 'one audit event per committed change');
      });

      it('a group PATCH naming one unknown member among known ones adds nobody and keeps the version', async () => {
        const known = await d.scim.post('/Users', userBody('known-member@example.com'));
        const g = await d.scim.post('/Groups', { schemas: [GROUP], displayName: 'Mixed' });
        const res = await d.scim.patch(`/Groups/${g.body.id}`, {
          schemas: [PATCH],
          Operations: [{ op: 'add', path: 'members', value: [{ value: known.body.id }, { value: '11111111-1111-4111-8111-111111111111' }] }],
        });
        assert.deepEqual([res.status, res.body.scimType], [400, 'invalidValue']);
        assert.deepEqual(await teamMemberIds(t, (await teamOfGroup(t, g.body.id)).id), []);
        assert.equal((await d.scim.get(`/Groups/${g.body.id}`)).body.meta.version, 'W/"1"');
      });

      it('If-Match: a stale version is 412 and changes nothing; the current one passes', async () => {
        const u = await d.scim.post('/Users', userBody('etag@example.com'));
        const url = `${d.base}/Users/${u.body.id}`;
        const body = JSON.stringify({ schemas: [PATCH], Operations: [{ op: 'replace', path: 'title', value: 'Boss' }] });
        const stale = await t.http.patch(url).set('Authorization', d.auth).set('Content-Type', SCIM_JSON).set('If-Match', 'W/"7"').send(body);
        assert.equal(stale.status, 412);
        const ok = await t.http.patch(url).set('Authorization', d.auth).set('Content-Type', SCIM_JSON).set('If-Match', 'W/"1"').send(body);
        assert.equal(ok.status, 200);
        assert.equal(ok.headers.etag, 'W/"2"');
        const cfg = await d.scim.get('/ServiceProviderConfig');
        assert.equal(cfg.body.etag.supported, true);
        assert.equal(cfg.body.bulk.supported, false);
        assert.equal(cfg.body.patch.supported, true);
      });
      it('If-None-Match on GET: the current version is 304 without a body, an older one gets the resource; lists carry no ETag', async () => {
        const u = await d.scim.post('/Users', userBody('none-match@example.com'));
        const url = `${d.base}/Users/${u.body.id}`;
        const same = await t.http.get(url).set('Authorization', d.auth).set('If-None-Match', 'W/"1"');
        assert.deepEqual([same.status, same.headers.etag, same.text ?? ''], [304, 'W/"1"', '']);
        const older = await t.http.get(url).set('Authorization', d.auth).set('If-None-Match', 'W/"0"');
        assert.deepEqual([older.status, older.headers.etag, older.body.id], [200, 'W/"1"', u.body.id]);
        const list = await t.http.get(`${d.base}/Users`).set('Authorization', d.auth);
        assert.deepEqual([list.status, list.headers.etag], [200, undefined]);
      });
    });

    describe('group member PATCHes (the one-statement path)', () => {
      const patchGroup = (id: string, operations: unknown[], ifMatch?: string) => {
        const req = t.http.patch(`${d.base}/Groups/${id}`).set('Authorization', d.auth).set('Content-Type', SCIM_JSON);
        return (ifMatch ? req.set('If-Match', ifMatch) : req).send(JSON.stringify({ schemas: [PATCH], Operations: operations }));
      };
      const updates = (groupId: string) => t.testDb.db('audit_events').where({ action: 'scim_group.update', target_id: groupId }).orderBy('id');

      it('If-Match, the audit event, unknown groups and non-UUID members, as the transaction path answers them', async () => {
        const users: { id: string; userId: string }[] = [];
        for (let i = 0; i < 3; i++) {
          const u = await d.scim.post('/Users', userBody(`fast-${i}@example.com`));
          users.push({ id: u.body.id, userId: (await scimUserRow(t, u.body.id)).user_id });
        }
        const g = await d.scim.post('/Groups', { schemas: [GROUP], displayName: 'Fast' });
        const team = (await teamOfGroup(t, g.body.id)).id;
        const add = (ids: string[]) => ({ op: 'add', path: 'members', value: ids.map((value) => ({ value })) });

        const stale = await patchGroup(g.body.id, [add([users[0]!.id])], 'W/"7"');
        assert.deepEqual([stale.status, stale.body.detail], [412, 'Resource version is W/"1"; the If-Match precondition failed']);
        assert.deepEqual(await teamMemberIds(t, team), []);
        assert.equal((await updates(g.body.id)).length, 0);

        const ok = await patchGroup(g.body.id, [add([users[0]!.id.toUpperCase()]), add([users[1]!.id])], 'W/"9", W/"1"');
        assert.deepEqual([ok.status, ok.headers.etag], [204, 'W/"2"']);
        assert.deepEqual((await teamMemberIds(t, team)).sort(), [users[0]!.userId, users[1]!.userId].sort());
        const [added] = await updates(g.body.id);
        assert.deepEqual(added.before, { displayName: 'Fast', externalId: null, teamId: team, version: 1 });
        assert.deepEqual({ ...added.after, membersAdded: { ...added.after.membersAdded, userIds: added.after.membersAdded.userIds.sort() } }, {
          displayName: 'Fast',
          externalId: null,
          teamId: team,
          version: 2,
          membersAdded: { count: 2, userIds: [users[0]!.userId, users[1]!.userId].sort() },
          membersRemoved: { count: 0, userIds: [] },
        });
        assert.equal(added.actor_type, 'scim_directory');
        assert.equal(added.actor_id, d.id);

        const removed = await patchGroup(g.body.id, [{ op: 'remove', path: `members[value eq "${users[0]!.id}"]` }], '*');
        assert.deepEqual([removed.status, removed.headers.etag], [204, 'W/"3"']);
        const removal = (await updates(g.body.id))[1];
        assert.deepEqual(removal.after.membersRemoved, { count: 1, userIds: [users[0]!.userId] });
        assert.deepEqual(removal.after.membersAdded, { count: 0, userIds: [] });

        // the same event from the transaction path (a rename alongside) has the same shape
        const slow = await patchGroup(g.body.id, [add([users[2]!.id]), { op: 'replace', path: 'displayName', value: 'Fast 2' }]);
        assert.equal(slow.status, 204);
        const renamed = (await updates(g.body.id))[2];
        assert.deepEqual(Object.keys(renamed.after).sort(), Object.keys(added.after).sort());
        assert.deepEqual(Object.keys(renamed.before).sort(), Object.keys(added.before).sort());

        const missing = await patchGroup('11111111-1111-4111-8111-111111111111', [add([users[0]!.id])]);
        assert.equal(missing.status, 404);
        assert.equal((await patchGroup('not-a-uuid', [add([users[0]!.id])])).status, 404);
        const junk = await patchGroup(g.body.id, [add([users[0]!.id, 'not-a-uuid'])]);
        assert.deepEqual([junk.status, junk.body.scimType], [400, 'invalidValue']);
        assert.equal((await d.scim.get(`/Groups/${g.body.id}`)).body.meta.version, 'W/"4"');
        assert.equal((await updates(g.body.id)).length, 3);
      });

      it('parallel member PATCHes of one group: every member lands and every one bumps the version once', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 10; i++) ids.push((await d.scim.post('/Users', userBody(`fast-par-${i}@example.com`))).body.id);
        const g = await d.scim.post('/Groups', { schemas: [GROUP], displayName: 'Fast parallel' });
        const results = await Promise.all(ids.map((id) => patchGroup(g.body.id, [{ op: 'add', path: 'members', value: [{ value: id }] }])));
        assert.deepEqual(results.map((r) => r.status), ids.map(() => 204));
        assert.deepEqual(results.map((r) => r.headers.etag).sort(), ids.map((_, i) => `W/"${i + 2}"`).sort());
        const got = await d.scim.get(`/Groups/${g.body.id}`);
        assert.deepEqual(got.body.members.map((m: { value: string }) => m.value).sort(), [...ids].sort());
        assert.equal((await updates(g.body.id)).length, ids.length);
      });

      it('40 parallel member PATCHes of one group all land, each with its own version (lost races run again)', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 40; i++) ids.push((await d.scim.post('/Users', userBody(`crowd-${i}@example.com`))).body.id);
        const g = await d.scim.post('/Groups', { schemas: [GROUP], displayName: 'Crowded' });
        const results = await Promise.all(ids.map((id) => patchGroup(g.body.id, [{ op: 'add', path: 'members', value: [{ value: id }] }])));
        assert.deepEqual(results.map((r) => r.status), ids.map(() => 204));
        const got = await d.scim.get(`/Groups/${g.body.id}`);
        assert.equal(got.body.meta.version, `W/"${ids.length + 1}"`);
        assert.equal(got.body.members.length, ids.length);
      });

      it('parallel add and remove of one member: the group ends as the later version left it', async () => {
        const u = await d.scim.post('/Users', userBody('add-remove-race@example.com'));
        const path = `members[value eq "${u.body.id}"]`;
        for (let round = 0; round < 8; round++) {
          const g = await d.scim.post('/Groups', { schemas: [GROUP], displayName: `Add/remove race ${round}` });
          const [added, removed] = await Promise.all([
            patchGroup(g.body.id, [{ op: 'add', path: 'members', value: [{ value: u.body.id }] }]),
            patchGroup(g.body.id, [{ op: 'remove', path }]),
          ]);
          assert.deepEqual([added.status, removed.status], [204, 204]);
          const addedLast = added.headers.etag === 'W/"3"';
          const members = (await d.scim.get(`/Groups/${g.body.id}`)).body.members ?? [];
          assert.deepEqual(members.map((m: { value: string }) => m.value), addedLast ? [u.body.id] : [], `round ${round}: ${added.headers.etag} ${removed.headers.etag}`);
        }
      });
    });

    describe('user active PATCHes (the one-statement path)', () => {
      const patchUser = (id: string, operations: unknown[], ifMatch?: string, dir = d) => {
        const req = t.http.patch(`${dir.base}/Users/${id}`).set('Authorization', dir.auth).set('Content-Type', SCIM_JSON);
        return (ifMatch ? req.set('If-Match', ifMatch) : req).send(JSON.stringify({ schemas: [PATCH], Operations: operations }));
      };
      const events = (scimId: string) => t.testDb.db('audit_events').where({ target_type: 'scim_user', target_id: scimId }).whereNot({ action: 'scim_user.create' }).orderBy('id');
      const status = async (userId: string, orgId = d.orgId) => (await t.testDb.db('memberships').where({ org_id: orgId, user_id: userId }).first()).status;

      it('If-Match, the membership, the audit event and unknown users, as the read-then-write path answers them', async () => {
        const u = await d.scim.post('/Users', userBody('active-fast@example.com', { externalId: 'ext-af' }));
        const userId = (await scimUserRow(t, u.body.id)).user_id;

        const stale = await patchUser(u.body.id, [{ op: 'replace', path: 'active', value: false }], 'W/"7"');
        assert.deepEqual([stale.status, stale.body.detail], [412, 'Resource version is W/"1"; the If-Match precondition failed']);
        assert.deepEqual([(await scimUserRow(t, u.body.id)).active, (await scimUserRow(t, u.body.id)).version, await status(userId)], [true, 1, 'active']);
        assert.equal((await events(u.body.id)).length, 0);

        // Entra: a string "False" in a path-less replace; a multi-tag If-Match
        const off = await patchUser(u.body.id.toUpperCase(), [{ op: 'Replace', value: { active: 'False' } }], 'W/"9", W/"1"');
        assert.deepEqual([off.status, off.headers.etag, off.body.active, off.body.id, off.body.externalId], [200, 'W/"2"', false, u.body.id, 'ext-af']);
        assert.deepEqual(off.body.name, u.body.name, 'the other attributes are as they were');
        const row = await scimUserRow(t, u.body.id);
        assert.deepEqual([row.active, row.attributes.active, row.version, await status(userId)], [false, false, 2, 'suspended']);
        const [deactivated] = await events(u.body.id);
        assert.equal(deactivated.action, 'scim_user.deactivate');
        assert.deepEqual(deactivated.before, { userName: 'active-fast@example.com', externalId: 'ext-af', active: true, userId, version: 1 });
        assert.deepEqual(deactivated.after, { userName: 'active-fast@example.com', externalId: 'ext-af', active: false, userId, version: 2 });
        assert.deepEqual([deactivated.actor_type, deactivated.actor_id, deactivated.org_id], ['scim_directory', d.id, d.orgId]);

        // unchanged `active`: an update event, the version moves, the membership is left alone
        const again = await patchUser(u.body.id, [{ op: 'replace', path: 'active', value: false }], '*');
        assert.deepEqual([again.status, again.headers.etag], [200, 'W/"3"']);
        assert.equal((await events(u.body.id))[1].action, 'scim_user.update');

        const on = await patchUser(u.body.id, [{ op: 'replace', path: 'active', value: true }]);
        assert.deepEqual([on.status, on.body.active, await status(userId)], [200, true, 'active']);
        assert.equal((await events(u.body.id))[2].action, 'scim_user.reactivate');

        // the read-then-write path (another attribute alongside) writes an event of the same shape
        const slow = await patchUser(u.body.id, [{ op: 'replace', path: 'active', value: false }, { op: 'replace', path: 'displayName', value: 'Slow' }]);
        assert.deepEqual([slow.status, slow.body.active, slow.body.displayName], [200, false, 'Slow']);
        const slowEvent = (await events(u.body.id))[3];
        assert.equal(slowEvent.action, 'scim_user.deactivate');
        assert.deepEqual(Object.keys(slowEvent.before).sort(), Object.keys(deactivated.before).sort());
        assert.deepEqual(Object.keys(slowEvent.after).sort(), Object.keys(deactivated.after).sort());

        assert.equal((await patchUser('11111111-1111-4111-8111-111111111111', [{ op: 'replace', path: 'active', value: false }])).status, 404);
        assert.equal((await patchUser('not-a-uuid', [{ op: 'replace', path: 'active', value: false }])).status, 404);
        const other = await scimDirectory(t);
        assert.equal((await patchUser(u.body.id, [{ op: 'replace', path: 'active', value: true }], undefined, other)).status, 404, "B's token on A's user");
        const junk = await patchUser(u.body.id, [{ op: 'replace', path: 'active', value: 'maybe' }]);
        assert.equal(junk.status, 400);
        assert.equal((await scimUserRow(t, u.body.id)).version, 5);
        assert.equal((await events(u.body.id)).length, 4);
      });

      it('a person still active in another directory of the org stays an active member; an owner is never suspended', async () => {
        const first = await scimDirectory(t);
        const second = await scimDirectory(t, { name: 'Second' }, first.orgId);
        const a = await first.scim.post('/Users', userBody('two-dirs@example.com'));
        const b = await second.scim.post('/Users', userBody('two-dirs@example.com'));
        const userId = (await scimUserRow(t, a.body.id)).user_id;
        assert.equal((await scimUserRow(t, b.body.id)).user_id, userId);
        assert.equal((await patchUser(a.body.id, [{ op: 'replace', path: 'active', value: false }], undefined, first)).status, 200);
        assert.equal(await status(userId, first.orgId), 'active');
        assert.equal((await patchUser(b.body.id, [{ op: 'replace', path: 'active', value: false }], undefined, second)).status, 200);
        assert.equal(await status(userId, first.orgId), 'suspended');

        const boss = await first.scim.post('/Users', userBody('boss-fast@example.com'));
        const bossId = (await scimUserRow(t, boss.body.id)).user_id;
        await t.testDb.db('memberships').where({ org_id: first.orgId, user_id: bossId }).update({ role: 'owner' });
        assert.equal((await patchUser(boss.body.id, [{ op: 'replace', path: 'active', value: false }], undefined, first)).status, 200);
        assert.equal(await status(bossId, first.orgId), 'active');
      });

      it('two directories deactivating one person at the same time leave them suspended (fast and read-then-write paths)', async () => {
        const first = await scimDirectory(t);
        const second = await scimDirectory(t, { name: 'Second' }, first.orgId);
        const deactivate = [
          [{ op: 'replace', path: 'active', value: false }],
          [{ op: 'replace', value: { active: false, title: 'Gone' } }],
        ];
        for (let round = 0; round < 6; round++) {
          const email = `two-dirs-race${round}@example.com`;
          const a = await first.scim.post('/Users', userBody(email));
          const b = await second.scim.post('/Users', userBody(email));
          const userId = (await scimUserRow(t, a.body.id)).user_id;
          const [ra, rb] = await Promise.all([
            patchUser(a.body.id, deactivate[round % 2]!, undefined, first),
            patchUser(b.body.id, deactivate[Math.floor(round / 2) % 2]!, undefined, second),
          ]);
          assert.deepEqual([ra.status, rb.status], [200, 200]);
          assert.equal(await status(userId, first.orgId), 'suspended', `round ${round}`);
        }
      });

      it('40 parallel active PATCHes of one user all answer 200 (lost races run again)', async () => {
        const u = await d.scim.post('/Users', userBody('active-crowd@example.com'));
        const results = await Promise.all(Array.from({ length: 40 }, (_, i) => patchUser(u.body.id, [{ op: 'replace', path: 'active', value: i % 2 === 0 }])));
        assert.deepEqual(results.map((r) => r.status), results.map(() => 200));
        const row = await scimUserRow(t, u.body.id);
        assert.equal(row.version, 41);
        assert.equal(await status(row.user_id), row.active ? 'active' : 'suspended');
      });

      it('parallel active PATCHes of one user: each bumps the version once, writes one event, and leaves the membership as the last one set', async () => {
        // several rounds: a PATCH that waited for another's row lock must still see the membership that one wrote
        for (let round = 0; round < 8; round++) {
        const u = await d.scim.post('/Users', userBody(`active-par${round}@example.com`));
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => patchUser(u.body.id, [{ op: 'replace', path: 'active', value: i % 2 === 1 }])));
        assert.deepEqual(results.map((r) => r.status), results.map(() => 200));
        assert.deepEqual(results.map((r) => r.headers.etag).sort(), Array.from({ length: 10 }, (_, i) => `W/"${i + 2}"`).sort());
        const last = results.find((r) => r.headers.etag === 'W/"11"')!;
        const row = await scimUserRow(t, u.body.id);
        assert.deepEqual([row.version, row.active], [11, last.body.active]);
        assert.equal(await status(row.user_id), row.active ? 'active' : 'suspended');
        assert.equal((await events(u.body.id)).length, 10);
        }
      });
    });

    describe('filters, sorting, paging and attribute selection in SQL', () => {
      let f: Awaited<ReturnType<typeof scimDirectory>>;
      before(async () => {
        f = await scimDirectory(t);
        for (let i = 0; i < 25; i++) {
          const res = await f.scim.post(
            '/Users',
            userBody(`user${String(i).padStart(2, '0')}@Corp.example`, {
              externalId: `ext-${i}`,
              title: i % 2 ? 'Engineer' : 'Manager',
              active: i % 5 !== 0,
              name: { givenName: `Given${i}`, familyName: i < 10 ? 'Alpha' : 'Beta' },
              emails: [{ value: `user${i}@corp.example`, type: 'work', primary: true }, { value: `u${i}@home.example`, type: 'home' }],
              [ENT]: { department: i < 5 ? 'Sales' : 'R&D', manager: { value: 'boss' } },
            }),
          );
          assert.equal(res.status, 201, JSON.stringify(res.body));
        }
      });
      const total = async (filter: string) => {
        const res = await f.scim.get(`/Users?count=0&filter=${encodeURIComponent(filter)}`);
        assert.equal(res.status, 200, `${filter}: ${JSON.stringify(res.body)}`);
        return res.body.totalResults as number;
      };

      it('operators, logic, grouping, sub-attributes, extension paths, case-insensitive names and values', async () => {
        assert.equal(await total('userName eq "USER03@corp.example"'), 1);
        assert.equal(await total('USERNAME Eq "user03@corp.example"'), 1);
        assert.equal(await total('externalId eq "ext-3"'), 1);
        assert.equal(await total('externalId eq "EXT-3"'), 0, 'externalId is caseExact');
        assert.equal(await total('userName ne "user03@corp.example"'), 24);
        assert.equal(await total('userName co "ER1"'), 10);
        assert.equal(await total('userName sw "user2"'), 5);
        assert.equal(await total('userName ew "@corp.EXAMPLE"'), 25);
        assert.equal(await total('title pr'), 25);
        assert.equal(await total('nickName pr'), 0);
        assert.equal(await total('active eq false'), 5);
        assert.equal(await total('active eq "False"'), 5);
        assert.equal(await total('title eq "engineer" and active eq true'), 10);
        assert.equal(await total('title eq "Engineer" or name.familyName eq "alpha"'), 17);
        assert.equal(await total('not (title eq "Engineer" or name.familyName eq "Alpha")'), 8);
        assert.equal(await total('name.familyName eq "Alpha" and (title eq "Engineer" or not (active eq true))'), 6);
        assert.equal(await total('emails.value ew "@home.example"'), 25);
        assert.equal(await total('emails[type eq "work" and value sw "user1"]'), 11);
        assert.equal(await total('emails[type eq "home"].value eq "u7@home.example"'), 1);
        assert.equal(await total(`${ENT}:department eq "sales"`), 5);
        assert.equal(await total(`${ENT}:manager.value eq "boss"`), 25);
        assert.equal(await total('meta.created gt "2000-01-01T00:00:00Z"'), 25);
        assert.equal(await total('meta.lastModified lt "2000-01-01T00:00:00Z"'), 0);
        assert.equal(await total('userName gt "user20@corp.example"'), 4);
        assert.equal(await total('userName eq "50%_off"'), 0, 'LIKE wildcards are escaped');
      });

      it('paging: totalResults stays true, pages do not overlap and cover everything', async () => {
        const seen: string[] = [];
        for (let start = 1; start <= 25; start += 7) {
          const res = await f.scim.get(`/Users?startIndex=${start}&count=7&sortBy=userName`);
          assert.equal(res.body.totalResults, 25);
          assert.equal(res.body.startIndex, start);
          assert.equal(res.body.itemsPerPage, Math.min(7, 25 - start + 1));
          seen.push(...res.body.Resources.map((r: { userName: string }) => r.userName));
        }
        assert.equal(seen.length, 25);
        assert.deepEqual(seen, [...seen].sort());
        const two = await f.scim.get('/Users?startIndex=2&count=2&sortBy=userName');
        assert.deepEqual(two.body.Resources.map((r: { userName: string }) => r.userName), [seen[1], seen[2]]);
        const past = await f.scim.get('/Users?startIndex=40&count=5');
        assert.deepEqual([past.body.totalResults, past.body.Resources.length], [25, 0]);
        const desc = await f.scim.get('/Users?count=3&sortBy=name.givenName&sortOrder=descending&filter=' + encodeURIComponent('name.familyName eq "Alpha"'));
        assert.deepEqual(desc.body.Resources.map((r: { name: { givenName: string } }) => r.name.givenName), ['Given9', 'Given8', 'Given7']);
        const probe = await f.scim.get('/Users?count=1&startIndex=1');
        assert.deepEqual([probe.body.totalResults, probe.body.Resources.length], [25, 1]);
      });

      it('attributes and excludedAttributes', async () => {
        const only = await f.scim.get('/Users?count=1&attributes=userName');
        assert.deepEqual(Object.keys(only.body.Resources[0]).sort(), ['id', 'userName']);
        const without = await f.scim.get('/Users?count=1&excludedAttributes=emails,name');
        assert.equal(without.body.Resources[0].emails, undefined);
        assert.equal(without.body.Resources[0].name, undefined);
        assert.ok(without.body.Resources[0].userName);
      });

      it('groups: displayName filter, member filter, excludedAttributes=members', async () => {
        const users = await f.scim.get('/Users?count=3&sortBy=userName');
        const ids = users.body.Resources.map((r: { id: string }) => r.id);
        await f.scim.post('/Groups', { schemas: [GROUP], displayName: 'Engineering', externalId: 'g-eng', members: ids.map((value: string) => ({ value })) });
        await f.scim.post('/Groups', { schemas: [GROUP], displayName: 'Empty' });
        const byName = await f.scim.get('/Groups?excludedAttributes=members&filter=' + encodeURIComponent('displayName eq "engineering"'));
        assert.equal(byName.body.totalResults, 1);
        assert.equal(byName.body.Resources[0].members, undefined);
        const withMembers = await f.scim.get('/Groups?filter=' + encodeURIComponent('externalId eq "g-eng"'));
        assert.equal(withMembers.body.Resources[0].members.length, 3);
        const byMember = await f.scim.get('/Groups?filter=' + encodeURIComponent(`members[value eq "${ids[1]}"]`));
        assert.deepEqual(byMember.body.Resources.map((g: { displayName: string }) => g.displayName), ['Engineering']);
        assert.equal((await f.scim.get('/Groups?count=0&filter=members%20pr')).body.totalResults, 1);
      });
    });

    it('large groups: 2,000 members by PUT, replace and remove-all run as set operations', async () => {
      const g = await d.scim.post('/Groups', { schemas: [GROUP], displayName: 'Large' });
      const team = await teamOfGroup(t, g.body.id);
      // arrange 2,000 SCIM users straight in the database (the endpoint is tested above)
      const rows = Array.from({ length: 2000 }, (_, i) => ({ email: `bulk${i}-${backend}@bulk.example`, name: 'Bulk' }));
      const users: { id: string }[] = [];
      for (let i = 0; i < rows.length; i += 500) users.push(...(await t.testDb.db('users').insert(rows.slice(i, i + 500)).returning('id')));
      await t.testDb.db.batchInsert('memberships', users.map((u) => ({ org_id: d.orgId, user_id: u.id, role: 'member', source: 'scim' })), 500);
      const links: { id: string }[] = [];
      const linkRows = users.map((u, i) => ({ org_id: d.orgId, directory_id: d.id, user_id: u.id, user_name: `bulk${i}-${backend}`, attributes: '{}' }));
      for (let i = 0; i < linkRows.length; i += 500) links.push(...(await t.testDb.db('scim_users').insert(linkRows.slice(i, i + 500)).returning('id')));
      const ids = links.map((l) => l.id);
      const put = await d.scim.put(`/Groups/${g.body.id}?excludedAttributes=members`, { schemas: [GROUP], displayName: 'Large', members: ids.map((value) => ({ value })) });
      assert.equal(put.status, 200, JSON.stringify(put.body).slice(0, 300));
      assert.equal((await teamMemberIds(t, team.id)).length, 2000);
      const replaced = await d.scim.patch(`/Groups/${g.body.id}`, { schemas: [PATCH], Operations: [{ op: 'replace', path: 'members', value: ids.slice(500).map((value) => ({ value })) }] });
      assert.equal(replaced.status, 204);
      assert.equal((await teamMemberIds(t, team.id)).length, 1500);
      const cleared = await d.scim.patch(`/Groups/${g.body.id}`, { schemas: [PATCH], Operations: [{ op: 'remove', path: 'members' }] });
      assert.equal(cleared.status, 204);
      assert.equal((await teamMemberIds(t, team.id)).length, 0);
    });
  });
}
