import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertOrg, insertUser, sessionAuth } from '../helpers/fixtures.js';
import { hashToken } from '../../src/auth/tokens.js';
import { createDb } from '../../src/db/knex.js';

const ABSOLUTE_HOURS = 2;
const IDLE_MINUTES = 30;

for (const backend of testBackends()) {
  describe(`sessions [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { SESSION_ABSOLUTE_TTL_HOURS: String(ABSOLUTE_HOURS), SESSION_IDLE_TTL_MINUTES: String(IDLE_MINUTES) });
    });
    after(() => t.close());

    const open = (userId: string, amr: string[] = ['pwd']) =>
      t.http.post('/api/v1/sessions').set('Authorization', t.adminAuth).send({ userId, amr });
    const whoami = (auth: string) => t.http.get('/api/v1/session').set('Authorization', auth);
    const enrolTotp = (userId: string) =>
      t.testDb.db('user_totp').insert({ user_id: userId, secret_encrypted: 'v1.x.y.z', confirmed_at: new Date() });

    describe('POST /sessions (product sign-in, service token)', () => {
      it('returns the token once (stored hashed), the session and each org with its MFA state for this session; audited', async () => {
        const user = await insertUser(t);
        const open1 = await insertOrg(t, { name: 'A open', ownerId: user.id });
        const strict = await insertOrg(t, { name: 'B strict' });
        await addMember(t, strict.id, user.id, 'member');
        await t.testDb.db('organizations').where({ id: strict.id }).update({ mfa_required: true, mfa_required_since: new Date() });
        const elsewhere = await insertOrg(t, { name: 'C not mine' });

        const res = await open(user.id).expect(201);
        assert.match(res.body.token, /^ses_[A-Za-z0-9_-]{43}$/);
        assert.equal(res.body.userId, user.id);
        assert.deepEqual(res.body.amr, ['pwd']);
        const ttl = new Date(res.body.expiresAt).getTime() - Date.now();
        assert.ok(Math.abs(ttl - ABSOLUTE_HOURS * 3_600_000) < 60_000, `expires in ${ttl} ms`);
        assert.deepEqual(res.body.organizations, [
          { id: open1.id, slug: open1.slug, name: 'A open', role: 'owner', status: 'active', mfa: 'satisfied' },
          { id: strict.id, slug: strict.slug, name: 'B strict', role: 'member', status: 'active', mfa: 'enroll_required' },
        ]);
        assert.ok(!res.body.organizations.some((o: { id: string }) => o.id === elsewhere.id));

        const row = await t.testDb.db('sessions').where({ id: res.body.id }).first();
        assert.equal(row.token_hash, hashToken(res.body.token));
        assert.ok(!JSON.stringify(row).includes(res.body.token));
        const [event] = await auditEvents(t, 'session.created', user.id);
        assert.equal(event.actor_type, 'service_token');
        assert.deepEqual(event.after, { sessionId: res.body.id, amr: ['pwd'] });

        // once the user has a factor, the same sign-in must verify it in the strict org
        await enrolTotp(user.id);
        const again = await open(user.id).expect(201);
        assert.equal(again.body.organizations.find((o: { id: string }) => o.id === strict.id).mfa, 'verify_required');
        assert.equal(again.body.organizations.find((o: { id: string }) => o.id === open1.id).mfa, 'satisfied');
      });

      it('a suspended user gets no session (403 user.suspended), and nothing is written', async () => {
        const user = await insertUser(t, { status: 'suspended' });
        const res = await open(user.id).expect(403);
        assert.equal(res.body.error.code, 'user.suspended');
        assert.equal((await t.testDb.db('sessions').where({ user_id: user.id })).length, 0);
        assert.equal((await auditEvents(t, 'session.created', user.id)).length, 0);
      });

      it('bad input is 400; unknown or malformed user 404; no auth 401; a session token is 403', async () => {
        const user = await insertUser(t);
        for (const payload of [{ userId: user.id }, { userId: user.id, amr: ['otp'] }, { userId: user.id, amr: 'pwd' }, { userId: user.id, amr: ['pwd'], ssoOrgId: user.id }]) {
          assert.equal((await t.http.post('/api/v1/sessions').set('Authorization', t.adminAuth).send(payload).expect(400)).body.error.code, 'validation.failed');
        }
        await open('nope').expect(404);
        await open('00000000-0000-4000-8000-000000000000').expect(404);
        await t.http.post('/api/v1/sessions').send({ userId: user.id, amr: ['pwd'] }).expect(401);
        const auth = await sessionAuth(t, user.id);
        await t.http.post('/api/v1/sessions').set('Authorization', auth).send({ userId: user.id, amr: ['pwd'] }).expect(403);
      });
    });

    describe('GET /session', () => {
      it('tells the user, the session and the orgs with their MFA state', async () => {
        const user = await insertUser(t, { name: 'Grace' });
        const org = await insertOrg(t, { ownerId: user.id });
        const auth = await sessionAuth(t, user.id, ['pwd', 'passkey']);
        const res = await whoami(auth).expect(200);
        assert.deepEqual(res.body.user, { id: user.id, email: user.email, name: 'Grace', avatarUrl: null, status: 'active' });
        assert.equal(res.body.session.userId, user.id);
        assert.deepEqual(res.body.session.amr, ['pwd', 'passkey']);
        assert.equal(res.body.session.ssoOrgId, null);
        for (const k of ['id', 'createdAt', 'lastSeenAt', 'expiresAt']) assert.ok(res.body.session[k], k);
        assert.equal(res.body.session.tokenHash, undefined);
        assert.deepEqual(res.body.organizations, [{ id: org.id, slug: org.slug, name: org.name, role: 'owner', status: 'active', mfa: 'satisfied' }]);
      });

      it('needs a user session: 401 without auth, 403 for a service token', async () => {
        await t.http.get('/api/v1/session').expect(401);
        await t.http.get('/api/v1/session').set('Authorization', 'Bearer ses_unknown').expect(401);
        assert.equal((await whoami(t.adminAuth).expect(403)).body.error.code, 'auth.session_required');
      });
    });

    describe('expiry', () => {
      it('absolute: a session past expires_at is refused', async () => {
        const user = await insertUser(t);
        const auth = await sessionAuth(t, user.id);
        await whoami(auth).expect(200);
        await t.testDb.db('sessions').where({ user_id: user.id }).update({ expires_at: new Date(Date.now() - 1000) });
        await whoami(auth).expect(401);
      });

      it('idle: unused for longer than the idle TTL is refused; use within it slides last_seen_at', async () => {
        const user = await insertUser(t);
        const auth = await sessionAuth(t, user.id);
        const lastSeen = new Date(Date.now() - (IDLE_MINUTES - 5) * 60_000);
        await t.testDb.db('sessions').where({ user_id: user.id }).update({ last_seen_at: lastSeen });
        await whoami(auth).expect(200);
        const touched = await t.testDb.db('sessions').where({ user_id: user.id }).first();
        assert.ok(touched.last_seen_at.getTime() > Date.now() - 60_000, 'last_seen_at moved to now');

        await t.testDb.db('sessions').where({ user_id: user.id }).update({ last_seen_at: new Date(Date.now() - (IDLE_MINUTES + 1) * 60_000) });
        await whoami(auth).expect(401);
      });
    });

    describe('revocation', () => {
      it('DELETE /session signs out the calling session only (audited)', async () => {
        const user = await insertUser(t);
        const a = await sessionAuth(t, user.id);
        const b = await sessionAuth(t, user.id);
        const sessionId = (await whoami(a).expect(200)).body.session.id;
        await t.http.delete('/api/v1/session').set('Authorization', a).expect(204);
        await whoami(a).expect(401);
        await whoami(b).expect(200);
        const row = await t.testDb.db('sessions').where({ id: sessionId }).first();
        assert.ok(row.revoked_at);
        const [event] = await auditEvents(t, 'session.revoked', sessionId);
        assert.deepEqual([event.actor_type, event.actor_id], ['user', user.id]);
        await t.http.delete('/api/v1/session').expect(401);
        assert.equal((await t.http.delete('/api/v1/session').set('Authorization', t.adminAuth).expect(403)).body.error.code, 'auth.session_required');
      });

      it('revoke-all: the user itself or a service token; another user is refused and nothing changes', async () => {
        const user = await insertUser(t);
        const [a, b] = [await sessionAuth(t, user.id), await sessionAuth(t, user.id)];
        const other = await insertUser(t);
        const otherAuth = await sessionAuth(t, other.id);
        const revokeAll = (userId: string, auth?: string) => {
          const req = t.http.post(`/api/v1/users/${userId}/sessions/revoke-all`);
          return auth ? req.set('Authorization', auth) : req;
        };

        assert.equal((await revokeAll(user.id, otherAuth).expect(403)).body.error.code, 'forbidden');
        await whoami(a).expect(200);
        assert.equal((await auditEvents(t, 'session.revoked_all', user.id)).length, 0);
        await revokeAll(user.id).expect(401);

        const res = await revokeAll(user.id, a).expect(200);
        assert.deepEqual(res.body, { revoked: 2 });
        await whoami(a).expect(401);
        await whoami(b).expect(401);
        await whoami(otherAuth).expect(200);
        const [event] = await auditEvents(t, 'session.revoked_all', user.id);
        assert.deepEqual([event.actor_type, event.actor_id, event.after.revoked], ['user', user.id, 2]);

        const c = await sessionAuth(t, user.id);
        assert.deepEqual((await revokeAll(user.id, t.adminAuth).expect(200)).body, { revoked: 1 });
        await whoami(c).expect(401);
        assert.equal((await auditEvents(t, 'session.revoked_all', user.id))[1].actor_type, 'service_token');

        await revokeAll('00000000-0000-4000-8000-000000000000', t.adminAuth).expect(404);
        await revokeAll('not-a-uuid', t.adminAuth).expect(404);
      });
    });
  });
}

describe('CLI session create', () => {
  const run = promisify(execFile);
  const root = path.resolve(import.meta.dirname, '../..');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-cli-session-'));
  const cli = (args: string[]) =>
    run(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir } });
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('opens a session for a user given by email or id and prints the token; refuses unknown users and methods', async () => {
    await cli(['migrate']);
    const db = createDb({ dataDir, databaseUrl: undefined, databasePoolMax: 1 });
    let userId: string;
    try {
      [{ id: userId }] = await db('users').insert({ email: 'Dev@Example.com', name: 'Dev' }).returning('id');
    } finally {
      await db.destroy();
    }
    const byEmail = JSON.parse((await cli(['session', 'create', '--user', 'dev@example.com'])).stdout);
    assert.match(byEmail.token, /^ses_/);
    assert.deepEqual(byEmail.amr, ['pwd']);
    assert.equal(byEmail.userId, userId);
    const byId = JSON.parse((await cli(['session', 'create', '--user', userId, '--amr', 'pwd,otp'])).stdout);
    assert.deepEqual(byId.amr, ['pwd', 'otp']);

    await assert.rejects(cli(['session', 'create', '--user', 'nobody@example.com']), (err: { stderr?: string }) => /no user/.test(err.stderr ?? ''));
    await assert.rejects(cli(['session', 'create', '--user', userId, '--amr', 'sso']), (err: { stderr?: string }) => /--amr/.test(err.stderr ?? ''));

    const check = createDb({ dataDir, databaseUrl: undefined, databasePoolMax: 1 });
    try {
      const rows = await check('sessions').where({ user_id: userId }).orderBy('created_at');
      assert.deepEqual(rows.map((r) => r.token_hash).sort(), [hashToken(byEmail.token), hashToken(byId.token)].sort());
    } finally {
      await check.destroy();
    }
  });
});
