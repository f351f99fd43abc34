import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * CPU time and memory of other processes, read from Linux /proc: the service's
 * utime+stime (every thread: event loop, GC, libuv pool) and the PostgreSQL
 * server's processes. Off Linux every reader answers undefined and the bench
 * prints no CPU columns.
 */
const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

type Stat = { comm: string; cpuMs: number; startTime: string };

/** /proc/<pid>/stat: the command name (field 2), utime+stime (14, 15) in ms, start time (22) to tell a reused pid. */
function readStat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14, stime 15, starttime 22
  const ticks = Number(rest[11]) + Number(rest[12]);
  return { comm: text.slice(open + 1, close), cpuMs: (ticks * 1000) / CLK_TCK, startTime: rest[19] ?? '' };
}

/** CPU milliseconds (user + system, all threads) a process has used so far. */
export function processCpuMs(pid: number): number | undefined {
  return readStat(pid)?.cpuMs;
}

/** VmRSS and VmHWM of a process in MB. */
export function processMemoryMb(pid: number): { rssMb: number; hwmMb: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const mb = (key: string) => Math.round(Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024);
    return { rssMb: mb('VmRSS'), hwmMb: mb('VmHWM') };
  } catch {
    return undefined;
  }
}

/**
 * CPU used by the PostgreSQL server on behalf of one database: every process whose
 * command is `postgres`, i.e. the backends connected to `database` plus the shared
 * background processes (postmaster, checkpointer, walwriter, autovacuum...).
 * Backends of other databases (other test runs on the same server) are left out.
 *
 * A backend that exits takes its CPU with it, so `sample()` runs often (the engine
 * calls it every 100 ms) and the counter keeps the last value of every process it
 * saw: `totalMs()` only ever grows, and the difference of two readings is the
 * server's CPU in between (a process that exits loses at most one interval).
 */
export class PgCpu {
  /** key pid:starttime -> CPU at first sight (0 for processes born after the first sample), latest CPU, class */
  private readonly procs = new Map<string, { base: number; last: number; kind: 'mine' | 'background' | 'other' | 'unknown' }>();
  /** pids that are not postgres, skipped until the next rescan (pids get reused: pid_max may be 32768) */
  private readonly ignored = new Set<number>();
  private lastRescan = 0;
  private started = false;

  constructor(private readonly database: string) {}

  static available(): boolean {
    return fs.existsSync('/proc/self/stat');
  }

  sample(): void {
    // a pid skipped as "not postgres" may since belong to a new backend: look at everything again every 5 s
    // (a process first seen late counts from 0, so nothing it did is lost unless it also exited meanwhile)
    if (Date.now() - this.lastRescan > 5_000) {
      this.ignored.clear();
      this.lastRescan = Date.now();
    }
    let pids: string[];
    try {
      pids = fs.readdirSync('/proc');
    } catch {
      return;
    }
    for (const name of pids) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || this.ignored.has(pid)) continue;
      const stat = readStat(pid);
      if (!stat) continue;
      if (stat.comm !== 'postgres') {
        this.ignored.add(pid);
        continue;
      }
      const key = `${pid}:${stat.startTime}`;
      let proc = this.procs.get(key);
      if (!proc) {
        proc = { base: this.started ? 0 : stat.cpuMs, last: stat.cpuMs, kind: 'unknown' };
        this.procs.set(key, proc);
      }
      proc.last = stat.cpuMs;
      // a just-forked backend still shows the postmaster's command line: look again until it says what it is
      if (proc.kind === 'unknown') proc.kind = this.classify(pid);
    }
    this.started = true;
  }

  /** Cumulative CPU ms of this database's backends and of the background processes since the first sample. */
  totalMs(): { backends: number; background: number } {
    let backends = 0;
    let background = 0;
    for (const p of this.procs.values()) {
      if (p.kind === 'mine') backends += p.last - p.base;
      else if (p.kind === 'background') background += p.last - p.base;
    }
    return { backends, background };
  }

  private classify(pid: number): 'mine' | 'background' | 'other' | 'unknown' {
    let cmdline: string;
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    } catch {
      return 'unknown';
    }
    // a backend: "postgres: [15/main: ]<user> <database> <host>(<port>) <activity>"
    const m = /^postgres: (?:\S+: )?(\S+) (\S+) (\S+)/.exec(cmdline);
    if (m && (/\(\d+\)$/.test(m[3]!) || m[3] === '[local]')) return m[2] === this.database ? 'mine' : 'other';
    if (cmdline.startsWith('postgres:')) return 'background';
    // the postmaster itself (its argv0 is the binary path); a fresh child looks the same for a moment
    return this.isPostmaster(pid) ? 'background' : 'unknown';
  }

  private isPostmaster(pid: number): boolean {
    try {
      const ppid = Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
      return readStat(ppid)?.comm !== 'postgres';
    } catch {
      return false;
    }
  }
}
