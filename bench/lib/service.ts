import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * The real service in its own process, over HTTP on 127.0.0.1: the benchmark
 * never takes in-process shortcuts. Peak RSS comes from /proc (VmHWM).
 */
export type ServiceHandle = { base: string; pid: number; peakRssMb(): number; stop(): Promise<void> };

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * Compiles the service as `npm start` does (`npm run build`: tsc into dist/), so the
 * bench measures what runs in production: plain JS, without tsx's loader thread and
 * its heap. Once per bench process.
 */
let built = false;
export function buildService(root: string): void {
  if (built) return;
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  built = true;
}

/** The node options `npm start` runs the service with (package.json), so the bench measures the same process. */
function startFlags(root: string): string[] {
  const start = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
  const flags = /\bnode((?:\s+--\S+)*)\s+dist\/src\/main\.js/.exec(start);
  if (!flags) throw new Error(`package.json's start script does not run node dist/src/main.js: ${start}`);
  return flags[1]!.trim().split(/\s+/).filter(Boolean);
}

/**
 * `port` and `dataDir` may be given so a restarted service keeps its PUBLIC_URL
 * (SAML audiences and ACS URLs are built from it) and its PGlite data; a given
 * data dir is left in place on stop (its owner removes it).
 */
export async function startServiceProcess(opts: {
  root: string;
  env: Record<string, string>;
  adminToken: string;
  port?: number;
  dataDir?: string;
  nodeArgs?: string[];
}): Promise<ServiceHandle> {
  const port = opts.port ?? (await freePort());
  const ownDataDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'idp-bench-'));
  buildService(opts.root);
  const child: ChildProcess = spawn(process.execPath, [...startFlags(opts.root), ...(opts.nodeArgs ?? []), 'dist/src/main.js'], {
    cwd: opts.root,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      DATA_DIR: dataDir,
      ADMIN_TOKEN: opts.adminToken,
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      ...opts.env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let stopping = false;
  // a service that dies under load must say so, not show up later as ECONNREFUSED
  child.once('exit', (code, signal) => {
    if (!stopping) console.error(`bench: the service process ${child.pid} exited unexpectedly (code ${code}, signal ${signal})`);
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}`);
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error('service did not become ready in 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  const pid = child.pid!;
  return {
    base,
    pid,
    peakRssMb() {
      try {
        const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        return Math.round(kb / 1024);
      } catch {
        return 0;
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopping = true;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      if (ownDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
