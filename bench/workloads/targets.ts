import { rateRatio, withRatio, type Row } from '../lib/report.js';
import type { Figures } from '../lib/stats.js';

/** The targets, applied row by row. */
export const RATIO_TARGET = 0.5;
export const P99_TARGET_MS = 50;

/** App throughput against its raw limit: at least half of it. */
export function rawRateRow(workload: string, app: Figures, raw: Figures | undefined, note?: string): Row {
  if (!raw) return { workload, app, note };
  const row = withRatio({ workload, app, raw, note });
  return { ...row, target: `app/raw >= ${RATIO_TARGET}`, met: rateRatio(app, raw) >= RATIO_TARGET && app.errors === 0 };
}

/** One request kind at the bench concurrency: p99 under 50 ms. */
export function p99Row(workload: string, app: Figures, limitMs = P99_TARGET_MS): Row {
  return { workload, app, target: `p99 < ${limitMs} ms`, met: app.p99 < limitMs && app.errors === 0 };
}

/** A row that only reports (no target). */
export const infoRow = (workload: string, app: Figures, note?: string): Row => ({ workload, app, note });
