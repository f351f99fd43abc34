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
  DATABASE_PREPARED_STATEMENTS: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
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
  MFA_TOTP_ISSUER: z.string().trim().min(1).max(64).default('Identity Service'),
  MFA_MAX_FAILURES: z.coerce.number().int().min(1).max(100).default(5),
  MFA_LOCKOUT_MINUTES: z.coerce.number().positive().max(60 * 24).default(15),
  DNS_SERVERS: optionalString.refine(
    (v) => v === undefined || v.split(',').every((s) => /^(\[[0-9a-f:.]+\]|[0-9.]+|[0-9a-f:]+)(:\d{1,5})?$/i.test(s.trim())),
    { message: 'must be a comma-separated list of IP[:port] (e.g. 127.0.0.1:5353,[::1]:53)' },
  ),
  SAML_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(600).default(60),
  SAML_MAX_RESPONSE_BYTES: z.coerce.number().int().min(64 * 1024).max(50 * 1024 * 1024).default(2 * 1024 * 1024),
  SSO_CODE_TTL_SECONDS: z.coerce.number().int().min(5).max(600).default(60),
  SCIM_TOKEN_CACHE_SECONDS: z.coerce.number().min(0).max(60).default(2),
  SERVICE_TOKEN_CACHE_SECONDS: z.coerce.number().min(0).max(60).default(2),
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
  /** hot statements as named prepared statements (PostgreSQL); off behind poolers that cannot keep them */
  databasePreparedStatements: boolean;
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
  /** DNS servers for domain verification lookups (`ip` or `ip:port`); undefined = the system resolver */
  dnsServers: string[] | undefined;
  /** tolerated clock difference with SAML IdPs */
  samlClockSkewMs: number;
  /** largest accepted SAML POST body (urlencoded, base64): responses with many group claims are big */
  samlMaxResponseBytes: number;
  /** lifetime of the one-time code handed to the product after an SSO sign-in */
  ssoCodeTtlMs: number;
  /** how long a SCIM token lookup is reused by this process (0: every request reads the database) */
  scimTokenCacheMs: number;
  serviceTokenCacheMs: number;
  /** issuer shown by authenticator apps (otpauth:// URI) */
  mfaTotpIssuer: string;
  /** failed MFA codes within the lockout window that lock verification */
  mfaMaxFailures: number;
  /** the lockout window and the lock's length */
  mfaLockoutMs: number;
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
    databasePreparedStatements: e.DATABASE_PREPARED_STATEMENTS,
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
    dnsServers: e.DNS_SERVERS?.split(',').map((s) => s.trim()),
    samlClockSkewMs: e.SAML_CLOCK_SKEW_SECONDS * 1000,
    samlMaxResponseBytes: e.SAML_MAX_RESPONSE_BYTES,
    ssoCodeTtlMs: e.SSO_CODE_TTL_SECONDS * 1000,
    scimTokenCacheMs: e.SCIM_TOKEN_CACHE_SECONDS * 1000,
    serviceTokenCacheMs: e.SERVICE_TOKEN_CACHE_SECONDS * 1000,
    mfaTotpIssuer: e.MFA_TOTP_ISSUER,
    mfaMaxFailures: e.MFA_MAX_FAILURES,
    mfaLockoutMs: e.MFA_LOCKOUT_MINUTES * 60_000,
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
