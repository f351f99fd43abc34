import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from 'otplib';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { addMember, auditEvents, insertOrg, insertUser, sessionAuth } from '../helpers/fixtures.js';
import { secretBoxOf } from '../../src/auth/secret-key.js';
import { createRateLimiter } from '../../src/services/rate-limits.js';

/** The TOTP code `offsetSteps` 30-second steps from now, computed the way an authenticator app does. */
const codeAt = (secret: string, offsetSteps = 0) => generate({ secret, epoch: Math.floor(Date.now() / 1000) + offsetSteps * 30 });
const wrongCode = async (secret: string) => {
  const right = new Set(await Promise.all([-1, 0, 1].map((o) => codeAt(secret, o))));
  for (let n = 0; ; n++) {
    const candidate = String(n).padStart(6, '0');
    if (!right.has(candidate)) return candidate;
  }
};

for (const backend of testBackends()) {
  describe(`MFA: TOTP and org policy [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { MFA_TOTP_ISSUER: 'Acme Cloud', MFA_MAX_FAILURES: '5', MFA_LOCKOUT_MINUTES: '15' });
    });
    after(() => t.close());

    const post = (path: string, auth: string, payload?: object) => t.http.post(`/api/v1${path}`).set('Authorization', auth).send(payload);

    /** Enrols and confirms TOTP for the user through the API; returns the secret, recovery codes and the (now verified) session. */
    async function enrolled(user: { id: string }) {
      const auth = await sessionAuth(t, user.id);
      const started = await post('/session/mfa/totp', auth).expect(201);
      const confirmed = await post('/session/mfa/totp/confirm', auth, { code: await codeAt(started.body.secret) }).expect(200);
      return { auth, secret: started.body.secret as string, recoveryCodes: confirmed.body.recoveryCodes as string[] };
    }
    /** Lets the next code be accepted as if time had moved on (replay protection remembers the last step). */
    const forgetLastStep = (userId: string) => t.testDb.db('user_totp').where({ user_id: userId }).update({ last_used_step: null });
    const whoami = async (auth: string) => (await t.http.get('/api/v1/session').set('Authorization', auth).expect(200)).body;

    describe('enrolment', () => {
      it('returns a secret and an otpauth:// URI (issuer from config, label = email), stores the secret encrypted', async () => {
        const user = await insertUser(t, { email: `Ann.${Date.now()}@example.com` });
        const auth = await sessionAuth(t, user.id);
        const res = await post('/session/mfa/totp', auth).expect(201);
        assert.match(res.body.secret, /^[A-Z2-7]{32}$/);
        const uri = new URL(res.body.uri);
        assert.equal(uri.protocol, 'otpauth:');
        assert.equal(uri.host, 'totp');
        assert.equal(decodeURIComponent(uri.pathname), `/Acme Cloud:${user.email}`);
        assert.equal(uri.searchParams.get('secret'), res.body.secret);
        assert.equal(uri.searchParams.get('issuer'), 'Acme Cloud');
        assert.deepEqual([res.body.issuer, res.body.label, res.body.digits, res.body.period], ['Acme Cloud', user.email, 6, 30]);

        const row = await t.testDb.db('user_totp').where({ user_id: user.id }).first();
        assert.equal(row.confirmed_at, null);
        assert.ok(!row.secret_encrypted.includes(res.body.secret), 'secret must not be stored in plaintext');
        assert.match(row.secret_encrypted, /^v1\./);
        assert.equal(secretBoxOf(t.ctx.config).open(row.secret_encrypted), res.body.secret);
        const status = await t.http.get('/api/v1/session/mfa').set('Authorization', auth).expect(200);
        assert.equal(status.body.totp.status, 'pending');
        // not audited until confirmed; a pending enrolment changes nothing
        assert.equal((await auditEvents(t, 'mfa.totp_enrolled', user.id)).length, 0);
      });

      it('confirm: a wrong code is refused; the first valid code confirms, returns 10 recovery codes once and verifies the session', async () => {
        const user = await insertUser(t);
        const auth = await sessionAuth(t, user.id);
        const { body: started } = await post('/session/mfa/totp', auth).expect(201);
        const bad = await post('/session/mfa/totp/confirm', auth, { code: await wrongCode(started.secret) }).expect(400);
        assert.equal(bad.body.error.code, 'mfa.invalid_code');
        assert.equal((await t.testDb.db('user_totp').where({ user_id: user.id }).first()).confirmed_at, null);

        const res = await post('/session/mfa/totp/confirm', auth, { code: await codeAt(started.secret) }).expect(200);
        assert.equal(res.body.recoveryCodes.length, 10);
        assert.equal(new Set(res.body.recoveryCodes).size, 10);
        for (const c of res.body.recoveryCodes) assert.match(c, /^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/);
        assert.deepEqual(res.body.session.amr, ['pwd', 'otp']);

        const stored = await t.testDb.db('user_recovery_codes').where({ user_id: user.id });
        assert.equal(stored.length, 10);
        const storedText = JSON.stringify(stored);
        for (const c of res.body.recoveryCodes) assert.ok(!storedText.includes(c) && !storedText.includes(c.replaceAll('-', '')));
        const [event] = await auditEvents(t, 'mfa.totp_enrolled', user.id);
        assert.equal(event.actor_id, user.id);
        assert.equal(event.after.recoveryCodes, 10);
        assert.ok(!JSON.stringify(event).includes(res.body.recoveryCodes[0]));

        // a confirmed factor cannot be replaced or re-confirmed by a session
        assert.equal((await post('/session/mfa/totp', auth).expect(409)).body.error.code, 'mfa.already_enrolled');
        assert.equal((await post('/session/mfa/totp/confirm', auth, { code: '123456' }).expect(409)).body.error.code, 'mfa.already_enrolled');
        const status = await t.http.get('/api/v1/session/mfa').set('Authorization', auth).expect(200);
        assert.deepEqual([status.body.totp.status, status.body.recoveryCodesRemaining, status.body.sessionVerified], ['enrolled', 10, true]);
      });

      it('confirm without an enrolment in progress is 409; bad input is 400; service tokens and anonymous callers are refused', async () => {
        const user = await insertUser(t);
        const auth = await sessionAuth(t, user.id);
        assert.equal((await post('/session/mfa/totp/confirm', auth, { code: '123456' }).expect(409)).body.error.code, 'mfa.not_enrolling');
        await post('/session/mfa/totp', auth).expect(201);
        for (const payload of [{}, { code: '12345' }, { code: 'abcdef' }, { code: 123456 }, { code: '123456', extra: 1 }]) {
          const res = await post('/session/mfa/totp/confirm', auth, payload).expect(400);
          assert.equal(res.body.error.code, 'validation.failed');
        }
        assert.equal((await post('/session/mfa/totp', t.adminAuth).expect(403)).body.error.code, 'auth.session_required');
        await t.http.post('/api/v1/session/mfa/totp').expect(401);
        await t.http.get('/api/v1/session/mfa').expect(401);
        await t.http.post('/api/v1/session/mfa/verify').send({ code: '123456' }).expect(401);
        // validation failures do not count as failed codes
        assert.equal(await t.testDb.db('rate_limits').where({ key: `mfa:user:${user.id}` }).first(), undefined);
      });
    });

    describe('verify', () => {
      it('adds otp to the session amr (audited); the same code is refused as a replay, in any session', async () => {
        const user = await insertUser(t);
        const { secret } = await enrolled(user);
        const auth = await sessionAuth(t, user.id);
        assert.deepEqual((await whoami(auth)).session.amr, ['pwd']);

        const code = await codeAt(secret, 1); // the confirmation used the current step
        const res = await post('/session/mfa/verify', auth, { code }).expect(200);
        assert.equal(res.body.method, 'totp');
        assert.deepEqual(res.body.session.amr, ['pwd', 'otp']);
        assert.deepEqual((await whoami(auth)).session.amr, ['pwd', 'otp']);
        const events = await auditEvents(t, 'session.mfa_verified', res.body.session.id);
        assert.equal(events.length, 1);
        assert.deepEqual(events[0].after, { method: 'totp', userId: user.id });

        const other = await sessionAuth(t, user.id);
        const replay = await post('/session/mfa/verify', other, { code }).expect(400);
        assert.equal(replay.body.error.code, 'mfa.code_replayed');
        assert.deepEqual((await whoami(other)).session.amr, ['pwd']);
        // an older code after a newer one is a replay too
        const older = await post('/session/mfa/verify', other, { code: await codeAt(secret, 0) }).expect(400);
        assert.equal(older.body.error.code, 'mfa.code_replayed');
        assert.equal((await auditEvents(t, 'session.mfa_verified')).filter((e) => e.after.userId === user.id).length, 1);
      });

      it('accepts one step of clock drift either way, not two', async () => {
        const user = await insertUser(t);
        const { secret } = await enrolled(user);
        const auth = await sessionAuth(t, user.id);
        await forgetLastStep(user.id);
        await post('/session/mfa/verify', auth, { code: await codeAt(secret, -1) }).expect(200);
        await forgetLastStep(user.id);
        await post('/session/mfa/verify', auth, { code: await codeAt(secret, 1) }).expect(200);
        await forgetLastStep(user.id);
        const far = [await codeAt(secret, -2), await codeAt(secret, 2)];
        const near = new Set(await Promise.all([-1, 0, 1].map((o) => codeAt(secret, o))));
        for (const code of far.filter((c) => !near.has(c))) {
          assert.equal((await post('/session/mfa/verify', auth, { code }).expect(400)).body.error.code, 'mfa.invalid_code');
        }
      });

      it('without a confirmed factor verify is 409 mfa.not_enrolled; exactly one of code/recoveryCode', async () => {
        const user = await insertUser(t);
        const auth = await sessionAuth(t, user.id);
        assert.equal((await post('/session/mfa/verify', auth, { code: '123456' }).expect(409)).body.error.code, 'mfa.not_enrolled');
        await post('/session/mfa/verify', auth, {}).expect(400);
        await post('/session/mfa/verify', auth, { code: '123456', recoveryCode: 'aaaa-bbbb-cccc-dddd' }).expect(400);
        assert.equal((await post('/session/mfa/verify', t.adminAuth, { code: '123456' }).expect(403)).body.error.code, 'auth.session_required');
      });

      it('locks after 5 failures, in the database: 429 mfa.locked with Retry-After even for a correct code; a success resets', async () => {
        const user = await insertUser(t);
        const { secret } = await enrolled(user);
        const auth = await sessionAuth(t, user.id);
        const wrong = await wrongCode(secret);
        for (let i = 1; i <= 4; i++) {
          const res = await post('/session/mfa/verify', auth, { code: wrong }).expect(400);
          assert.equal(res.body.error.code, 'mfa.invalid_code');
          assert.equal(res.body.error.details.attemptsRemaining, 5 - i);
        }
        const fifth = await post('/session/mfa/verify', auth, { code: wrong }).expect(429);
        assert.equal(fifth.body.error.code, 'mfa.locked');
        const row = await t.testDb.db('rate_limits').where({ key: `mfa:user:${user.id}` }).first();
        assert.equal(row.hits, 5);
        const lockedForMs = new Date(row.locked_until).getTime() - Date.now();
        assert.ok(lockedForMs > 14 * 60_000 && lockedForMs <= 15 * 60_000 + 5_000, `locked for ${lockedForMs} ms`);

        await forgetLastStep(user.id);
        const correctWhileLocked = await post('/session/mfa/verify', auth, { code: await codeAt(secret) }).expect(429);
        assert.equal(correctWhileLocked.body.error.code, 'mfa.locked');
        const retryAfter = Number(correctWhileLocked.headers['retry-after']);
        assert.ok(retryAfter > 14 * 60 && retryAfter <= 15 * 60, `Retry-After ${retryAfter}`);
        assert.equal(correctWhileLocked.body.error.details.retryAfterSeconds, retryAfter);
        // the lock covers recovery codes and disabling too, and any session of the user
        const other = await sessionAuth(t, user.id);
        await post('/session/mfa/verify', other, { code: await codeAt(secret) }).expect(429);
        await t.http.delete('/api/v1/session/mfa/totp').set('Authorization', other).send({ code: await codeAt(secret) }).expect(429);
        assert.deepEqual((await whoami(auth)).session.amr, ['pwd']);
        assert.equal((await auditEvents(t, 'session.mfa_verified')).filter((e) => e.after.userId === user.id).length, 0);

        // another user is not affected
        const bystander = await insertUser(t);
        const b = await enrolled(bystander);
        await forgetLastStep(bystander.id);
        await post('/session/mfa/verify', b.auth, { code: await codeAt(b.secret) }).expect(200);

        // when the lock has run out (moved into the past in the database), a correct code works and resets the counter
        await t.testDb.db('rate_limits').where({ key: `mfa:user:${user.id}` }).update({ locked_until: new Date(Date.now() - 1000) });
        await post('/session/mfa/verify', auth, { code: await codeAt(secret) }).expect(200);
        assert.equal(await t.testDb.db('rate_limits').where({ key: `mfa:user:${user.id}` }).first(), undefined);
      });

      it('the database counter adds up exactly under concurrent failures', async () => {
        const limiter = createRateLimiter(t.testDb.db);
        const key = `test:${Date.now()}`;
        const policy = { maxFailures: 5, windowMs: 60_000, lockMs: 60_000 };
        const states = await Promise.all(Array.from({ length: 8 }, () => limiter.fail(key, policy)));
        assert.deepEqual(states.map((s) => s.failures).sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8]);
        assert.deepEqual(states.filter((s) => s.locked).map((s) => s.failures).sort((x, y) => x - y), [5, 6, 7, 8]);
        assert.equal((await limiter.state(key)).locked, true);
        await limiter.reset(key);
        assert.deepEqual(await limiter.state(key), { locked: false, retryAfterSeconds: 0, failures: 0 });
      });

      it('the failure count expires with its window', async () => {
        const user = await insertUser(t);
        const { secret } = await enrolled(user);
        const auth = await sessionAuth(t, user.id);
        const wrong = await wrongCode(secret);
        for (let i = 0; i < 4; i++) await post('/session/mfa/verify', auth, { code: wrong }).expect(400);
        await t.testDb.db('rate_limits').where({ key: `mfa:user:${user.id}` }).update({ window_started_at: new Date(Date.now() - 16 * 60_000) });
        const res = await post('/session/mfa/verify', auth, { code: wrong }).expect(400);
        assert.equal(res.body.error.details.attemptsRemaining, 4);
      });

      it('recovery codes: accepted once each (case and dashes ignored), then refused', async () => {
        const user = await insertUser(t);
        const { recoveryCodes } = await enrolled(user);
        const auth = await sessionAuth(t, user.id);
        const typed = recoveryCodes[3]!.toUpperCase().replaceAll('-', ' ');
        const res = await post('/session/mfa/verify', auth, { recoveryCode: typed }).expect(200);
        assert.equal(res.body.method, 'recovery_code');
        assert.deepEqual(res.body.session.amr, ['pwd', 'otp']);
        const used = await t.testDb.db('user_recovery_codes').where({ user_id: user.id }).whereNotNull('used_at');
        assert.equal(used.length, 1);

        const again = await sessionAuth(t, user.id);
        const refused = await post('/session/mfa/verify', again, { recoveryCode: recoveryCodes[3] }).expect(400);
        assert.equal(refused.body.error.code, 'mfa.invalid_code');
        await post('/session/mfa/verify', again, { recoveryCode: 'zzzz-zzzz-zzzz-zzzz' }).expect(400);
        const status = await t.http.get('/api/v1/session/mfa').set('Authorization', again).expect(200);
        assert.equal(status.body.recoveryCodesRemaining, 9);
        await post('/session/mfa/verify', again, { recoveryCode: recoveryCodes[4] }).expect(200);
      });
    });

    describe('disable', () => {
      it('needs a valid fresh code; removes the factor and the recovery codes (audited); enrolment can start again', async () => {
        const user = await insertUser(t);
        const { auth, secret } = await enrolled(user);
        const del = (payload?: object) => t.http.delete('/api/v1/session/mfa/totp').set('Authorization', auth).send(payload);
        assert.equal((await del().expect(400)).body.error.code, 'validation.failed');
        assert.equal((await del({ code: await wrongCode(secret) }).expect(400)).body.error.code, 'mfa.invalid_code');
        // the code used to confirm is spent: it cannot disable
        await forgetLastStep(user.id);
        const spent = await codeAt(secret);
        await post('/session/mfa/verify', auth, { code: spent }).expect(200);
        assert.equal((await del({ code: spent }).expect(400)).body.error.code, 'mfa.code_replayed');
        assert.ok(await t.testDb.db('user_totp').where({ user_id: user.id }).first());
        assert.equal((await auditEvents(t, 'mfa.totp_disabled', user.id)).length, 0);

        await del({ code: await codeAt(secret, 1) }).expect(204);
        assert.equal(await t.testDb.db('user_totp').where({ user_id: user.id }).first(), undefined);
        assert.equal((await t.testDb.db('user_recovery_codes').where({ user_id: user.id })).length, 0);
        const [event] = await auditEvents(t, 'mfa.totp_disabled', user.id);
        assert.equal(event.actor_id, user.id);
        assert.equal((await del({ code: '123456' }).expect(409)).body.error.code, 'mfa.not_enrolled');
        await post('/session/mfa/totp', auth).expect(201);
        await t.http.delete('/api/v1/session/mfa/totp').send({ code: '123456' }).expect(401);
      });
    });

    describe('recovery codes and support reset', () => {
      it('regenerating needs a valid code, replaces the set (old codes stop working), audited', async () => {
        const user = await insertUser(t);
        const { auth, secret, recoveryCodes: old } = await enrolled(user);
        const regen = (payload?: object) => post('/session/mfa/recovery-codes', auth, payload);
        await regen({}).expect(400);
        assert.equal((await regen({ code: await wrongCode(secret) }).expect(400)).body.error.code, 'mfa.invalid_code');
        const res = await regen({ code: await codeAt(secret, 1) }).expect(200);
        assert.equal(res.body.recoveryCodes.length, 10);
        assert.ok(res.body.recoveryCodes.every((c: string) => !old.includes(c)));
        const [event] = await auditEvents(t, 'mfa.recovery_codes_regenerated', user.id);
        assert.deepEqual(event.after, { recoveryCodes: 10, provedWith: 'totp' });
        const fresh = await sessionAuth(t, user.id);
        await post('/session/mfa/verify', fresh, { recoveryCode: old[0] }).expect(400);
        await post('/session/mfa/verify', fresh, { recoveryCode: res.body.recoveryCodes[0] }).expect(200);
        await t.http.post('/api/v1/session/mfa/recovery-codes').send({ code: '123456' }).expect(401);
      });

      it('DELETE /users/:id/mfa (service token) removes the factor and the lock; sessions may not; unknown user 404', async () => {
        const user = await insertUser(t);
        const { auth, secret } = await enrolled(user);
        const wrong = await wrongCode(secret);
        for (let i = 0; i < 5; i++) await post('/session/mfa/verify', auth, { code: wrong });
        assert.ok((await t.testDb.db('rate_limits').where({ key: `mfa:user:${user.id}` }).first()).locked_until);

        const refused = await t.http.delete(`/api/v1/users/${user.id}/mfa`).set('Authorization', auth).expect(403);
        assert.equal(refused.body.error.code, 'auth.service_token_required');
        await t.http.delete(`/api/v1/users/${user.id}/mfa`).expect(401);
        assert.ok(await t.testDb.db('user_totp').where({ user_id: user.id }).first());
        assert.equal((await auditEvents(t, 'mfa.reset', user.id)).length, 0);

        await t.http.delete(`/api/v1/users/${user.id}/mfa`).set('Authorization', t.adminAuth).expect(204);
        assert.equal(await t.testDb.db('user_totp').where({ user_id: user.id }).first(), undefined);
        assert.equal((await t.testDb.db('user_recovery_codes').where({ user_id: user.id })).length, 0);
        assert.equal(await t.testDb.db('rate_limits').where({ key: `mfa:user:${user.id}` }).first(), undefined);
        const [event] = await auditEvents(t, 'mfa.reset', user.id);
        assert.deepEqual([event.actor_type, event.before.factor], ['service_token', 'totp']);
        await post('/session/mfa/totp', auth).expect(201);

        await t.http.delete('/api/v1/users/00000000-0000-4000-8000-000000000000/mfa').set('Authorization', t.adminAuth).expect(404);
        await t.http.delete('/api/v1/users/nope/mfa').set('Authorization', t.adminAuth).expect(404);
      });
    });

    describe('org MFA policy', () => {
      async function twoOrgs() {
        const user = await insertUser(t);
        const a = await insertOrg(t, { ownerId: user.id });
        const b = await insertOrg(t, { ownerId: user.id });
        return { user, a, b };
      }
      const policy = (orgId: string, auth: string) => t.http.get(`/api/v1/orgs/${orgId}/mfa-policy`).set('Authorization', auth);
      const setPolicy = (orgId: string, auth: string, payload: object) =>
        t.http.put(`/api/v1/orgs/${orgId}/mfa-policy`).set('Authorization', auth).send(payload);
      const mfaOf = (who: { organizations: { id: string; mfa: string }[] }, orgId: string) => who.organizations.find((o) => o.id === orgId)?.mfa;

      it('GET/PUT: service token sets it (audited with before/after); GET reflects it; an unchanged PUT writes no event', async () => {
        const { a } = await twoOrgs();
        const initial = await policy(a.id, t.adminAuth).expect(200);
        assert.deepEqual(initial.body, { orgId: a.id, required: false, gracePeriodHours: null, requiredSince: null, graceEndsAt: null });
        const res = await setPolicy(a.id, t.adminAuth, { required: true, gracePeriodHours: 48 }).expect(200);
        assert.equal(res.body.required, true);
        assert.equal(res.body.gracePeriodHours, 48);
        const since = new Date(res.body.requiredSince).getTime();
        assert.ok(Math.abs(since - Date.now()) < 60_000);
        assert.equal(new Date(res.body.graceEndsAt).getTime(), since + 48 * 3_600_000);
        const row = await t.testDb.db('organizations').where({ id: a.id }).first();
        assert.deepEqual([row.mfa_required, row.mfa_grace_period_hours], [true, 48]);
        const [event] = await auditEvents(t, 'mfa_policy.updated', a.id);
        assert.equal(event.org_id, a.id);
        assert.equal(event.actor_type, 'service_token');
        assert.deepEqual(event.before, { required: false, gracePeriodHours: null, requiredSince: null });
        assert.equal(event.after.required, true);
        assert.equal(event.after.gracePeriodHours, 48);

        // same again: nothing changes, the grace clock is not restarted, no event
        const same = await setPolicy(a.id, t.adminAuth, { required: true, gracePeriodHours: 48 }).expect(200);
        assert.equal(same.body.requiredSince, res.body.requiredSince);
        assert.equal((await auditEvents(t, 'mfa_policy.updated', a.id)).length, 1);
        // off clears the clock
        const off = await setPolicy(a.id, t.adminAuth, { required: false }).expect(200);
        assert.deepEqual([off.body.required, off.body.requiredSince, off.body.gracePeriodHours], [false, null, null]);
        assert.equal((await auditEvents(t, 'mfa_policy.updated', a.id)).length, 2);
      });

      it('bad input 400, no auth 401, member without mfa:manage 403, non-member and unknown org 404; refused writes leave no event', async () => {
        const { user, a } = await twoOrgs();
        const ownerAuth = await sessionAuth(t, user.id);
        for (const payload of [{}, { required: 'yes' }, { required: true, gracePeriodHours: -1 }, { required: true, gracePeriodHours: 1.5 }, { required: false, extra: 1 }]) {
          assert.equal((await setPolicy(a.id, ownerAuth, payload).expect(400)).body.error.code, 'validation.failed');
        }
        await t.http.get(`/api/v1/orgs/${a.id}/mfa-policy`).expect(401);
        await t.http.put(`/api/v1/orgs/${a.id}/mfa-policy`).send({ required: true }).expect(401);

        const member = await insertUser(t);
        await addMember(t, a.id, member.id, 'member');
        const memberAuth = await sessionAuth(t, member.id);
        await policy(a.id, memberAuth).expect(200); // org:read
        const denied = await setPolicy(a.id, memberAuth, { required: false }).expect(403);
        assert.equal(denied.body.error.code, 'forbidden');

        const outsider = await insertUser(t);
        const outsiderAuth = await sessionAuth(t, outsider.id);
        await policy(a.id, outsiderAuth).expect(404);
        await setPolicy(a.id, outsiderAuth, { required: true }).expect(404);
        await setPolicy(a.id, outsiderAuth, { bogus: true }).expect(404); // authorization before validation
        await policy('00000000-0000-4000-8000-000000000000', t.adminAuth).expect(404);
        await policy('not-a-uuid', t.adminAuth).expect(404);
        await setPolicy('00000000-0000-4000-8000-000000000000', t.adminAuth, { required: true }).expect(404);
        assert.equal((await auditEvents(t, 'mfa_policy.updated', a.id)).length, 0);
      });

      it('a user session turns it on only when it satisfies it itself; then can always get back in to turn it off', async () => {
        const { user, a } = await twoOrgs();
        const pwdOnly = await sessionAuth(t, user.id);
        const refused = await setPolicy(a.id, pwdOnly, { required: true }).expect(403);
        assert.equal(refused.body.error.code, 'mfa_required');
        assert.equal(refused.body.error.details.mfa, 'enroll_required');
        assert.equal((await auditEvents(t, 'mfa_policy.updated', a.id)).length, 0);

        const { auth: verified, secret } = await enrolled(user); // confirmation verifies that session
        await setPolicy(a.id, verified, { required: true }).expect(200);
        const [event] = await auditEvents(t, 'mfa_policy.updated', a.id);
        assert.deepEqual([event.actor_type, event.actor_id], ['user', user.id]);

        // a fresh password session of the same admin is locked out of the org, including this endpoint...
        const fresh = await sessionAuth(t, user.id);
        assert.equal((await setPolicy(a.id, fresh, { required: false }).expect(403)).body.error.code, 'mfa_required');
        // ...until it verifies, which is not org-scoped and so always reachable
        await post('/session/mfa/verify', fresh, { code: await codeAt(secret, 1) }).expect(200);
        await setPolicy(a.id, fresh, { required: false }).expect(200);
      });

      it('the same session loses access in the org that requires MFA and keeps it in the other; GET /session tells which', async () => {
        const { user, a, b } = await twoOrgs();
        const auth = await sessionAuth(t, user.id);
        await policy(a.id, auth).expect(200);
        await setPolicy(a.id, t.adminAuth, { required: true }).expect(200);

        const blocked = await policy(a.id, auth).expect(403);
        assert.equal(blocked.body.error.code, 'mfa_required');
        assert.equal(blocked.body.error.details.mfa, 'enroll_required');
        await policy(b.id, auth).expect(200);
        const who = await whoami(auth);
        assert.equal(mfaOf(who, a.id), 'enroll_required');
        assert.equal(mfaOf(who, b.id), 'satisfied');

        // enrolled but this session not verified: verify_required
        const { secret } = await enrolled(user);
        assert.equal(mfaOf(await whoami(auth), a.id), 'verify_required');
        assert.equal((await policy(a.id, auth).expect(403)).body.error.details.mfa, 'verify_required');
        await post('/session/mfa/verify', auth, { code: await codeAt(secret, 1) }).expect(200);
        assert.equal(mfaOf(await whoami(auth), a.id), 'satisfied');
        await policy(a.id, auth).expect(200);

        // policy off: a password-only session gets in again
        const another = await sessionAuth(t, user.id);
        await policy(a.id, another).expect(403);
        await setPolicy(a.id, t.adminAuth, { required: false }).expect(200);
        await policy(a.id, another).expect(200);
      });

      it('an SSO session counts as MFA only in the org whose connection signed it in', async () => {
        const { user, a, b } = await twoOrgs();
        await setPolicy(a.id, t.adminAuth, { required: true }).expect(200);
        await setPolicy(b.id, t.adminAuth, { required: true }).expect(200);
        const { token } = await t.ctx.services.sessions.create({ userId: user.id, amr: ['sso'], ssoOrgId: a.id }, { type: 'system', id: null });
        const auth = `Bearer ${token}`;
        await policy(a.id, auth).expect(200);
        assert.equal((await policy(b.id, auth).expect(403)).body.error.code, 'mfa_required');
        const who = await whoami(auth);
        assert.equal(mfaOf(who, a.id), 'satisfied');
        assert.equal(mfaOf(who, b.id), 'enroll_required');
        assert.equal(who.session.ssoOrgId, a.id);
      });

      it('grace period: members without a factor keep access until it ends; enrolled members still verify', async () => {
        const { user, a } = await twoOrgs();
        const member = await insertUser(t);
        await addMember(t, a.id, member.id, 'viewer');
        const memberAuth = await sessionAuth(t, member.id);
        await setPolicy(a.id, t.adminAuth, { required: true, gracePeriodHours: 24 }).expect(200);
        await policy(a.id, memberAuth).expect(200);
        assert.equal(mfaOf(await whoami(memberAuth), a.id), 'satisfied');
        // the owner has a factor: the grace period is for enrolling, so the owner must verify
        await enrolled(user);
        const ownerPwd = await sessionAuth(t, user.id);
        assert.equal(mfaOf(await whoami(ownerPwd), a.id), 'verify_required');

        await t.testDb.db('organizations').where({ id: a.id }).update({ mfa_required_since: new Date(Date.now() - 25 * 3_600_000) });
        assert.equal((await policy(a.id, memberAuth).expect(403)).body.error.details.mfa, 'enroll_required');
        assert.equal(mfaOf(await whoami(memberAuth), a.id), 'enroll_required');
      });
    });
  });
}
