import type { Knex } from 'knex';
import init from '../../migrations/0001_init.js';
import projectAccessIndexes from '../../migrations/0002_project_access_indexes.js';
import scimUsersOrgLookupIndexes from '../../migrations/0003_scim_users_org_lookup_indexes.js';

type Migration = { name: string; up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void> };

/** Append-only list; never edit a migration once it has shipped. */
const migrations: Migration[] = [
  init,
  projectAccessIndexes,
  scimUsersOrgLookupIndexes,
];

/** A knex migrationSource over imported modules: works under tsx, the test runner and a compiled build alike. */
export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => migrations,
  getMigrationName: (m) => m.name,
  getMigration: async (m) => m,
};
