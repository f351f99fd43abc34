import type { Knex } from 'knex';

/**
 * SSO sign-in matches the person to a SCIM link of the org (by externalId, then by
 * userName); scim_users was indexed only per directory, so both lookups scanned every
 * SCIM user of every org (150 ms at 100,000 users).
 */
const up: string[] = [
  `create index scim_users_org_external_id_idx on scim_users (org_id, external_id) where external_id is not null`,
  `create index scim_users_org_user_name_idx on scim_users (org_id, lower(user_name))`,
];

const down: string[] = [`drop index if exists scim_users_org_user_name_idx`, `drop index if exists scim_users_org_external_id_idx`];

export default {
  name: '0003_scim_users_org_lookup_indexes',
  async up(knex: Knex) {
    for (const sql of up) await knex.raw(sql);
  },
  async down(knex: Knex) {
    for (const sql of down) await knex.raw(sql);
  },
};
