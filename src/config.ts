import path from 'node:path';
import { z } from 'zod';

/**
 * The only reader of process.env. Every setting is declared here with its
 * default and documentation; `loadConfig` fails fast with one line per bad key.
 */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const optionalString = z
  .string()
  .transform((v) => v.trim())
  .optional()
  .transform((v) => (v ? v : undefined));

const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: optionalString.refine((v) => v === undefined || /^postgres(ql)?:\/\//.test(v), {
    message: 'must be a postgres:// or postgresql:// URL',
  }),
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(500).default(10),
  DATA_DIR: z.string().min(1).default('./data'),
  ADMIN_TOKEN: optionalString.refine((v) => v === undefined || v.length >= 24, {
    message: 'must be at least 24 characters (use a random value, e.g. `openssl rand -hex 32`)',
  }),
  PUBLIC_URL: optionalString.refine((v) => v === undefined || URL.canParse(v), { message: 'must be an absolute URL' }),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i, 'must look like 100kb or 1mb').default('1mb'),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  SESSION_ABSOLUTE_TTL_HOURS: z.coerce.number().positive().max(24 * 365).default(24 * 7),
  SESSION_IDLE_TTL_MINUTES: z.coerce.number().positive().max(60 * 24 * 365).default(60 * 24),
  SECRET_KEY: optionalString.refine((v) => v === undefined || /^[0-9a-f]{64}$/i.test(v) || Buffer.from(v, 'base64').length === 32, {
    message: 'must be 32 bytes as 64 hex characters or base64 (e.g. `openssl rand -hex 32`)',
  }),
  TRUST_PROXY: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
});

export type Config = Readonly<{
  port: number;
  host: string;
  databaseUrl: string | undefined;
  databasePoolMax: number;
  dataDir: string;
  adminToken: string | undefined;
  publicUrl: string;
  logLevel: (typeof LOG_LEVELS)[number];
  bodyLimit: string;
  shutdownTimeoutMs: number;
  trustProxy: boolean;
  sessionAbsoluteTtlMs: number;
  sessionIdleTtlMs: number;
  /** raw SECRET_KEY (parse with parseSecretKey in src/auth/secret-box.ts); encrypts secrets at rest */
  secretKey: string | undefined;
}>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const e = parsed.data;
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    databasePoolMax: e.DATABASE_POOL_MAX,
    dataDir: path.resolve(e.DATA_DIR),
    adminToken: e.ADMIN_TOKEN,
    publicUrl,
    logLevel: e.LOG_LEVEL,
    bodyLimit: e.BODY_LIMIT,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    trustProxy: e.TRUST_PROXY,
    sessionAbsoluteTtlMs: e.SESSION_ABSOLUTE_TTL_HOURS * 3_600_000,
    sessionIdleTtlMs: e.SESSION_IDLE_TTL_MINUTES * 60_000,
    secretKey: e.SECRET_KEY,
  });
}

/** The effective configuration with secrets masked, for `cli config` and the startup log. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    databaseUrl: config.databaseUrl ? redactUrl(config.databaseUrl) : undefined,
    database: config.databaseUrl ? 'postgresql' : `pglite (${path.join(config.dataDir, 'pglite')})`,
    adminToken: config.adminToken ? '(set, hidden)' : undefined,
    secretKey: config.secretKey ? '(set, hidden)' : undefined,
  };
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable)';
  }
}
