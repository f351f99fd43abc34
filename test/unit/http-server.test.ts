import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createHttpServer } from '../../src/http/server.js';

/** The prototypes of each request and response as the server created them, before express saw them. */
const bornWith = new Map<string, { req: object; res: object }>();

async function listen(app: express.Express): Promise<{ server: Server; base: string }> {
  const server = createHttpServer(app);
  server.prependListener('request', (req, res) => bornWith.set(String(req.url), { req: Object.getPrototypeOf(req) as object, res: Object.getPrototypeOf(res) as object }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('createHttpServer (requests born with express prototypes)', () => {
  const app = express();
  const other = express();
  app.use(express.json());
  app.get('/items/:id', (req, res) => {
    res.status(203).set('X-Seen', req.get('x-probe') ?? '').json({ id: req.params.id, q: req.query.q, app: req.app === app, resApp: res.app === app });
  });
  app.post('/echo', (req, res) => {
    res.json({ body: req.body as unknown, path: req.path, protocol: req.protocol });
  });
  app.get('/boom', () => {
    throw Object.assign(new Error('nope'), { status: 418 });
  });
  app.use(((err, _req, res, _next) => {
    res.status((err as { status?: number }).status ?? 500).json({ error: (err as Error).message });
  }) as express.ErrorRequestHandler);
  other.get('/who', (req, res) => res.json({ mine: req.app === other }));

  let servers: { server: Server; base: string }[] = [];
  before(async () => {
    servers = [await listen(app), await listen(other)];
  });
  after(async () => {
    for (const { server } of servers) await new Promise((resolve) => server.close(resolve));
  });

  it('hands express a request whose prototype is already app.request, and every express feature works on it', async () => {
    const res = await fetch(`${servers[0]!.base}/items/42?q=x`, { headers: { 'X-Probe': 'p1' } });
    assert.equal(res.status, 203);
    assert.equal(res.headers.get('x-seen'), 'p1');
    assert.deepEqual(await res.json(), { id: '42', q: 'x', app: true, resApp: true });
    assert.deepEqual(bornWith.get('/items/42?q=x'), { req: app.request, res: app.response });
  });

  it('reads JSON bodies, answers errors through the error handler and unknown paths with 404', async () => {
    const posted = await fetch(`${servers[0]!.base}/echo`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"a":[1,2]}' });
    assert.deepEqual(await posted.json(), { body: { a: [1, 2] }, path: '/echo', protocol: 'http' });
    const boom = await fetch(`${servers[0]!.base}/boom`);
    assert.equal(boom.status, 418);
    assert.deepEqual(await boom.json(), { error: 'nope' });
    assert.equal((await fetch(`${servers[0]!.base}/nowhere`)).status, 404);
  });

  it('keeps two apps apart: each server creates requests with its own app prototypes', async () => {
    assert.deepEqual(await (await fetch(`${servers[1]!.base}/who`)).json(), { mine: true });
    assert.deepEqual(bornWith.get('/who'), { req: other.request, res: other.response });
  });
});
