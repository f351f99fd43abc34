import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import express from 'express';
import supertest from 'supertest';
import { createLogger } from '../../src/logger.js';
import { requestId } from '../../src/http/request-id.js';
import { accessLog } from '../../src/http/access-log.js';
import { errorHandler } from '../../src/http/error-handler.js';

function capture(level: 'info' | 'warn') {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = createLogger(level, sink);
  const app = express();
  app.use(requestId);
  app.use(accessLog(logger));
  app.get('/ok', (_req, res) => res.json({ ok: true }));
  app.get('/healthz', (_req, res) => res.json({ ok: true }));
  app.get('/boom', () => {
    throw new Error('kaput');
  });
  app.use(errorHandler(logger));
  return { lines, http: supertest(app) };
}

describe('access log', () => {
  it('one line per request with the request id, method, path without the query, status and time', async () => {
    const { lines, http } = capture('info');
    await http.get('/ok?SAMLRequest=secret').set('X-Request-Id', 'req-log-1').expect(200);
    const line = lines.find((l) => l.msg === 'request completed')!;
    assert.equal(line.reqId, 'req-log-1');
    assert.deepEqual(line.req, { method: 'GET', path: '/ok' });
    assert.deepEqual(line.res, { statusCode: 200 });
    assert.equal(typeof line.responseTime, 'number');
    assert.ok(!JSON.stringify(lines).includes('secret'), 'the query string is never logged');
  });

  it('health probes are not logged; a 500 logs the error and the request line with the same request id', async () => {
    const { lines, http } = capture('info');
    await http.get('/healthz').expect(200);
    assert.equal(lines.length, 0);
    await http.get('/boom').set('X-Request-Id', 'req-log-2').expect(500);
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.reqId]),
      [
        [50, 'request failed', 'req-log-2'],
        [50, 'request completed', 'req-log-2'],
      ],
    );
  });

  it('at level warn, successful requests write nothing', async () => {
    const { lines, http } = capture('warn');
    await http.get('/ok').expect(200);
    assert.equal(lines.length, 0);
  });
});
