/** Latency samples (ms) → the figures every workload reports. */
export type Figures = {
  count: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p95: number;
  p99: number;
  /** CPU milliseconds per counted unit over the measured phase (see BenchContext.phase) */
  cpu?: CpuPerOp;
};

/**
 * CPU ms per counted unit: `service` = the service process (all threads; on PGlite it
 * includes the embedded database), `postgres` = the PostgreSQL server (this database's
 * backends + background processes), `bench` = this process (the load generator, or the
 * raw baseline's driver; on PGlite raw phases also the database).
 */
export type CpuPerOp = { service?: number; postgres?: number; bench: number };

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

export function figures(latenciesMs: number[], errors: number, seconds: number, units = latenciesMs.length): Figures {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    count: units,
    errors,
    seconds: round(seconds),
    perSecond: round(units / Math.max(seconds, 1e-9)),
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
  };
}

/**
 * Runs `total` tasks with at most `concurrency` in flight and measures each.
 * Used for raw-SQL baselines and for ordered HTTP sequences. `unitsPerTask`
 * lets a batch task count as many decisions.
 */
export async function runConcurrent(
  total: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
  unitsPerTask = 1,
  /** also receives every latency (rounds of one workload are combined from these) */
  sink?: number[],
): Promise<Figures> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const t0 = performance.now();
      try {
        await task(i);
      } catch (err) {
        errors++;
        if (errors <= 3) console.error(`  task ${i} failed: ${(err as Error).message}`);
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - started) / 1000;
  sink?.push(...latencies);
  return figures(latencies, errors, seconds, total * unitsPerTask);
}

/**
 * One side of a workload measured in several rounds, as if it were one phase: units and
 * seconds add up, percentiles come from every latency, CPU per unit is weighted by units.
 */
export function combineRounds(rounds: Figures[], latencies: number[]): Figures {
  const units = rounds.reduce((n, r) => n + r.count, 0);
  const seconds = rounds.reduce((n, r) => n + r.seconds, 0);
  const errors = rounds.reduce((n, r) => n + r.errors, 0);
  const combined = figures(latencies, errors, seconds, units);
  const weighted = (pick: (c: CpuPerOp) => number | undefined) => {
    if (rounds.some((r) => r.cpu === undefined || pick(r.cpu) === undefined)) return undefined;
    return Math.round((rounds.reduce((n, r) => n + pick(r.cpu!)! * r.count, 0) / Math.max(units, 1)) * 1000) / 1000;
  };
  const cpu = rounds[0]?.cpu ? { service: weighted((c) => c.service), postgres: weighted((c) => c.postgres), bench: weighted((c) => c.bench) ?? 0 } : undefined;
  return cpu ? { ...combined, cpu } : combined;
}

/**
 * Per-request latencies inside a task that makes several requests (a lookup
 * then a create, a create then a PATCH): each label gets its own percentiles.
 */
export class Samples {
  private readonly byLabel = new Map<string, number[]>();

  async time<T>(label: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      const list = this.byLabel.get(label) ?? [];
      list.push(performance.now() - t0);
      this.byLabel.set(label, list);
    }
  }

  /** Figures for one label over the wall time of the run it was recorded in. */
  figures(label: string, seconds: number, errors = 0): Figures {
    return figures(this.byLabel.get(label) ?? [], errors, seconds);
  }

  max(label: string): number {
    return Math.round(Math.max(0, ...(this.byLabel.get(label) ?? [])) * 100) / 100;
  }
}

/** A deterministic PRNG (mulberry32) so every run samples the same users and projects. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
