import type { Knex } from 'knex';

/**
 * Indexes for teams, projects and the access decision that 0001 left out:
 * - grants of one project (listing them, deleting a project, cascades) had only
 *   partial per-subject indexes, usable only when the subject is known;
 * - projects listed by name per org;
 * - team_members / team_roles looked up by team (cascades, counts) are covered by
 *   their primary keys, roles held by a team too.
 */
const up: string[] = [
  `create index project_grants_project_idx on project_grants (org_id, project_id, id)`,
  `create index projects_org_name_idx on projects (org_id, lower(name), id)`,
];

const down: string[] = [`drop index if exists projects_org_name_idx`, `drop index if exists project_grants_project_idx`];

export default {
  name: '0002_project_access_indexes',
  async up(knex: Knex) {
    for (const sql of up) await knex.raw(sql);
  },
  async down(knex: Knex) {
    for (const sql of down) await knex.raw(sql);
  },
};
