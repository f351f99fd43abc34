import type { Exec } from '../lib/engine.js';
import type { Directory } from './context.js';
import { seedDirectoryUsers } from './seed.js';

/**
 * An org shaped for access decisions, seeded set-based: 20 custom roles, teams
 * (every 5th with a team role), projects (10% public, 20% internal, the rest private),
 * and grants of every kind: 2 team grants, 1 custom-role grant and (2 in 3) a built-in
 * role grant per project, a direct grant for every 3rd user, and 100 outside
 * collaborators (users who are not members) with a direct grant.
 * Users: 1% admins, 20% viewers, the rest members, 2% suspended; every user in 2 teams,
 * every 5th holds a custom role.
 */
export type AccessShape = { teams: number; projects: number };
const ROLES = 20;
const EXTERNALS = 100;

export async function seedAccessStructure(q: Exec, dir: Directory, prefix: string, shape: AccessShape): Promise<void> {
  const org = dir.orgId;
  await q(`insert into roles (org_id, key, name, permissions) select $1, 'role-' || g, 'Role ' || g, '{}' from generate_series(0, $2::int - 1) g`, [org, ROLES]);
  await q(`insert into teams (org_id, name) select $1, 'team-' || g from generate_series(0, $2::int - 1) g`, [org, shape.teams]);
  await q(
    `insert into team_roles (org_id, team_id, role_id)
     select $1, t.id, r.id from teams t join roles r on r.org_id = $1 and r.key = 'role-' || (substring(t.name from 6)::int % $2::int)
      where t.org_id = $1 and substring(t.name from 6)::int % 5 = 0`,
    [org, ROLES],
  );
  await q(
    `insert into projects (org_id, name, visibility)
     select $1, 'project-' || g, case when g % 10 = 0 then 'public' when g % 10 in (1, 2) then 'internal' else 'private' end
       from generate_series(0, $2::int - 1) g`,
    [org, shape.projects],
  );
  const pp = `pp as (select id, substring(name from 9)::int as n from projects where org_id = $1)`;
  await q(
    `with ${pp}, tt as (select id, substring(name from 6)::int as n from teams where org_id = $1)
     insert into project_grants (org_id, project_id, subject_type, team_id, level)
     select $1, pp.id, 'team', tt.id, (array['read','write','admin'])[1 + (pp.n + k) % 3]
       from pp cross join generate_series(0, 1) k join tt on tt.n = (pp.n * 7 + k * 13) % $2::int
     on conflict do nothing`,
    [org, shape.teams],
  );
  await q(
    `with ${pp}
     insert into project_grants (org_id, project_id, subject_type, role_id, level)
     select $1, pp.id, 'role', r.id, (array['read','write'])[1 + pp.n % 2]
       from pp join roles r on r.org_id = $1 and r.key = 'role-' || (pp.n % $2::int)`,
    [org, ROLES],
  );
  await q(
    `with ${pp}
     insert into project_grants (org_id, project_id, subject_type, builtin_role, level)
     select $1, pp.id, 'role', case when pp.n % 3 = 0 then 'viewer' else 'member' end, case when pp.n % 3 = 0 then 'read' else 'write' end
       from pp where pp.n % 3 <> 2`,
    [org],
  );
  await q(
    `insert into users (email, name) select $1::text || '-ext-' || g || '@bench.example', g::text from generate_series(0, $2::int - 1) g`,
    [prefix, EXTERNALS],
  );
  await q(
    `with ${pp}
     insert into project_grants (org_id, project_id, subject_type, user_id, level)
     select $1, pp.id, 'user', u.id, 'read'
       from pp join users u on lower(u.email) = lower($2::text || '-ext-' || ((pp.n / 10) % $3::int) || '@bench.example')
      where pp.n % 10 = 1`,
    [org, prefix, EXTERNALS],
  );
}

/** Users `from..to` of the access org: the SCIM rows, then roles, status, teams, custom roles and direct grants. */
export async function seedAccessUsers(q: Exec, dir: Directory, prefix: string, shape: AccessShape, from: number, to: number): Promise<void> {
  await seedDirectoryUsers(q, dir, prefix, from, to);
  const org = dir.orgId;
  const s = `s as (select g, u.id as user_id from generate_series($2::int, $3::int) g
                    join users u on lower(u.email) = lower($4::text || '-' || g || '@bench.example'))`;
  const range = [org, from, to, prefix];
  await q(
    `with ${s}
     update memberships m
        set role = case when s.g % 100 = 1 then 'admin' when s.g % 5 = 2 then 'viewer' else 'member' end,
            status = case when s.g % 50 = 3 then 'suspended' else 'active' end
       from s where m.org_id = $1 and m.user_id = s.user_id`,
    range,
  );
  await q(
    `with ${s}, tt as (select id, substring(name from 6)::int as n from teams where org_id = $1)
     insert into team_members (org_id, team_id, user_id)
     select $1, tt.id, s.user_id from s join tt on tt.n = s.g % $5::int or tt.n = (s.g * 7 + 3) % $5::int
     on conflict do nothing`,
    [...range, shape.teams],
  );
  await q(
    `with ${s}
     insert into membership_roles (org_id, user_id, role_id)
     select $1, s.user_id, r.id from s join roles r on r.org_id = $1 and r.key = 'role-' || (s.g % 20) where s.g % 5 = 0`,
    range,
  );
  await q(
    `with ${s}, pp as (select id, substring(name from 9)::int as n from projects where org_id = $1)
     insert into project_grants (org_id, project_id, subject_type, user_id, level)
     select $1, pp.id, 'user', s.user_id, (array['read','write','admin'])[1 + s.g % 3]
       from s join pp on pp.n = (s.g * 7) % $5::int
      where s.g % 3 = 0
     on conflict do nothing`,
    [...range, shape.projects],
  );
}

/** Ids to ask about: members (n in 1..users) and the outside collaborators, plus every project. */
export async function accessSubjects(q: Exec, orgId: string, prefix: string, users: number) {
  const members = await q<{ id: string }>(
    `select u.id from generate_series(1, $2::int) g join users u on lower(u.email) = lower($1::text || '-' || g || '@bench.example') order by g`,
    [prefix, users],
  );
  const externals = await q<{ id: string }>(`select id from users where email like $1 order by id`, [`${prefix}-ext-%`]);
  const projects = await q<{ id: string }>(`select id from projects where org_id = $1 order by id`, [orgId]);
  return { users: members.map((r) => r.id), externals: externals.map((r) => r.id), projects: projects.map((r) => r.id) };
}
