import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Figures } from './stats.js';

export type Row = {
  workload: string;
  app: Figures;
  raw?: Figures;
  /** app/raw throughput ratio (1.0 = as fast as the raw limit) */
  ratio?: number;
  target?: string;
  met?: boolean;
  note?: string;
};

/** app/raw, unrounded: targets are checked against this, never against the printed figure. */
export const rateRatio = (app: { perSecond: number }, raw: { perSecond: number }): number => app.perSecond / raw.perSecond;

/** Three decimals, so a ratio just under a target never prints as the target itself (0.4957 was shown as 0.50). */
export function withRatio(row: Omit<Row, 'ratio'>): Row {
  return row.raw ? { ...row, ratio: Math.round(rateRatio(row.app, row.raw) * 1000) / 1000 } : row;
}

/** CPU ms per op: three significant-ish digits (batch decisions cost hundredths of a ms each). */
export function cpuText(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

export function printTable(rows: Row[]): void {
  const header = [
    'workload',
    'n',
    'err',
    'per s',
    'p50 ms',
    'p95 ms',
    'p99 ms',
    'svc cpu ms/op',
    'pg cpu ms/op',
    'raw per s',
    'raw pg cpu ms/op',
    'raw client cpu ms/op',
    'app/raw',
    'target',
    'met',
  ];
  const lines = rows.map((r) => [
    r.workload,
    String(r.app.count),
    String(r.app.errors),
    String(r.app.perSecond),
    String(r.app.p50),
    String(r.app.p95),
    String(r.app.p99),
    cpuText(r.app.cpu?.service),
    cpuText(r.app.cpu?.postgres),
    r.raw ? String(r.raw.perSecond) : '',
    cpuText(r.raw?.cpu?.postgres),
    cpuText(r.raw?.cpu?.bench),
    r.ratio !== undefined ? r.ratio.toFixed(3) : '',
    r.target ?? '',
    r.met === undefined ? '' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(fmt(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines) console.log(fmt(l));
  for (const r of rows) if (r.note) console.log(`  ${r.workload}: ${r.note}`);
  console.log(
    '  cpu columns: CPU ms per counted op over the measured phase, read from /proc: svc = the service process (all threads; ' +
      'on PGlite it includes the embedded database), pg = the PostgreSQL server (the bench database\'s backends + background ' +
      'processes), raw client = this bench process running the raw baseline (on PGlite the database too). ' +
      'Rows without cpu figures share a phase with the row above them.',
  );
}

export function writeJson(dir: string, payload: Record<string, unknown>): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify({ machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memGb: Math.round(os.totalmem() / 2 ** 30), node: process.version }, ...payload }, null, 2),
  );
  return file;
}
