import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestApp, TEST_ADMIN_TOKEN, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { hashToken } from '../../src/auth/tokens.js';

for (const backend of testBackends()) {
  describe(`HTTP foundation [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { BODY_LIMIT: '2kb' });
    });
    after(() => t.close());

    describe('health, readiness and metrics', () => {
      it('GET /healthz answers 200 without touching auth', async () => {
        const res = await t.http.get('/healthz').expect(200);
        assert.deepEqual(res.body, { status: 'ok' });
      });

      it('GET /readyz queries the database and answers 200', async () => {
        const res = await t.http.get('/readyz').expect(200);
        assert.equal(res.body.database, 'ok');
      });

      it('GET /metrics exposes request counts and latency histograms by route template', async () => {
        await t.http.get('/api/v1/nothing').set('Authorization', t.adminAuth);
        const res = await t.http.get('/metrics').expect(200);
        assert.match(res.headers['content-type']!, /text\/plain/);
        assert.match(res.text, /http_requests_total\{method="GET",route="\/readyz",status="200"\} \d+/);
        assert.match(res.text, /http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/healthz",status="200"\}/);
        assert.match(res.text, /process_resident_memory_bytes/);
      });
    });

    describe('admin API authentication', () => {
      it('When no token is sent, Then 401 with the JSON error shape and a WWW-Authenticate challenge', async () => {
        const res = await t.http.post('/api/v1/service-tokens').send({ name: 'x' }).expect(401);
        assert.equal(res.body.error.code, 'auth.unauthorized');
        assert.equal(typeof res.body.error.message, 'string');
        assert.equal(res.headers['www-authenticate'], 'Bearer');
      });

      it('When a wrong or malformed token is sent, Then 401', async () => {
        for (const header of [`Bearer ${TEST_ADMIN_TOKEN}x`, 'Bearer nope', `Basic ${TEST_ADMIN_TOKEN}`, 'Bearer', TEST_ADMIN_TOKEN]) {
          const res = await t.http.post('/api/v1/service-tokens').set('Authorization', header).send({ name: 'x' });
          assert.equal(res.status, 401, header);
        }
      });

      it('When the right token is sent, Then the request goes through and a new token works too', async () => {
        const res = await t.http.post('/api/v1/service-tokens').set('Authorization', t.adminAuth).send({ name: 'ci' }).expect(201);
        assert.match(res.body.token, /^svc_/);
        await t.http.post('/api/v1/service-tokens').set('Authorization', `Bearer ${res.body.token}`).send({ name: 'ci2' }).expect(201);
      });

      it('Tokens are stored only as hashes', async () => {
        const res = await t.http.post('/api/v1/service-tokens').set('Authorization', t.adminAuth).send({ name: 'h' }).expect(201);
        const rows = await t.testDb.db('service_tokens').select('*');
        const dump = JSON.stringify(rows);
        assert.ok(!dump.includes(res.body.token));
        assert.ok(!dump.includes(TEST_ADMIN_TOKEN));
        assert.ok(rows.some((r) => r.token_hash === hashToken(res.body.token)));
      });

      it('A revoked token is refused', async () => {
        const res = await t.http.post('/api/v1/service-tokens').set('Authorization', t.adminAuth).send({ name: 'rev' }).expect(201);
        await t.testDb.db('service_tokens').where({ id: res.body.id }).update({ revoked_at: new Date() });
        await t.http.post('/api/v1/service-tokens').set('Authorization', `Bearer ${res.body.token}`).send({ name: 'x' }).expect(401);
      });

      it('A token revoked in the database after use stops within SERVICE_TOKEN_CACHE_SECONDS (at once with 0)', async () => {
        const cached = await createTestApp(backend, { SERVICE_TOKEN_CACHE_SECONDS: '0.3' });
        const uncached = await createTestApp(backend, { SERVICE_TOKEN_CACHE_SECONDS: '0' });
        try {
          for (const app of [cached, uncached]) {
            const res = await app.http.post('/api/v1/service-tokens').set('Authorization', app.adminAuth).send({ name: 'cached' }).expect(201);
            const auth = `Bearer ${res.body.token}`;
            await app.http.get('/api/v1/orgs').set('Authorization', auth).expect(200);
            await app.testDb.db('service_tokens').where({ id: res.body.id }).update({ revoked_at: new Date() });
            const next = await app.http.get('/api/v1/orgs').set('Authorization', auth);
            assert.equal(next.status, app === cached ? 200 : 401, 'the lookup is reused only for the cache time');
            await new Promise((r) => setTimeout(r, 350));
            await app.http.get('/api/v1/orgs').set('Authorization', auth).expect(401);
          }
        } finally {
          await cached.close();
          await uncached.close();
        }
      });

      it('Creating a token writes an audit event in the same transaction', async () => {
        const res = await t.http
          .post('/api/v1/service-tokens')
          .set('Authorization', t.adminAuth)
          .set('X-Request-Id', 'req-audit-1')
          .send({ name: 'audited' })
          .expect(201);
        const events = await t.testDb.db('audit_events').where({ action: 'service_token.created', target_id: res.body.id });
        assert.equal(events.length, 1);
        assert.equal(events[0].request_id, 'req-audit-1');
        assert.equal(events[0].actor_type, 'service_token');
      });
    });

    describe('errors and limits', () => {
      it('unknown routes answer 404 in the JSON error shape', async () => {
        const res = await t.http.get('/no/such/route').expect(404);
        assert.equal(res.body.error.code, 'route.not_found');
      });

      it('invalid input answers 400 with field paths, and changes nothing', async () => {
        const before = await t.testDb.db('service_tokens').count({ n: '*' }).first();
        const res = await t.http.post('/api/v1/service-tokens').set('Authorization', t.adminAuth).send({ name: '', extra: 1 }).expect(400);
        assert.equal(res.body.error.code, 'validation.failed');
        const paths = res.body.error.details.map((d: { path: string }) => d.path).sort();
        assert.deepEqual(paths, ['', 'name']);
        const afterCount = await t.testDb.db('service_tokens').count({ n: '*' }).first();
        assert.equal(Number(afterCount?.n), Number(before?.n));
      });

      it('malformed JSON answers 400', async () => {
        const res = await t.http
          .post('/api/v1/service-tokens')
          .set('Authorization', t.adminAuth)
          .set('Content-Type', 'application/json')
          .send('{"name":')
          .expect(400);
        assert.equal(res.body.error.code, 'request.malformed_json');
      });

      it('bodies over the limit answer 413', async () => {
        const res = await t.http
          .post('/api/v1/service-tokens')
          .set('Authorization', t.adminAuth)
          .send({ name: 'x'.repeat(5000) })
          .expect(413);
        assert.equal(res.body.error.code, 'request.too_large');
      });
    });

    describe('request ids and security headers', () => {
      it('echoes a safe X-Request-Id and mints one otherwise', async () => {
        const kept = await t.http.get('/healthz').set('X-Request-Id', 'abc-123');
        assert.equal(kept.headers['x-request-id'], 'abc-123');
        const minted = await t.http.get('/healthz').set('X-Request-Id', 'bad id with spaces');
        assert.match(minted.headers['x-request-id']!, /^[0-9a-f-]{36}$/);
      });

      it('sets the API security headers on answers and errors alike, no document-only ones, and hides x-powered-by', async () => {
        for (const res of [await t.http.get('/healthz'), await t.http.get('/api/v1/orgs'), await t.http.get('/nowhere')]) {
          assert.deepEqual(
            [200, 401, 404].includes(res.status) && {
              cache: res.headers['cache-control'],
              csp: res.headers['content-security-policy'],
              frame: res.headers['x-frame-options'],
              sniff: res.headers['x-content-type-options'],
              hsts: res.headers['strict-transport-security'],
              referrer: res.headers['referrer-policy'],
              corp: res.headers['cross-origin-resource-policy'],
            },
            {
              cache: 'no-store',
              csp: "default-src 'none';frame-ancestors 'none'",
              frame: 'DENY',
              sniff: 'nosniff',
              hsts: 'max-age=31536000; includeSubDomains',
              referrer: 'no-referrer',
              corp: 'same-origin',
            },
            `${res.status} ${JSON.stringify(res.headers)}`,
          );
          for (const gone of ['x-powered-by', 'x-xss-protection', 'x-download-options', 'x-dns-prefetch-control', 'x-permitted-cross-domain-policies', 'origin-agent-cluster', 'cross-origin-opener-policy']) {
            assert.equal(res.headers[gone], undefined, gone);
          }
        }
      });
    });
  });
}
