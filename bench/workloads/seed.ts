import type { Exec } from '../lib/engine.js';
import type { Directory } from './context.js';

/**
 * Set-based seeding (one statement per table, generate_series): the rows a SCIM
 * create writes (users, memberships, scim_users) for users `from..to` of a directory.
 * Emails are `<prefix>-<n>@bench.example`; the user's name holds n so later
 * statements can join on it.
 */
export async function seedDirectoryUsers(q: Exec, dir: Directory, prefix: string, from: number, to: number): Promise<void> {
  if (to < from) return;
  await q(
    `with u as (
       insert into users (email, name)
       select $1::text || '-' || g || '@bench.example', g::text from generate_series($2::int, $3::int) g
       returning id, email
     ),
     m as (
       insert into memberships (org_id, user_id, role, status, source)
       select $4::uuid, u.id, 'member', 'active', 'scim' from u
       returning user_id
     )
     insert into scim_users (org_id, directory_id, user_id, user_name, active, attributes)
     select $4::uuid, $5::uuid, u.id, u.email, true,
            jsonb_build_object('userName', u.email, 'active', true,
                               'emails', jsonb_build_array(jsonb_build_object('value', u.email, 'primary', true, 'type', 'work')))
       from u`,
    [prefix, from, to, dir.orgId, dir.id],
  );
}

/** The directory's users in creation order: SCIM ids and global user ids. */
export async function directoryUsers(q: Exec, dir: Directory, limit: number): Promise<{ id: string; user_id: string; user_name: string }[]> {
  return q(`select id, user_id, user_name from scim_users where directory_id = $1 order by created_at, id limit $2`, [dir.id, limit]);
}

/** Planner statistics after a bulk load (autovacuum would get there too, later). */
export async function analyze(q: Exec): Promise<void> {
  for (const table of ['users', 'memberships', 'scim_users', 'teams', 'team_members', 'projects', 'project_grants', 'membership_roles', 'team_roles', 'roles']) {
    await q(`analyze ${table}`);
  }
}
