import type { Knex } from 'knex';
import { AUDIT_COLUMNS } from '../../audit/record.js';
import type { AuditActor } from '../../auth/principal.js';
import { pgArray, prepared, type Queryable, type SqlPart } from '../knex.js';
import type { GroupRoleMapping } from './scim-directories.js';
import { directoryResourceQueries } from './directory-resources.js';

export type ScimGroupRow = {
  id: string;
  org_id: string;
  directory_id: string;
  team_id: string;
  display_name: string;
  external_id: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
};

export type GroupMemberRow = { team_id: string; id: string; user_name: string; display_name: string | null };

/** scim_groups columns, listed: the statements below are prepared (see `prepared`). */
const COLUMNS = 'id, org_id, directory_id, team_id, display_name, external_id, version, created_at, updated_at';

/** Team names are at most 256 characters; SCIM displayNames may be longer (the full name stays on scim_groups). */
export const teamNameOf = (displayName: string) => displayName.slice(0, 256);

/**
 * The SCIM ids that can name a user: canonical UUIDs, lowercased, once each. Anything
 * else never equals a `scim_users.id`, so it is dropped here and the SQL joins
 * `unnest(?::uuid[])` to scim_users by primary key: one probe per id (comparing
 * `su.id::text` scanned the directory's users, and `directory_id = ? and id = any(?)`
 * let the planner AND a bitmap of the whole directory with them, 5× slower).
 */
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const scimIds = (ids: readonly string[]) => [...new Set(ids.map((i) => i.toLowerCase()).filter((i) => UUID_RE.test(i)))];

const BUILTIN_RANK: Record<string, number> = { viewer: 0, member: 1, admin: 2 };

/**
 * SQL for SCIM groups. Membership changes are set-based (one statement for any
 * number of members: `unnest` of the SCIM ids, `= any(...)`), so a 10,000-member
 * group costs a handful of statements, and concurrent PATCHes adding or removing
 * different members never overwrite each other.
 */
export function createScimGroupQueries(db: Queryable) {
  return {
    ...directoryResourceQueries<ScimGroupRow>(db, 'scim_groups', 'sg'),
    /**
     * Creates the directory-owned team and its scim_groups link in one statement (ids
     * chosen by the caller, so an audit event given as `audit` can name them).
     */
    async insert(
      ids: { teamId: string; groupId: string },
      values: { orgId: string; directoryId: string; displayName: string; externalId: string | null },
      audit: SqlPart | undefined,
      q: Queryable = db,
    ): Promise<ScimGroupRow> {
      const res = await prepared(
        q,
        `with team as (
           insert into teams (id, org_id, name, scim_directory_id) values (?, ?, ?, ?) returning id
         ), inserted as (
           insert into scim_groups (id, org_id, directory_id, team_id, display_name, external_id)
           select ?, ?, ?, id, ?, ? from team returning ${COLUMNS}
         )${audit ? `, audit as (${audit.sql})` : ''}
         select ${COLUMNS} from inserted`,
        [
          ids.teamId,
          values.orgId,
          teamNameOf(values.displayName),
          values.directoryId,
          ids.groupId,
          values.orgId,
          values.directoryId,
          values.displayName,
          values.externalId,
          ...(audit?.bindings ?? []),
        ],
      );
      return res.rows[0] as ScimGroupRow;
    },
    /** Renames the team when the displayName changes, then bumps the version like `touch`. */
    async update(group: ScimGroupRow, values: { display_name: string; external_id: string | null }, q: Queryable = db): Promise<ScimGroupRow> {
      if (values.display_name !== group.display_name) {
        await q('teams').where({ org_id: group.org_id, id: group.team_id }).update({ name: teamNameOf(values.display_name), updated_at: q.fn.now() });
      }
      return this.touch(group, values, undefined, q);
    },
    /**
     * Bumps version/lastModified (and sets attributes when given), with the audit
     * event in the same statement when given; the caller holds the row lock.
     */
    async touch(
      group: ScimGroupRow,
      values: Partial<{ display_name: string; external_id: string | null }> = {},
      audit: SqlPart | undefined = undefined,
      q: Queryable = db,
    ): Promise<ScimGroupRow> {
      const sets = Object.entries(values).map(([column]) => `${column} = ?`);
      const res = await prepared(
        q,
        `with updated as (
           update scim_groups set ${[...sets, 'version = version + 1', 'updated_at = now()'].join(', ')} where id = ? returning ${COLUMNS}
         )${audit ? `, audit as (${audit.sql})` : ''}
         select ${COLUMNS} from updated`,
        [...(Object.values(values) as Knex.RawBinding[]), group.id, ...(audit?.bindings ?? [])],
      );
      return res.rows[0] as ScimGroupRow;
    },
    /** Deleting the team cascades to scim_groups, team_members and team_roles. */
    async remove(group: ScimGroupRow, q: Queryable = db): Promise<void> {
      await q('teams').where({ org_id: group.org_id, id: group.team_id }).delete();
    },

    /**
     * A PATCH that only adds members, or only removes given members, as ONE statement (no
     * BEGIN/COMMIT): check If-Match (`versions` as `ifMatchVersions` gives them, null = any),
     * add or remove, bump the version and write the `scim_group.update`
     * event built in SQL (the shape `finishUpdate` gives it). An add writes nothing at all
     * when one of the ids is not a user of this directory; `missing` lists those ids. The
     * caller passes only canonical UUIDs (anything else falls back to the transaction path,
     * which refuses it).
     *
     * No row lock: a statement that waited for one would change the members as its snapshot,
     * taken before the wait, saw them (a remove missed the add it waited for). The members
     * change only when the version bump applies to the row the snapshot read; `raced` says
     * another writer got there first and nothing was written (run it again).
     */
    async patchMembers(
      group: { directoryId: string; orgId: string; id: string },
      change: { kind: 'add' | 'remove'; ids: string[]; versions: string[] | null },
      actor: AuditActor,
      q: Queryable = db,
    ): Promise<{ found: boolean; version: number; matched: boolean; raced: boolean; missing: string[] }> {
      const ids = pgArray(scimIds(change.ids));
      // `missing` comes before the version bump (an unknown id stops it), `changed` after it
      // (members change only when the bump applied)
      const missingSql =
        change.kind === 'add'
          ? `known as (
               select su.id, su.user_id from unnest(?::uuid[]) as x(id) join scim_users su on su.id = x.id
                where su.directory_id = ? and su.org_id = ?
             ), missing as (
               select x.id from unnest(?::uuid[]) as x(id) where not exists (select 1 from known k where k.id = x.id)
             )`
          : `missing as (select null::uuid as id where false)`;
      const changedSql =
        change.kind === 'add'
          ? `changed as (
               insert into team_members (org_id, team_id, user_id)
               select m.org_id, ok.team_id, m.user_id from ok cross join known k join memberships m on m.org_id = ok.org_id and m.user_id = k.user_id
                where exists (select 1 from updated)
               on conflict (team_id, user_id) do nothing
               returning user_id
             )`
          : `changed as (
               delete from team_members tm using ok
                where tm.org_id = ok.org_id and tm.team_id = ok.team_id and exists (select 1 from updated)
                  and tm.user_id = any(array(select su.user_id from unnest(?::uuid[]) as x(id) join scim_users su on su.id = x.id where su.directory_id = ?))
               returning tm.user_id
             )`;
      const missingBindings = change.kind === 'add' ? [ids, group.directoryId, group.orgId, ids] : [];
      const changedBindings = change.kind === 'add' ? [] : [ids, group.directoryId];
      const [changedKey, otherKey] = change.kind === 'add' ? ['membersAdded', 'membersRemoved'] : ['membersRemoved', 'membersAdded'];
      const view = (version: string) =>
        `'displayName', ok.display_name, 'externalId', ok.external_id, 'teamId', ok.team_id, 'version', ${version}`;
      const versions = change.versions === null ? null : pgArray(change.versions);
      const res = await prepared(
        q,
        `with g as (
           select id, org_id, team_id, display_name, external_id, version from scim_groups where directory_id = ? and id = ?
         ), ok as (
           select * from g where ?::text[] is null or g.version::text = any(?::text[])
         ), ${missingSql}, updated as (
           update scim_groups sg set version = sg.version + 1, updated_at = now()
             from ok where sg.id = ok.id and sg.version = ok.version and not exists (select 1 from missing)
           returning sg.id, sg.version
         ), ${changedSql}, audit as (
           insert into audit_events (${AUDIT_COLUMNS})
           select ok.org_id, ?, ?, 'scim_group.update', 'scim_group', ok.id::text,
                  jsonb_build_object(${view('ok.version')}),
                  jsonb_build_object(${view('u.version')},
                    '${changedKey}', jsonb_build_object('count', (select count(*) from changed),
                      'userIds', coalesce((select jsonb_agg(c.user_id) from (select user_id from changed limit 100) c), '[]'::jsonb)),
                    '${otherKey}', jsonb_build_object('count', 0, 'userIds', '[]'::jsonb)),
                  ?
             from updated u join ok on ok.id = u.id
         )
         select exists (select 1 from g) as found,
                coalesce((select version from updated), (select version from g)) as version,
                exists (select 1 from ok) as matched,
                exists (select 1 from ok) and not exists (select 1 from missing) and not exists (select 1 from updated) as raced,
                coalesce((select array_agg(id::text) from missing), '{}') as missing`,
        [group.directoryId, group.id, versions, versions, ...missingBindings, ...changedBindings, actor.type, actor.id, actor.requestId ?? null],
      );
      return res.rows[0] as { found: boolean; version: number; matched: boolean; raced: boolean; missing: string[] };
    },

    // ---------- members (SCIM ids are scim_users.id of the same directory) ----------
    /**
     * Adds members in one statement that also reports the SCIM ids among `ids` that
     * are not users of this directory (or not UUIDs). Known ones are added either
     * way: the caller refuses the request, and rolls back, when `unknown` is not empty.
     * `added` are the global user ids actually added.
     */
    async addMembers(group: ScimGroupRow, ids: string[], q: Queryable = db): Promise<{ added: string[]; unknown: string[] }> {
      if (!ids.length) return { added: [], unknown: [] };
      const candidates = pgArray(scimIds(ids));
      const res = await prepared(
        q,
        `with known as (
           select su.id, su.user_id from unnest(?::uuid[]) as x(id) join scim_users su on su.id = x.id
            where su.directory_id = ? and su.org_id = ?
         ), added as (
           insert into team_members (org_id, team_id, user_id)
           select m.org_id, ?, m.user_id from known k join memberships m on m.org_id = ? and m.user_id = k.user_id
           on conflict (team_id, user_id) do nothing
           returning user_id
         )
         select coalesce((select array_agg(user_id::text) from added), '{}') as added,
                coalesce((select array_agg(x.id::text) from unnest(?::uuid[]) as x(id)
                           where not exists (select 1 from known k where k.id = x.id)), '{}') as missing`,
        [candidates, group.directory_id, group.org_id, group.team_id, group.org_id, candidates],
      );
      const row = res.rows[0] as { added: string[]; missing: string[] };
      const missing = new Set(row.missing);
      return { added: row.added, unknown: ids.filter((id) => !UUID_RE.test(id) || missing.has(id.toLowerCase())) };
    },
    /**
     * Removes the given members (all members when `ids` is undefined); returns the global user ids removed.
     * `= any(array(...))` makes the delete probe the (team_id, user_id) key for each member even
     * when planner statistics are stale right after a bulk load (an `in (...)` join then walked the whole team).
     */
    async removeMembers(group: ScimGroupRow, ids: string[] | undefined, q: Queryable = db): Promise<string[]> {
      if (ids && !ids.length) return [];
      const res = await prepared(
        q,
        `delete from team_members tm
          where tm.org_id = ? and tm.team_id = ?
            ${ids ? 'and tm.user_id = any(array(select su.user_id from unnest(?::uuid[]) as x(id) join scim_users su on su.id = x.id where su.directory_id = ?))' : ''}
          returning tm.user_id`,
        ids ? [group.org_id, group.team_id, pgArray(scimIds(ids)), group.directory_id] : [group.org_id, group.team_id],
      );
      return (res.rows as { user_id: string }[]).map((r) => r.user_id);
    },
    /** Makes the member set exactly `ids`: one delete of the others, one insert of the missing. */
    async replaceMembers(group: ScimGroupRow, ids: string[], q: Queryable = db): Promise<{ added: string[]; removed: string[]; unknown: string[] }> {
      const lowered = ids.map((i) => i.toLowerCase());
      const res = await q.raw(
        `delete from team_members tm
          where tm.org_id = ? and tm.team_id = ?
            and tm.user_id not in (select su.user_id from unnest(?::uuid[]) as x(id) join scim_users su on su.id = x.id where su.directory_id = ?)
          returning tm.user_id`,
        [group.org_id, group.team_id, pgArray(scimIds(lowered)), group.directory_id],
      );
      const removed = (res.rows as { user_id: string }[]).map((r) => r.user_id);
      const { added, unknown } = await this.addMembers(group, lowered, q);
      return { added, removed, unknown };
    },
    async membersOf(directoryId: string, orgId: string, teamIds: string[], q: Queryable = db): Promise<GroupMemberRow[]> {
      if (!teamIds.length) return [];
      const res = await q.raw(
        `select tm.team_id, su.id, su.user_name, su.attributes->>'displayName' as display_name
           from team_members tm join scim_users su on su.user_id = tm.user_id and su.directory_id = ?
          where tm.org_id = ? and tm.team_id = any(?::uuid[])
          order by tm.created_at, su.id`,
        [directoryId, orgId, pgArray(teamIds)],
      );
      return res.rows as GroupMemberRow[];
    },

    // ---------- group → role mappings ----------
    /**
     * Custom-role mappings become team roles of the mapped teams (a team's roles
     * apply to all its members), so the access rules need nothing SCIM-specific.
     * One statement: drops team roles of this directory's teams that no mapping asks
     * for, then adds the missing ones.
     */
    async syncTeamRoles(orgId: string, directoryId: string, mappings: GroupRoleMapping[], q: Queryable = db): Promise<void> {
      await q.raw(
        `with m as (select * from jsonb_to_recordset(?::jsonb) as m("group" text, role text)),
         desired as (
           select distinct sg.team_id, r.id as role_id
             from scim_groups sg
             join m on lower(sg.display_name) = lower(m."group") or sg.external_id = m."group"
             join roles r on r.org_id = sg.org_id and r.key = m.role
            where sg.directory_id = ? and sg.org_id = ?
         ),
         dropped as (
           delete from team_roles tr using teams t
            where t.id = tr.team_id and t.org_id = tr.org_id and t.scim_directory_id = ? and tr.org_id = ?
              and not exists (select 1 from desired d where d.team_id = tr.team_id and d.role_id = tr.role_id)
           returning 1
         )
         insert into team_roles (org_id, team_id, role_id)
         select ?, d.team_id, d.role_id from desired d
         on conflict (team_id, role_id) do nothing`,
        [JSON.stringify(mappings), directoryId, orgId, directoryId, orgId, orgId],
      );
    },
    /**
     * Built-in-role mappings: a scim membership gets the highest built-in role among
     * the mapped groups its user is in, or the directory's default role when none.
     * Memberships not created by SCIM and owners are left alone. `userIds`
     * undefined means every user of the directory.
     */
    async recomputeRoles(
      orgId: string,
      directoryId: string,
      defaultRole: string,
      mappings: GroupRoleMapping[],
      userIds: string[] | undefined,
      q: Queryable = db,
    ): Promise<void> {
      if (userIds && !userIds.length) return;
      const builtin = mappings.filter((m) => m.role in BUILTIN_RANK).map((m) => ({ ...m, rank: BUILTIN_RANK[m.role] }));
      await q.raw(
        `with m as (select * from jsonb_to_recordset(?::jsonb) as m("group" text, role text, rank int)),
         mapped as (
           select sg.team_id, m.role, m.rank from scim_groups sg
             join m on lower(sg.display_name) = lower(m."group") or sg.external_id = m."group"
            where sg.directory_id = ? and sg.org_id = ?
         ),
         targets as (
           select su.user_id from scim_users su where su.directory_id = ? ${userIds ? 'and su.user_id = any(?::uuid[])' : ''}
         ),
         best as (
           select t.user_id, coalesce((
             select mp.role from team_members tm join mapped mp on mp.team_id = tm.team_id
              where tm.org_id = ? and tm.user_id = t.user_id order by mp.rank desc limit 1
           ), ?) as role
           from targets t
         )
         update memberships mem set role = best.role, updated_at = now()
           from best
          where mem.org_id = ? and mem.user_id = best.user_id and mem.source = 'scim' and mem.role <> 'owner' and mem.role <> best.role`,
        [
          JSON.stringify(builtin),
          directoryId,
          orgId,
          directoryId,
          ...(userIds ? [pgArray(userIds)] : []),
          orgId,
          defaultRole,
          orgId,
        ],
      );
    },
  };
}
export type ScimGroupQueries = ReturnType<typeof createScimGroupQueries>;
