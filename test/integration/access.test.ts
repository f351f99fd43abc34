import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { testBackends } from '../helpers/db.js';
import { MAX_PROBED_PAIRS } from '../../src/db/queries/access.js';
import { addMember, insertOrg, insertUser, memberWithSession, sessionAuth } from '../helpers/fixtures.js';
import {
  addTeamMember,
  enrolTotp,
  giveRole,
  giveTeamRole,
  insertGrant,
  insertProject,
  insertRole,
  insertSession,
  insertSsoConnection,
  insertTeam,
} from '../helpers/projects.js';

type Reason = Record<string, unknown> & { source: string };

/** One line per reason, so a case states every path it expects (and nothing else). */
function summarize(reasons: Reason[]): string[] {
  return reasons
    .map((r) => {
      switch (r.source) {
        case 'direct':
          return `direct:${r.level}${r.external ? ':external' : ''}`;
        case 'team':
          return `team:${r.teamName}:${r.level}`;
        case 'role':
          return r.via === 'team' ? `role:${r.role}:via-team:${r.teamName}:${r.level}` : `role:${r.role}${r.builtin ? ':builtin' : ''}:${r.level}`;
        case 'org_role':
          return `org_role:${r.role}:${r.level}`;
        case 'visibility':
          return `visibility:${r.visibility}:${r.level}`;
        case 'suspended':
          return `suspended:${r.scope}`;
        case 'mfa_required':
          return `mfa_required:${r.mfa}`;
        default:
          return r.source;
      }
    })
    .sort();
}

type Case = {
  name: string;
  /** arranges a fresh org and returns the question to ask */
  arrange: (t: TestApp) => Promise<{ orgId: string; projectId: string; userId: string; sessionId?: string }>;
  level: 'none' | 'read' | 'write' | 'admin';
  reasons: string[];
};

/** A fresh org with one member `u` and one project `p` of the given visibility. */
async function world(t: TestApp, opts: { visibility?: 'private' | 'internal' | 'public'; orgVisibility?: 'private' | 'public'; role?: 'owner' | 'admin' | 'member' | 'viewer' } = {}) {
  const owner = await insertUser(t);
  const org = await insertOrg(t, { ownerId: owner.id, visibility: opts.orgVisibility ?? 'private' });
  const u = await insertUser(t);
  await addMember(t, org.id, u.id, opts.role ?? 'member');
  const p = await insertProject(t, org.id, { visibility: opts.visibility ?? 'private' });
  return { org, u, p };
}

const cases: Case[] = [
  {
    name: 'member, private project, no grant → none',
    arrange: async (t) => {
      const { org, u, p } = await world(t);
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'none',
    reasons: [],
  },
  {
    name: 'direct grant',
    arrange: async (t) => {
      const { org, u, p } = await world(t);
      await insertGrant(t, org.id, p.id, { user_id: u.id }, 'write');
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'write',
    reasons: ['direct:write'],
  },
  {
    name: 'team grant',
    arrange: async (t) => {
      const { org, u, p } = await world(t);
      const team = await insertTeam(t, org.id, { name: 'eng' });
      await addTeamMember(t, org.id, team.id, u.id);
      await insertGrant(t, org.id, p.id, { team_id: team.id }, 'write');
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'write',
    reasons: ['team:eng:write'],
  },
  {
    name: 'grant to a team the user is NOT in gives nothing',
    arrange: async (t) => {
      const { org, u, p } = await world(t);
      const team = await insertTeam(t, org.id, { name: 'ops' });
      await insertGrant(t, org.id, p.id, { team_id: team.id }, 'admin');
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'none',
    reasons: [],
  },
  {
    name: 'custom role held directly',
    arrange: async (t) => {
      const { org, u, p } = await world(t);
      const role = await insertRole(t, org.id, 'maintainer');
      await giveRole(t, org.id, u.id, role.id);
      await insertGrant(t, org.id, p.id, { role_id: role.id }, 'admin');
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'admin',
    reasons: ['role:maintainer:admin'],
  },
  {
    name: 'custom role through a team',
    arrange: async (t) => {
      const { org, u, p } = await world(t);
      const role = await insertRole(t, org.id, 'maintainer');
      const team = await insertTeam(t, org.id, { name: 'eng' });
      await addTeamMember(t, org.id, team.id, u.id);
      await giveTeamRole(t, org.id, team.id, role.id);
      await insertGrant(t, org.id, p.id, { role_id: role.id }, 'write');
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'write',
    reasons: ['role:maintainer:via-team:eng:write'],
  },
  {
    name: 'grant to built-in role member',
    arrange: async (t) => {
      const { org, u, p } = await world(t);
      await insertGrant(t, org.id, p.id, { builtin_role: 'member' }, 'read');
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'read',
    reasons: ['role:member:builtin:read'],
  },
  {
    name: 'grant to built-in role viewer does not reach a member',
    arrange: async (t) => {
      const { org, u, p } = await world(t);
      await insertGrant(t, org.id, p.id, { builtin_role: 'viewer' }, 'read');
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'none',
    reasons: [],
  },
  {
    name: 'owner implies admin',
    arrange: async (t) => {
      const { org, u, p } = await world(t, { role: 'owner' });
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'admin',
    reasons: ['org_role:owner:admin'],
  },
  {
    name: 'admin implies admin',
    arrange: async (t) => {
      const { org, u, p } = await world(t, { role: 'admin' });
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'admin',
    reasons: ['org_role:admin:admin'],
  },
  {
    name: 'internal project → member read',
    arrange: async (t) => {
      const { org, u, p } = await world(t, { visibility: 'internal', role: 'viewer' });
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'read',
    reasons: ['visibility:internal:read'],
  },
  {
    name: 'internal project → non-member none',
    arrange: async (t) => {
      const { org, p } = await world(t, { visibility: 'internal', orgVisibility: 'public' });
      const stranger = await insertUser(t);
      return { orgId: org.id, projectId: p.id, userId: stranger.id };
    },
    level: 'none',
    reasons: [],
  },
  {
    name: 'public project in a private org → member read',
    arrange: async (t) => {
      const { org, u, p } = await world(t, { visibility: 'public' });
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'read',
    reasons: ['visibility:public:read'],
  },
  {
    name: 'public project in a private org → non-member none',
    arrange: async (t) => {
      const { org, p } = await world(t, { visibility: 'public' });
      const stranger = await insertUser(t);
      return { orgId: org.id, projectId: p.id, userId: stranger.id };
    },
    level: 'none',
    reasons: [],
  },
  {
    name: 'public project in a public org → non-member read',
    arrange: async (t) => {
      const { org, p } = await world(t, { visibility: 'public', orgVisibility: 'public' });
      const stranger = await insertUser(t);
      return { orgId: org.id, projectId: p.id, userId: stranger.id };
    },
    level: 'read',
    reasons: ['visibility:public:read'],
  },
  {
    name: 'public project in a public org → a user id nobody knows reads too',
    arrange: async (t) => {
      const { org, p } = await world(t, { visibility: 'public', orgVisibility: 'public' });
      return { orgId: org.id, projectId: p.id, userId: randomUUID() };
    },
    level: 'read',
    reasons: ['visibility:public:read'],
  },
  {
    name: 'private project in a public org → non-member none',
    arrange: async (t) => {
      const { org, p } = await world(t, { orgVisibility: 'public' });
      const stranger = await insertUser(t);
      return { orgId: org.id, projectId: p.id, userId: stranger.id };
    },
    level: 'none',
    reasons: [],
  },
  {
    name: 'max of several paths, every path listed',
    arrange: async (t) => {
      const { org, u, p } = await world(t, { visibility: 'internal' });
      const team = await insertTeam(t, org.id, { name: 'eng' });
      const role = await insertRole(t, org.id, 'maintainer');
      await addTeamMember(t, org.id, team.id, u.id);
      await giveTeamRole(t, org.id, team.id, role.id);
      await insertGrant(t, org.id, p.id, { user_id: u.id }, 'read');
      await insertGrant(t, org.id, p.id, { team_id: team.id }, 'write');
      await insertGrant(t, org.id, p.id, { role_id: role.id }, 'admin');
      await insertGrant(t, org.id, p.id, { builtin_role: 'member' }, 'read');
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'admin',
    reasons: ['direct:read', 'role:maintainer:via-team:eng:admin', 'role:member:builtin:read', 'team:eng:write', 'visibility:internal:read'],
  },
  {
    name: 'suspended membership → none, even with an admin grant',
    arrange: async (t) => {
      const { org, u, p } = await world(t, { visibility: 'internal', role: 'admin' });
      await insertGrant(t, org.id, p.id, { user_id: u.id }, 'admin');
      await t.testDb.db('memberships').where({ org_id: org.id, user_id: u.id }).update({ status: 'suspended' });
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'none',
    reasons: ['suspended:membership'],
  },
  {
    name: 'suspended user → none, even on a public project of a public org',
    arrange: async (t) => {
      const { org, u, p } = await world(t, { visibility: 'public', orgVisibility: 'public', role: 'owner' });
      await t.testDb.db('users').where({ id: u.id }).update({ status: 'suspended' });
      return { orgId: org.id, projectId: p.id, userId: u.id };
    },
    level: 'none',
    reasons: ['suspended:user'],
  },
  {
    name: 'outside collaborator: the granted project',
    arrange: async (t) => {
      const { org, p } = await world(t);
      const outside = await insertUser(t);
      await insertGrant(t, org.id, p.id, { user_id: outside.id }, 'write');
      return { orgId: org.id, projectId: p.id, userId: outside.id };
    },
    level: 'write',
    reasons: ['direct:write:external'],
  },
  {
    name: 'outside collaborator: nothing else of the org (internal project, member-role grant)',
    arrange: async (t) => {
      const { org, p } = await world(t);
      const outside = await insertUser(t);
      await insertGrant(t, org.id, p.id, { user_id: outside.id }, 'write');
      const other = await insertProject(t, org.id, { visibility: 'internal' });
      await insertGrant(t, org.id, other.id, { builtin_role: 'member' }, 'read');
      return { orgId: org.id, projectId: other.id, userId: outside.id };
    },
    level: 'none',
    reasons: [],
  },
];

/** MFA and SSO cases: an org requiring the policy, a member holding a write grant. */
type PolicyCase = {
  name: string;
  org: { mfa_required?: boolean; sso_required?: boolean; mfa_grace_period_hours?: number | null; mfa_required_since?: Date | null };
  enrolled: boolean;
  /** the session to evaluate, if any */
  session?: 'pwd' | 'otp' | 'sso_this_org' | 'sso_other_org' | 'revoked' | 'other_users';
  level: 'none' | 'write';
  reasons: string[];
};
const policyCases: PolicyCase[] = [
  { name: 'MFA required, user not enrolled, no session', org: { mfa_required: true }, enrolled: false, level: 'none', reasons: ['mfa_required:enroll_required'] },
  { name: 'MFA required, user enrolled, no session', org: { mfa_required: true }, enrolled: true, level: 'write', reasons: ['direct:write'] },
  {
    name: 'MFA required, not enrolled, inside the grace period',
    org: { mfa_required: true, mfa_grace_period_hours: 24, mfa_required_since: new Date(Date.now() - 3_600_000) },
    enrolled: false,
    level: 'write',
    reasons: ['direct:write'],
  },
  {
    name: 'MFA required, not enrolled, grace period over',
    org: { mfa_required: true, mfa_grace_period_hours: 1, mfa_required_since: new Date(Date.now() - 2 * 3_600_000) },
    enrolled: false,
    level: 'none',
    reasons: ['mfa_required:enroll_required'],
  },
  { name: 'MFA required, enrolled, password-only session', org: { mfa_required: true }, enrolled: true, session: 'pwd', level: 'none', reasons: ['mfa_required:verify_required'] },
  { name: 'MFA required, otp session', org: { mfa_required: true }, enrolled: true, session: 'otp', level: 'write', reasons: ['direct:write'] },
  { name: 'MFA required, SSO session of this org', org: { mfa_required: true }, enrolled: false, session: 'sso_this_org', level: 'write', reasons: ['direct:write'] },
  { name: 'MFA required, SSO session of another org', org: { mfa_required: true }, enrolled: false, session: 'sso_other_org', level: 'none', reasons: ['mfa_required:enroll_required'] },
  { name: 'SSO required, password session', org: { sso_required: true }, enrolled: false, session: 'pwd', level: 'none', reasons: ['sso_required'] },
  { name: 'SSO required, SSO session of this org', org: { sso_required: true }, enrolled: false, session: 'sso_this_org', level: 'write', reasons: ['direct:write'] },
  { name: 'SSO required, SSO session of another org', org: { sso_required: true }, enrolled: false, session: 'sso_other_org', level: 'none', reasons: ['sso_required'] },
  { name: 'SSO required, no session given: not evaluated', org: { sso_required: true }, enrolled: false, level: 'write', reasons: ['direct:write'] },
  { name: 'MFA and SSO required, SSO session of this org', org: { mfa_required: true, sso_required: true }, enrolled: false, session: 'sso_this_org', level: 'write', reasons: ['direct:write'] },
  { name: 'a revoked session', org: {}, enrolled: false, session: 'revoked', level: 'none', reasons: ['session_invalid'] },
  { name: "another user's session", org: {}, enrolled: false, session: 'other_users', level: 'none', reasons: ['session_invalid'] },
];

for (const backend of testBackends()) {
  describe(`access decision [${backend}]`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    const ask = (orgId: string, projectId: string, userId: string, sessionId?: string) =>
      t.http
        .get(`/api/v1/orgs/${orgId}/projects/${projectId}/access/${userId}`)
        .query(sessionId ? { sessionId } : {})
        .set('Authorization', t.adminAuth);

    /**
     * Batches run other statements: up to MAX_PROBED_PAIRS pairs are probed pair by pair
     * (as single decisions asked together are), more are joined set-based. Same answer.
     */
    async function assertBatchesAgree(q: { projectId: string; userId: string; sessionId?: string }, single: { level: string; reasons: Reason[] }) {
      const check = { userId: q.userId, projectId: q.projectId, ...(q.sessionId ? { sessionId: q.sessionId } : {}) };
      for (const size of [2, MAX_PROBED_PAIRS + 1]) {
        const batch = await t.http
          .post('/api/v1/access/check')
          .set('Authorization', t.adminAuth)
          .send({ checks: Array.from({ length: size }, () => check) })
          .expect(200);
        assert.equal(batch.body.results.length, size);
        for (const r of batch.body.results as { level: string; reasons: Reason[] }[]) {
          assert.deepEqual([r.level, r.reasons], [single.level, single.reasons], `batch of ${size}`);
        }
      }
    }

    for (const c of cases) {
      it(`rule: ${c.name}`, async () => {
        const q = await c.arrange(t);
        const res = await ask(q.orgId, q.projectId, q.userId, q.sessionId).expect(200);
        assert.equal(res.body.level, c.level);
        assert.deepEqual(summarize(res.body.reasons), [...c.reasons].sort());
        await assertBatchesAgree(q, res.body);
      });
    }

    for (const c of policyCases) {
      it(`policy: ${c.name}`, async () => {
        const { org, u, p } = await world(t);
        if (Object.keys(c.org).length > 0) await t.testDb.db('organizations').where({ id: org.id }).update(c.org);
        await insertGrant(t, org.id, p.id, { user_id: u.id }, 'write');
        if (c.enrolled) await enrolTotp(t, u.id);
        let sessionId: string | undefined;
        if (c.session) {
          const otherOwner = await insertUser(t);
          const otherOrg = await insertOrg(t, { ownerId: otherOwner.id });
          const ssoOrg = c.session === 'sso_this_org' ? org.id : otherOrg.id;
          const sessionUser = c.session === 'other_users' ? otherOwner.id : u.id;
          const amr = c.session === 'otp' ? ['pwd', 'otp'] : c.session.startsWith('sso') ? ['sso'] : ['pwd'];
          const connection = c.session.startsWith('sso') ? await insertSsoConnection(t, ssoOrg) : undefined;
          const session = await insertSession(t, sessionUser, amr, {
            ssoOrgId: connection ? ssoOrg : undefined,
            ssoConnectionId: connection?.id,
            revoked: c.session === 'revoked',
          });
          sessionId = session.id;
        }
        const res = await ask(org.id, p.id, u.id, sessionId).expect(200);
        assert.equal(res.body.level, c.level);
        assert.deepEqual(summarize(res.body.reasons), [...c.reasons].sort());
        await assertBatchesAgree({ projectId: p.id, userId: u.id, sessionId }, res.body);
      });
    }

    it('reasons carry names and ids people and programs can use', async () => {
      const { org, u, p } = await world(t);
      const team = await insertTeam(t, org.id, { name: 'eng' });
      const role = await insertRole(t, org.id, 'maintainer');
      await addTeamMember(t, org.id, team.id, u.id);
      await giveTeamRole(t, org.id, team.id, role.id);
      const teamGrant = await insertGrant(t, org.id, p.id, { team_id: team.id }, 'write');
      const roleGrant = await insertGrant(t, org.id, p.id, { role_id: role.id }, 'admin');
      const res = await ask(org.id, p.id, u.id).expect(200);
      assert.deepEqual(res.body, {
        level: 'admin',
        reasons: [
          { source: 'team', grantId: teamGrant.id, teamId: team.id, teamName: 'eng', level: 'write' },
          { source: 'role', grantId: roleGrant.id, role: 'maintainer', builtin: false, via: 'team', teamId: team.id, teamName: 'eng', level: 'admin' },
        ],
      });
    });

    it('single endpoint: auth, self, permissions and other orgs', async () => {
      const { org, u, p } = await world(t);
      const otherOwner = await insertUser(t);
      const otherOrg = await insertOrg(t, { ownerId: otherOwner.id });
      const otherProject = await insertProject(t, otherOrg.id);
      const path = (o: string, pr: string, us: string) => `/api/v1/orgs/${o}/projects/${pr}/access/${us}`;

      await t.http.get(path(org.id, p.id, u.id)).expect(401);
      // a project of another org under this org's path, unknown or malformed ids: 404
      await t.http.get(path(org.id, otherProject.id, u.id)).set('Authorization', t.adminAuth).expect(404);
      await t.http.get(path(org.id, randomUUID(), u.id)).set('Authorization', t.adminAuth).expect(404);
      await t.http.get(path(org.id, 'nope', u.id)).set('Authorization', t.adminAuth).expect(404);
      await t.http.get(path(org.id, p.id, 'nope')).set('Authorization', t.adminAuth).expect(404);
      const bad = await t.http.get(path(org.id, p.id, u.id)).query({ sessionId: 'x' }).set('Authorization', t.adminAuth).expect(400);
      assert.equal(bad.body.error.code, 'validation.failed');

      // a member (projects:read) may ask about anyone of its org; the user about itself
      const { auth: viewerAuth } = await memberWithSession(t, org.id, 'viewer');
      const asViewer = await t.http.get(path(org.id, p.id, otherOwner.id)).set('Authorization', viewerAuth).expect(200);
      assert.equal(asViewer.body.level, 'none');
      const self = await t.http.get(path(org.id, p.id, u.id)).set('Authorization', await sessionAuth(t, u.id)).expect(200);
      assert.equal(self.body.level, 'none');
      // an outsider asking about a member: the org is not theirs → 404
      const outsiderAuth = await sessionAuth(t, otherOwner.id);
      await t.http.get(path(org.id, p.id, u.id)).set('Authorization', outsiderAuth).expect(404);
      // a suspended member may not ask about others
      await t.testDb.db('memberships').where({ org_id: org.id, user_id: u.id }).update({ status: 'suspended' });
      const refused = await t.http.get(path(org.id, p.id, otherOwner.id)).set('Authorization', await sessionAuth(t, u.id)).expect(403);
      assert.equal(refused.body.error.code, 'membership.suspended');
    });

    it('batch: order preserved, unknown project in its slot, sessions evaluated per item', async () => {
      const { org, u, p } = await world(t, { visibility: 'internal' });
      const admin = await insertUser(t);
      await addMember(t, org.id, admin.id, 'admin');
      const otherOwner = await insertUser(t);
      const otherOrg = await insertOrg(t, { ownerId: otherOwner.id });
      const otherProject = await insertProject(t, otherOrg.id);
      const revoked = await insertSession(t, admin.id, ['pwd'], { revoked: true });
      const unknown = randomUUID();
      const checks = [
        { userId: admin.id, projectId: p.id },
        { userId: u.id, projectId: unknown },
        { userId: u.id, projectId: p.id },
        { userId: otherOwner.id, projectId: otherProject.id },
        { userId: u.id, projectId: otherProject.id },
        { userId: admin.id, projectId: p.id, sessionId: revoked.id },
      ];
      const res = await t.http.post('/api/v1/access/check').set('Authorization', t.adminAuth).send({ checks }).expect(200);
      assert.deepEqual(
        res.body.results.map((r: { userId: string; projectId: string; level: string; reasons: Reason[] }) => [r.userId, r.projectId, r.level, summarize(r.reasons)]),
        [
          [admin.id, p.id, 'admin', ['org_role:admin:admin', 'visibility:internal:read']],
          [u.id, unknown, 'none', ['not_found']],
          [u.id, p.id, 'read', ['visibility:internal:read']],
          [otherOwner.id, otherProject.id, 'admin', ['org_role:owner:admin']],
          [u.id, otherProject.id, 'none', []],
          [admin.id, p.id, 'none', ['session_invalid']],
        ],
      );
    });

    it('batch: 1000 pairs in one request, 1001 refused, bad input, auth', async () => {
      const { org, u, p } = await world(t);
      await insertGrant(t, org.id, p.id, { user_id: u.id }, 'write');
      const stranger = await insertUser(t);
      const checks = Array.from({ length: 1000 }, (_, i) => ({ userId: i % 2 ? u.id : stranger.id, projectId: p.id }));
      const res = await t.http.post('/api/v1/access/check').set('Authorization', t.adminAuth).send({ checks }).expect(200);
      assert.equal(res.body.results.length, 1000);
      res.body.results.forEach((r: { userId: string; level: string }, i: number) => {
        assert.equal(r.userId, i % 2 ? u.id : stranger.id);
        assert.equal(r.level, i % 2 ? 'write' : 'none');
      });

      const tooMany = await t.http
        .post('/api/v1/access/check')
        .set('Authorization', t.adminAuth)
        .send({ checks: [...checks, checks[0]] })
        .expect(400);
      assert.equal(tooMany.body.error.code, 'validation.failed');
      await t.http.post('/api/v1/access/check').set('Authorization', t.adminAuth).send({ checks: [] }).expect(400);
      const badId = await t.http
        .post('/api/v1/access/check')
        .set('Authorization', t.adminAuth)
        .send({ checks: [{ userId: 'x', projectId: p.id }] })
        .expect(400);
      assert.equal(badId.body.error.details[0].path, 'checks.0.userId');
      await t.http.post('/api/v1/access/check').send({ checks: checks.slice(0, 1) }).expect(401);
      // the batch crosses orgs: service tokens only
      const forbidden = await t.http
        .post('/api/v1/access/check')
        .set('Authorization', await sessionAuth(t, u.id))
        .send({ checks: checks.slice(0, 1) })
        .expect(403);
      assert.equal(forbidden.body.error.code, 'auth.service_token_required');
    });

    it('single decisions asked together share one statement; each gets its own answer; /metrics counts both', async () => {
      const { org, u, p } = await world(t, { visibility: 'internal' });
      await insertGrant(t, org.id, p.id, { user_id: u.id }, 'write');
      const admin = await insertUser(t);
      await addMember(t, org.id, admin.id, 'admin');
      const stranger = await insertUser(t);
      const otherOwner = await insertUser(t);
      const otherOrg = await insertOrg(t, { ownerId: otherOwner.id });
      const otherProject = await insertProject(t, otherOrg.id);
      const revoked = await insertSession(t, admin.id, ['pwd'], { revoked: true });
      const pairs = [
        { userId: u.id, projectId: p.id },
        { userId: admin.id, projectId: p.id },
        { userId: stranger.id, projectId: p.id },
        { userId: u.id, projectId: randomUUID() },
        { userId: otherOwner.id, projectId: otherProject.id },
        { userId: admin.id, projectId: p.id, sessionId: revoked.id },
      ];
      const { access } = t.ctx.services;
      const alone: Awaited<ReturnType<typeof access.decide>>[] = [];
      for (const pair of pairs) alone.push(await access.decide(pair));
      assert.deepEqual(
        alone.map((d) => d && [d.orgId, d.level]),
        [[org.id, 'write'], [org.id, 'admin'], [org.id, 'none'], undefined, [otherOrg.id, 'admin'], [org.id, 'none']],
      );

      const statements: string[] = [];
      const onQuery = (q: { sql: string }) => statements.push(q.sql);
      t.testDb.db.on('query', onQuery);
      const before = access.singleDecisionCounts();
      try {
        assert.deepEqual(await Promise.all(pairs.map((pair) => access.decide(pair))), alone);
        assert.equal(statements.length, 1, statements.join('\n'));
        assert.deepEqual(access.singleDecisionCounts(), { decisions: before.decisions + pairs.length, statements: before.statements + 1 });
        // more than MAX_PROBED_PAIRS at once: a statement per MAX_PROBED_PAIRS
        statements.length = 0;
        const many = Array.from({ length: MAX_PROBED_PAIRS + 8 }, (_, i) => pairs[i % pairs.length]!);
        const answers = await Promise.all(many.map((pair) => access.decide(pair)));
        answers.forEach((a, i) => assert.deepEqual(a, alone[i % pairs.length]));
        assert.equal(statements.length, 2);
        // asked from separate callbacks of one turn of the loop, as requests read from separate sockets
        // are (immediates queued together run in one check phase, microtasks drained after each)
        statements.length = 0;
        const fromCallbacks = await Promise.all(
          pairs.map((pair) => new Promise((resolve, reject) => setImmediate(() => access.decide(pair).then(resolve, reject)))),
        );
        assert.deepEqual(fromCallbacks, alone);
        assert.equal(statements.length, 1, statements.join('\n'));
      } finally {
        t.testDb.db.removeListener('query', onQuery);
      }
      const metrics = (await t.http.get('/metrics').expect(200)).text;
      const counter = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(metrics)?.[1]);
      const now = access.singleDecisionCounts();
      assert.equal(counter('access_single_decisions_total'), now.decisions);
      assert.equal(counter('access_single_decision_statements_total'), now.statements);

      // over HTTP, asked at once: every request its own answer, other orgs' projects still 404
      const answers = await Promise.all(
        [...pairs, { userId: u.id, projectId: otherProject.id }].map((pair, i) =>
          ask(i === 4 ? otherOrg.id : org.id, pair.projectId, pair.userId, pair.sessionId).then((r) => [r.status, r.body.level]),
        ),
      );
      assert.deepEqual(answers, [
        [200, 'write'],
        [200, 'admin'],
        [200, 'none'],
        [404, undefined],
        [200, 'admin'],
        [200, 'none'],
        [404, undefined],
      ]);
    });

    it('a statement shared by single decisions that fails fails each of them, and the next ones are answered; a malformed id fails only its caller', async () => {
      const { org, u, p } = await world(t);
      await insertGrant(t, org.id, p.id, { user_id: u.id }, 'read');
      const other = await insertUser(t);
      const { access } = t.ctx.services;
      const pairs = [
        { userId: u.id, projectId: p.id },
        { userId: other.id, projectId: p.id },
      ];
      await t.testDb.db.raw('alter table user_totp rename to user_totp_away');
      try {
        const settled = await Promise.allSettled(pairs.map((pair) => access.decide(pair)));
        assert.deepEqual(settled.map((r) => r.status), ['rejected', 'rejected']);
      } finally {
        await t.testDb.db.raw('alter table user_totp_away rename to user_totp');
      }
      assert.deepEqual((await Promise.all(pairs.map((pair) => access.decide(pair)))).map((d) => d?.level), ['read', 'none']);

      const [bad, good] = await Promise.allSettled([access.decide({ userId: 'nope', projectId: p.id }), access.decide(pairs[0]!)]);
      assert.equal(bad.status, 'rejected');
      assert.match(String((bad as PromiseRejectedResult).reason), /must be UUIDs/);
      assert.equal(good.status === 'fulfilled' && good.value?.level, 'read');
    });

    it('one decision is one SQL statement; a batch of 1000 too (planned with index costs in a transaction of its own)', async () => {
      const { org, u, p } = await world(t);
      const team = await insertTeam(t, org.id, { name: 'eng' });
      await addTeamMember(t, org.id, team.id, u.id);
      await insertGrant(t, org.id, p.id, { team_id: team.id }, 'read');
      const statements: string[] = [];
      const onQuery = (q: { sql: string }) => statements.push(q.sql);
      t.testDb.db.on('query', onQuery);
      try {
        const one = await t.ctx.services.access.decide({ userId: u.id, projectId: p.id });
        assert.equal(one?.level, 'read');
        assert.equal(statements.length, 1);
        statements.length = 0;
        const many = await t.ctx.services.access.decideMany(Array.from({ length: 1000 }, () => ({ userId: u.id, projectId: p.id })));
        assert.equal(many.length, 1000);
        const planning = /^(begin|commit|set local random_page_cost = 1\.1)\b/i;
        assert.equal(statements.filter((sql) => !planning.test(sql.trim())).length, 1, statements.join('\n'));
        assert.ok(statements.some((sql) => /^set local random_page_cost/i.test(sql.trim())), statements.join('\n'));
      } finally {
        t.testDb.db.removeListener('query', onQuery);
      }
    });
  });
}
