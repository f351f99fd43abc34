import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { auditEvents, insertOrg, insertUser, memberWithSession } from '../helpers/fixtures.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

for (const backend of testBackends()) {
  describe(`verified domains [${backend}]`, () => {
    let t: TestApp;
    let dns: TestDnsServer;
    let org: { id: string };
    let n = 0;
    const fresh = () => `d${++n}-${Date.now().toString(36)}.example.com`;
    const add = (orgId: string, domain: string, auth = t.adminAuth) =>
      t.http.post(`/api/v1/orgs/${orgId}/domains`).set('Authorization', auth).send({ domain });
    const verify = (orgId: string, domain: string, method = 'dns', auth = t.adminAuth) =>
      t.http.post(`/api/v1/orgs/${orgId}/domains/${domain}/verify`).set('Authorization', auth).send({ method });

    before(async () => {
      dns = await startDnsServer();
      t = await createTestApp(backend, { DNS_SERVERS: dns.address });
      const owner = await insertUser(t);
      org = await insertOrg(t, { ownerId: owner.id });
    });
    after(async () => {
      await t.close();
      await dns.close();
    });

    it('POST answers the TXT record to publish; case and trailing dots are normalised; audited', async () => {
      const domain = fresh();
      const res = await add(org.id, `  ${domain.toUpperCase()}.. `).expect(201);
      assert.equal(res.body.domain, domain);
      assert.equal(res.body.status, 'pending');
      assert.equal(res.body.verification.type, 'TXT');
      assert.equal(res.body.verification.name, `_idp-verification.${domain}`);
      assert.match(res.body.verification.value, /^idp-verification=[A-Za-z0-9_-]{32}$/);
      assert.equal((await auditEvents(t, 'domain.created', res.body.id)).length, 1);
      const dup = await add(org.id, domain).expect(409);
      assert.equal(dup.body.error.code, 'conflict.domains_org_domain_key');
      const got = await t.http.get(`/api/v1/orgs/${org.id}/domains/${domain.toUpperCase()}`).set('Authorization', t.adminAuth).expect(200);
      assert.equal(got.body.id, res.body.id);
    });

    it('public suffixes, IP literals and junk are refused (400)', async () => {
      const cases: [string, string][] = [
        ['com', 'domain.public_suffix'],
        ['co.uk', 'domain.public_suffix'],
        ['github.io', 'domain.public_suffix'],
        ['192.168.1.10', 'domain.ip_literal'],
        ['[::1]', 'domain.ip_literal'],
        ['exa mple.com', 'domain.invalid'],
        ['-bad.example.com', 'domain.invalid'],
        ['localhost', 'domain.public_suffix'],
      ];
      for (const [input, code] of cases) {
        const res = await add(org.id, input).expect(400);
        assert.equal(res.body.error.code, code, input);
      }
      await add(org.id, '').expect(400);
      await t.http.post(`/api/v1/orgs/${org.id}/domains`).set('Authorization', t.adminAuth).send({ domain: 'a.example.com', extra: 1 }).expect(400);
      // a subdomain of a registrable domain and a registrable domain under a multi-label suffix are fine
      await add(org.id, `eu.${fresh()}`).expect(201);
      await add(org.id, `acme-${n}.co.uk`).expect(201);
      assert.equal((await t.testDb.db('audit_events').where({ action: 'domain.created' }).whereRaw(`after->>'domain' in ('com','co.uk')`)).length, 0);
    });

    it('DNS verification: record absent (422), wrong value (422), present (200, audited)', async () => {
      const domain = fresh();
      const created = (await add(org.id, domain).expect(201)).body;
      const absent = await verify(org.id, domain).expect(422);
      assert.equal(absent.body.error.code, 'domain.record_not_found');
      assert.ok(dns.queries.includes(`_idp-verification.${domain}`), 'asked our DNS server');
      dns.txt.set(`_idp-verification.${domain}`, ['v=spf1 -all', 'idp-verification=wrong']);
      const wrong = await verify(org.id, domain).expect(422);
      assert.equal(wrong.body.error.code, 'domain.record_mismatch');
      assert.equal((await auditEvents(t, 'domain.verified', created.id)).length, 0);
      dns.txt.set(`_idp-verification.${domain}`, ['v=spf1 -all', created.verification.value]);
      const ok = await verify(org.id, domain).expect(200);
      assert.equal(ok.body.status, 'verified');
      assert.equal(ok.body.verificationMethod, 'dns');
      assert.ok(ok.body.verifiedAt);
      const events = await auditEvents(t, 'domain.verified', created.id);
      assert.equal(events.length, 1);
      assert.equal(events[0].after.method, 'dns');
    });

    it('a domain verified by one org cannot be added or verified by another (409)', async () => {
      const domain = fresh();
      const other = await insertOrg(t);
      const pendingElsewhere = (await add(other.id, domain).expect(201)).body;
      const mine = (await add(org.id, domain).expect(201)).body;
      dns.txt.set(`_idp-verification.${domain}`, [mine.verification.value, pendingElsewhere.verification.value]);
      await verify(org.id, domain).expect(200);
      const taken = await verify(other.id, domain).expect(409);
      assert.equal(taken.body.error.code, 'conflict.domains_verified_key');
      await add((await insertOrg(t)).id, domain).expect(409);
      // the unique index holds even if the check is bypassed
      await assert.rejects(
        t.testDb.db('domains').where({ id: pendingElsewhere.id }).update({ status: 'verified', verified_at: new Date() }),
        (err: { code?: string }) => err.code === '23505',
      );
    });

    it('manual verification: service tokens only, audited', async () => {
      const domain = fresh();
      const created = (await add(org.id, domain).expect(201)).body;
      const { auth } = await memberWithSession(t, org.id, 'admin');
      const refused = await verify(org.id, domain, 'manual', auth).expect(403);
      assert.equal(refused.body.error.code, 'auth.service_token_required');
      const ok = await verify(org.id, domain, 'manual').expect(200);
      assert.equal(ok.body.verificationMethod, 'manual');
      const [event] = await auditEvents(t, 'domain.verified', created.id);
      assert.equal(event.after.method, 'manual');
      assert.equal(event.actor_type, 'service_token');
      await verify(org.id, domain, 'carrier-pigeon').expect(400);
    });

    it('capture settings (verified domains only), list with pagination, delete', async () => {
      const pending = fresh();
      await add(org.id, pending).expect(201);
      const notYet = await t.http.patch(`/api/v1/orgs/${org.id}/domains/${pending}`).set('Authorization', t.adminAuth).send({ captureEnabled: true }).expect(409);
      assert.equal(notYet.body.error.code, 'domain.not_verified');
      await verify(org.id, pending, 'manual').expect(200);
      const patched = await t.http
        .patch(`/api/v1/orgs/${org.id}/domains/${pending}`)
        .set('Authorization', t.adminAuth)
        .send({ captureEnabled: true, captureRole: 'viewer' })
        .expect(200);
      assert.deepEqual([patched.body.captureEnabled, patched.body.captureRole], [true, 'viewer']);
      await t.http.patch(`/api/v1/orgs/${org.id}/domains/${pending}`).set('Authorization', t.adminAuth).send({ captureRole: 'owner' }).expect(400);
      await t.http.patch(`/api/v1/orgs/${org.id}/domains/${pending}`).set('Authorization', t.adminAuth).send({}).expect(400);
      assert.equal((await auditEvents(t, 'domain.updated', patched.body.id)).length, 1);

      const page1 = await t.http.get(`/api/v1/orgs/${org.id}/domains?limit=2`).set('Authorization', t.adminAuth).expect(200);
      assert.equal(page1.body.data.length, 2);
      assert.ok(page1.body.next);
      const all: string[] = [];
      let next: string | null = null;
      do {
        const page: { body: { data: { domain: string }[]; next: string | null } } = await t.http
          .get(`/api/v1/orgs/${org.id}/domains`)
          .query({ limit: 3, ...(next ? { after: next } : {}) })
          .set('Authorization', t.adminAuth)
          .expect(200);
        all.push(...page.body.data.map((d) => d.domain));
        next = page.body.next;
      } while (next);
      const count = Number((await t.testDb.db('domains').where({ org_id: org.id }).count('* as c').first())!.c);
      assert.equal(all.length, count);
      assert.deepEqual([...all].sort(), all);

      await t.http.delete(`/api/v1/orgs/${org.id}/domains/${pending}`).set('Authorization', t.adminAuth).expect(204);
      await t.http.delete(`/api/v1/orgs/${org.id}/domains/${pending}`).set('Authorization', t.adminAuth).expect(404);
      assert.equal((await auditEvents(t, 'domain.deleted', patched.body.id)).length, 1);
    });

    it('401 without a token, 403 without domains:manage, 404 for another org', async () => {
      const domain = fresh();
      await add(org.id, domain).expect(201);
      await t.http.get(`/api/v1/orgs/${org.id}/domains`).expect(401);
      await t.http.post(`/api/v1/orgs/${org.id}/domains`).send({ domain: fresh() }).expect(401);
      const { auth: memberAuth } = await memberWithSession(t, org.id, 'member');
      const forbidden = await add(org.id, fresh(), memberAuth).expect(403);
      assert.equal(forbidden.body.error.code, 'forbidden');
      await verify(org.id, domain, 'dns', memberAuth).expect(403);
      await t.http.delete(`/api/v1/orgs/${org.id}/domains/${domain}`).set('Authorization', memberAuth).expect(403);
      const otherOrg = await insertOrg(t);
      const { auth: outsider } = await memberWithSession(t, otherOrg.id, 'owner');
      await t.http.get(`/api/v1/orgs/${org.id}/domains`).set('Authorization', outsider).expect(404);
      await verify(org.id, domain, 'dns', outsider).expect(404);
      // the other org's owner cannot see this org's domain through its own org either
      await t.http.get(`/api/v1/orgs/${otherOrg.id}/domains/${domain}`).set('Authorization', outsider).expect(404);
      await t.http.get(`/api/v1/orgs/not-a-uuid/domains`).set('Authorization', t.adminAuth).expect(404);
      const refusedWrites = await t.testDb.db('audit_events').whereIn('action', ['domain.created']).whereRaw(`after->>'domain' = ?`, [domain]);
      assert.equal(refusedWrites.length, 1, 'only the successful create is audited');
    });
  });
}
