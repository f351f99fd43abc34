import { Router } from 'express';
import type { Db } from '../db/knex.js';
import type { Registry } from 'prom-client';

const READY_TIMEOUT_MS = 2_000;

export function healthRouter(db: Db, registry: Registry): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    try {
      await withTimeout(db.raw('select 1'), READY_TIMEOUT_MS);
      res.json({ status: 'ready', database: 'ok' });
    } catch {
      res.status(503).json({ error: { code: 'not_ready', message: 'Database unavailable' } });
    }
  });
  router.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}

function withTimeout<T>(promise: PromiseLike<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    Promise.resolve(promise).finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]);
}
