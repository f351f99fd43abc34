import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Request-scoped lines carry `reqId` explicitly (access log, error handlers):
 * no AsyncLocalStorage, whose promise hooks on Node 20 make every await of every
 * request several times slower.
 */
export function createLogger(level: pino.LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'idp-provisioning' },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.password'], censor: '[redacted]' },
    },
    destination,
  );
}
