import type { RequestHandler, Request } from 'express';
import client from 'prom-client';

/** Counts kept by a service, read when /metrics is scraped. */
export type MetricSources = { accessSingleDecisions?: () => { decisions: number; statements: number } };

/** One registry per app instance, so tests can build many apps in one process. */
export function createMetrics(sources: MetricSources = {}) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const requests = new client.Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });

  const singles = sources.accessSingleDecisions;
  if (singles) {
    // decisions / statements = how many single decisions shared a statement on average
    countedFrom(registry, 'access_single_decisions_total', 'Single access decisions answered', () => singles().decisions);
    countedFrom(registry, 'access_single_decision_statements_total', 'SQL statements that answered single access decisions', () => singles().statements);
  }

  const middleware: RequestHandler = (req, res, next) => {
    const stop = duration.startTimer();
    res.on('finish', () => {
      const labels = { method: req.method, route: routeLabel(req), status: String(res.statusCode) };
      requests.inc(labels);
      stop(labels);
    });
    next();
  };
  return { registry, middleware };
}

/** A counter whose value is read from elsewhere at scrape time. */
function countedFrom(registry: client.Registry, name: string, help: string, read: () => number): void {
  new client.Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** The matched route template (`/api/v1/orgs/:orgId`), never the raw path, so label cardinality stays bounded. */
function routeLabel(req: Request): string {
  const path = req.route?.path;
  if (typeof path !== 'string') return 'unmatched';
  return `${req.baseUrl}${path}`.replace(/\/[0-9a-f-]{36}(?=\/|$)/gi, '/:id');
}
