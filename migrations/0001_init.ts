import type { Knex } from 'knex';

/**
 * The whole domain model of SPEC.md in one migration.
 *
 * Rules: one SQL statement per entry (PGlite rejects multi-statement strings),
 * every tenant-owned table carries org_id and composite foreign keys keep rows of
 * one org from pointing at another org's rows. Minimum server: PostgreSQL 13
 * (gen_random_uuid() is built in from 13).
 */

const BUILTIN_ROLE = `('owner','admin','member','viewer')`;

const up: string[] = [
  // ---------- global accounts ----------
  `create table users (
    id uuid primary key default gen_random_uuid(),
    email text not null check (email = btrim(email) and email like '%_@_%' and length(email) <= 320),
    name text check (length(name) <= 256),
    avatar_url text check (length(avatar_url) <= 2048),
    status text not null default 'active' check (status in ('active','suspended')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  )`,
  `create unique index users_email_lower_key on users (lower(email))`,

  `create table service_tokens (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(name) between 1 and 128),
    token_hash text not null check (length(token_hash) = 64),
    created_at timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at timestamptz
  )`,
  `create unique index service_tokens_token_hash_key on service_tokens (token_hash)`,

  // MFA: TOTP secret (encrypted at rest), recovery codes (hashed)
  `create table user_totp (
    user_id uuid primary key references users(id) on delete cascade,
    secret_encrypted text not null,
    confirmed_at timestamptz,
    last_used_step bigint,
    created_at timestamptz not null default now()
  )`,
  `create table user_recovery_codes (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references users(id) on delete cascade,
    code_hash text not null,
    used_at timestamptz,
    created_at timestamptz not null default now()
  )`,
  `create unique index user_recovery_codes_user_hash_key on user_recovery_codes (user_id, code_hash)`,

  // Counters for lockouts and rate limits; kept in the database so every instance sees them.
  `create table rate_limits (
    key text primary key,
    hits integer not null default 0 check (hits >= 0),
    window_started_at timestamptz not null default now(),
    locked_until timestamptz
  )`,

  // ---------- organizations ----------
  `create table organizations (
    id uuid primary key default gen_random_uuid(),
    slug text not null check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$' and slug !~ '-$'),
    name text not null check (length(name) between 1 and 256),
    visibility text not null default 'private' check (visibility in ('private','public')),
    mfa_required boolean not null default false,
    mfa_grace_period_hours integer check (mfa_grace_period_hours >= 0),
    mfa_required_since timestamptz,
    sso_required boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
  )`,
  `create unique index organizations_slug_key on organizations (lower(slug))`,

  `create table roles (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations(id) on delete cascade,
    key text not null check (key ~ '^[a-z][a-z0-9_.:-]{0,63}$' and key not in ${BUILTIN_ROLE}),
    name text not null check (length(name) between 1 and 256),
    description text,
    permissions text[] not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (org_id, id)
  )`,
  `create unique index roles_org_key_key on roles (org_id, key)`,

  `create table memberships (
    org_id uuid not null references organizations(id) on delete cascade,
    user_id uuid not null references users(id) on delete cascade,
    role text not null check (role in ${BUILTIN_ROLE}),
    status text not null default 'active' check (status in ('active','suspended')),
    source text not null default 'manual' check (source in ('manual','invite','scim','sso_jit','domain_capture')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (org_id, user_id)
  )`,
  `create index memberships_user_idx on memberships (user_id)`,
  `create index memberships_owners_idx on memberships (org_id) where role = 'owner' and status = 'active'`,

  `create table membership_roles (
    org_id uuid not null,
    user_id uuid not null,
    role_id uuid not null,
    primary key (org_id, user_id, role_id),
    foreign key (org_id, user_id) references memberships(org_id, user_id) on delete cascade,
    foreign key (org_id, role_id) references roles(org_id, id) on delete cascade
  )`,
  `create index membership_roles_role_idx on membership_roles (org_id, role_id)`,

  // ---------- SCIM directories (before teams: a team may be owned by one) ----------
  `create table scim_directories (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations(id) on delete cascade,
    name text not null check (length(name) between 1 and 256),
    token_hash text not null check (length(token_hash) = 64),
    token_rotated_at timestamptz not null default now(),
    default_role text not null default 'member' check (default_role in ${BUILTIN_ROLE} and default_role <> 'owner'),
    group_role_mappings jsonb not null default '[]',
    enabled boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (org_id, id)
  )`,
  `create unique index scim_directories_token_hash_key on scim_directories (token_hash)`,

  // ---------- teams ----------
  `create table teams (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations(id) on delete cascade,
    name text not null check (length(name) between 1 and 256),
    description text,
    scim_directory_id uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (org_id, id),
    foreign key (org_id, scim_directory_id) references scim_directories(org_id, id) on delete cascade
  )`,
  `create index teams_org_name_idx on teams (org_id, lower(name))`,

  `create table team_members (
    org_id uuid not null,
    team_id uuid not null,
    user_id uuid not null,
    created_at timestamptz not null default now(),
    primary key (team_id, user_id),
    foreign key (org_id, team_id) references teams(org_id, id) on delete cascade,
    foreign key (org_id, user_id) references memberships(org_id, user_id) on delete cascade
  )`,
  `create index team_members_user_idx on team_members (org_id, user_id)`,

  `create table team_roles (
    org_id uuid not null,
    team_id uuid not null,
    role_id uuid not null,
    primary key (team_id, role_id),
    foreign key (org_id, team_id) references teams(org_id, id) on delete cascade,
    foreign key (org_id, role_id) references roles(org_id, id) on delete cascade
  )`,
  `create index team_roles_role_idx on team_roles (org_id, role_id)`,

  // ---------- projects and grants ----------
  `create table projects (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations(id), -- no cascade: an org with projects cannot be deleted
    name text not null check (length(name) between 1 and 256),
    description text,
    visibility text not null default 'private' check (visibility in ('private','internal','public')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (org_id, id)
  )`,

  // A grant names exactly one subject: a user (member or outside collaborator),
  // a team of the org, a custom role of the org, or a built-in role.
  `create table project_grants (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    project_id uuid not null,
    subject_type text not null check (subject_type in ('user','team','role')),
    user_id uuid references users(id) on delete cascade,
    team_id uuid,
    role_id uuid,
    builtin_role text check (builtin_role in ${BUILTIN_ROLE}),
    level text not null check (level in ('read','write','admin')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    foreign key (org_id, project_id) references projects(org_id, id) on delete cascade,
    foreign key (org_id, team_id) references teams(org_id, id) on delete cascade,
    foreign key (org_id, role_id) references roles(org_id, id) on delete cascade,
    check (
      (subject_type = 'user' and user_id is not null and team_id is null and role_id is null and builtin_role is null) or
      (subject_type = 'team' and team_id is not null and user_id is null and role_id is null and builtin_role is null) or
      (subject_type = 'role' and user_id is null and team_id is null and ((role_id is null) <> (builtin_role is null)))
    )
  )`,
  `create unique index project_grants_user_key on project_grants (project_id, user_id) where user_id is not null`,
  `create unique index project_grants_team_key on project_grants (project_id, team_id) where team_id is not null`,
  `create unique index project_grants_role_key on project_grants (project_id, role_id) where role_id is not null`,
  `create unique index project_grants_builtin_key on project_grants (project_id, builtin_role) where builtin_role is not null`,
  `create index project_grants_org_user_idx on project_grants (org_id, user_id) where user_id is not null`,
  `create index project_grants_team_idx on project_grants (org_id, team_id) where team_id is not null`,
  `create index project_grants_role_idx on project_grants (org_id, role_id) where role_id is not null`,

  // ---------- invites ----------
  `create table invites (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations(id) on delete cascade,
    email text not null check (email = btrim(email) and email like '%_@_%'),
    role text not null check (role in ${BUILTIN_ROLE}),
    custom_role_keys text[] not null default '{}',
    token_hash text not null check (length(token_hash) = 64),
    expires_at timestamptz not null,
    invited_by_user_id uuid references users(id) on delete set null,
    accepted_at timestamptz,
    accepted_by_user_id uuid references users(id) on delete set null,
    revoked_at timestamptz,
    created_at timestamptz not null default now(),
    check (not (accepted_at is not null and revoked_at is not null))
  )`,
  `create unique index invites_token_hash_key on invites (token_hash)`,
  `create index invites_org_idx on invites (org_id, created_at)`,

  // ---------- verified domains ----------
  `create table domains (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations(id) on delete cascade,
    domain text not null check (domain = lower(domain) and domain ~ '^[a-z0-9.-]+$' and domain not like '%.' and length(domain) <= 253),
    status text not null default 'pending' check (status in ('pending','verified')),
    verification_token text not null,
    verification_method text check (verification_method in ('dns','manual')),
    verified_at timestamptz,
    capture_enabled boolean not null default false,
    capture_role text not null default 'member' check (capture_role in ${BUILTIN_ROLE} and capture_role <> 'owner'),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check ((status = 'verified') = (verified_at is not null))
  )`,
  `create unique index domains_org_domain_key on domains (org_id, domain)`,
  // At most one org holds a given domain verified.
  `create unique index domains_verified_key on domains (domain) where status = 'verified'`,

  // ---------- SAML SSO ----------
  `create table sso_connections (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations(id) on delete cascade,
    name text not null default 'SAML' check (length(name) between 1 and 256),
    enabled boolean not null default true,
    idp_entity_id text not null check (length(idp_entity_id) between 1 and 1024),
    idp_sso_url text not null check (idp_sso_url ~ '^https{0,1}://'),
    idp_metadata_xml text,
    sp_private_key_encrypted text,
    sp_certificate text,
    attribute_mapping jsonb not null default '{}',
    allow_idp_initiated boolean not null default true,
    jit_enabled boolean not null default true,
    default_role text not null default 'member' check (default_role in ${BUILTIN_ROLE} and default_role <> 'owner'),
    allowed_return_urls text[] not null default '{}',
    default_return_url text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (org_id, id)
  )`,
  `create index sso_connections_org_idx on sso_connections (org_id)`,

  `create table sso_connection_certificates (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    connection_id uuid not null,
    pem text not null,
    fingerprint_sha256 text not null,
    not_before timestamptz,
    not_after timestamptz,
    created_at timestamptz not null default now(),
    foreign key (org_id, connection_id) references sso_connections(org_id, id) on delete cascade
  )`,
  `create unique index sso_connection_certificates_fp_key on sso_connection_certificates (connection_id, fingerprint_sha256)`,

  // node-saml cache provider: AuthnRequest ids awaiting their response (InResponseTo).
  `create table saml_requests (
    id text primary key,
    org_id uuid not null,
    connection_id uuid not null,
    issue_instant text not null,
    relay_state text,
    return_to text,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    foreign key (org_id, connection_id) references sso_connections(org_id, id) on delete cascade
  )`,
  `create unique index saml_requests_relay_state_key on saml_requests (relay_state) where relay_state is not null`,
  `create index saml_requests_expires_idx on saml_requests (expires_at)`,

  // Assertion ids already consumed: replay protection across instances.
  `create table saml_used_assertions (
    connection_id uuid not null references sso_connections(id) on delete cascade,
    assertion_id text not null,
    org_id uuid not null,
    expires_at timestamptz not null,
    created_at timestamptz not null default now(),
    primary key (connection_id, assertion_id)
  )`,
  `create index saml_used_assertions_expires_idx on saml_used_assertions (expires_at)`,

  // ---------- sessions ----------
  `create table sessions (
    id uuid primary key default gen_random_uuid(),
    token_hash text not null check (length(token_hash) = 64),
    user_id uuid not null references users(id) on delete cascade,
    amr text[] not null check (cardinality(amr) >= 1),
    sso_connection_id uuid references sso_connections(id) on delete set null,
    sso_org_id uuid references organizations(id) on delete set null,
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    expires_at timestamptz not null,
    revoked_at timestamptz
  )`,
  `create unique index sessions_token_hash_key on sessions (token_hash)`,
  `create index sessions_user_idx on sessions (user_id)`,

  // One-time codes handed to the product after an SSO sign-in.
  `create table sso_codes (
    code_hash text primary key check (length(code_hash) = 64),
    org_id uuid not null references organizations(id) on delete cascade,
    connection_id uuid not null references sso_connections(id) on delete cascade,
    session_id uuid not null references sessions(id) on delete cascade,
    profile jsonb not null default '{}',
    expires_at timestamptz not null,
    used_at timestamptz,
    created_at timestamptz not null default now()
  )`,

  // ---------- SCIM resources ----------
  `create table scim_users (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    directory_id uuid not null,
    user_id uuid not null references users(id) on delete cascade,
    user_name text not null check (length(user_name) between 1 and 512),
    external_id text,
    active boolean not null default true,
    attributes jsonb not null default '{}',
    version integer not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    foreign key (org_id, directory_id) references scim_directories(org_id, id) on delete cascade
  )`,
  `create unique index scim_users_user_name_key on scim_users (directory_id, lower(user_name))`,
  `create unique index scim_users_user_key on scim_users (directory_id, user_id)`,
  `create index scim_users_external_id_idx on scim_users (directory_id, external_id) where external_id is not null`,
  `create index scim_users_user_idx on scim_users (user_id)`,

  `create table scim_groups (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null,
    directory_id uuid not null,
    team_id uuid not null,
    display_name text not null check (length(display_name) between 1 and 512),
    external_id text,
    version integer not null default 1,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    foreign key (org_id, directory_id) references scim_directories(org_id, id) on delete cascade,
    foreign key (org_id, team_id) references teams(org_id, id) on delete cascade
  )`,
  `create unique index scim_groups_team_key on scim_groups (team_id)`,
  `create index scim_groups_display_name_idx on scim_groups (directory_id, lower(display_name))`,
  `create index scim_groups_external_id_idx on scim_groups (directory_id, external_id) where external_id is not null`,

  // ---------- audit log (append-only; no FK to organizations so it outlives them) ----------
  `create table audit_events (
    id bigint generated always as identity primary key,
    org_id uuid,
    actor_type text not null check (actor_type in ('service_token','user','scim_directory','sso_connection','system')),
    actor_id text,
    action text not null check (action ~ '^[a-z_]+(\\.[a-z_]+)+$'),
    target_type text,
    target_id text,
    before jsonb,
    after jsonb,
    request_id text,
    ip text,
    created_at timestamptz not null default now()
  )`,
  `create index audit_events_org_idx on audit_events (org_id, id)`,
];

const down: string[] = [
  'audit_events',
  'scim_groups',
  'scim_users',
  'sso_codes',
  'sessions',
  'saml_used_assertions',
  'saml_requests',
  'sso_connection_certificates',
  'sso_connections',
  'domains',
  'invites',
  'project_grants',
  'projects',
  'team_roles',
  'team_members',
  'teams',
  'scim_directories',
  'membership_roles',
  'memberships',
  'roles',
  'organizations',
  'rate_limits',
  'user_recovery_codes',
  'user_totp',
  'service_tokens',
  'users',
].map((table) => `drop table if exists ${table}`);

export default {
  name: '0001_init',
  async up(knex: Knex) {
    for (const sql of up) await knex.raw(sql);
  },
  async down(knex: Knex) {
    for (const sql of down) await knex.raw(sql);
  },
};
