import { AsyncLocalStorage } from 'node:async_hooks';
import pino from 'pino';

/** Per-request context; the logger mixes the request id into every line logged while a request is in flight. */
export type RequestContext = { requestId: string };
export const requestContext = new AsyncLocalStorage<RequestContext>();

export type Logger = pino.Logger;

export function createLogger(level: pino.LevelWithSilent, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'idp-provisioning' },
      mixin: () => {
        const ctx = requestContext.getStore();
        return ctx ? { reqId: ctx.requestId } : {};
      },
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.token', '*.password'], censor: '[redacted]' },
    },
    destination,
  );
}
