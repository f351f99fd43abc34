import type { Config } from './config.js';
import type { Db } from './db/knex.js';
import type { Logger } from './logger.js';
import { createServiceTokenQueries } from './db/queries/service-tokens.js';
import { createServiceTokenService } from './services/service-tokens.js';

/** The one wiring point: queries (SQL only) and services (domain rules) built once per process. */
export function createContext(deps: { config: Config; db: Db; logger: Logger }) {
  const { db } = deps;
  const queries = {
    serviceTokens: createServiceTokenQueries(db),
  };
  const services = {
    serviceTokens: createServiceTokenService(db, queries.serviceTokens),
  };
  return { ...deps, queries, services };
}
export type AppContext = ReturnType<typeof createContext>;
