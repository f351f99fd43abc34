import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decideAccess } from '../../src/services/access.js';
import type { AccessFactsRow, GrantFact } from '../../src/db/queries/access.js';

const ORG = '11111111-1111-4111-8111-111111111111';

/** Facts of an active member of a private org, private project, no policy, no grants. */
function facts(over: Partial<AccessFactsRow> = {}): AccessFactsRow {
  return {
    ord: 1,
    user_id: 'u',
    project_id: 'p',
    session_id: null,
    org_id: ORG,
    project_visibility: 'private',
    org_visibility: 'private',
    mfa_required: false,
    mfa_grace_period_hours: null,
    mfa_required_since: null,
    sso_required: false,
    user_status: 'active',
    membership_role: 'member',
    membership_status: 'active',
    mfa_enrolled: false,
    live_session_id: null,
    session_amr: null,
    session_sso_org_id: null,
    grants: [],
    ...over,
  };
}
const grant = (g: Partial<GrantFact>): GrantFact => ({ kind: 'direct', grantId: 'g', level: 'read', teamId: null, teamName: null, roleKey: null, ...g });

describe('decideAccess (the effective-access rule)', () => {
  it('takes the max over every path and lists each of them', () => {
    const d = decideAccess(
      facts({
        project_visibility: 'internal',
        membership_role: 'admin',
        grants: [grant({ level: 'read' }), grant({ kind: 'team', level: 'write', teamId: 't', teamName: 'eng' })],
      }),
    );
    assert.equal(d.level, 'admin');
    assert.deepEqual(
      d.reasons.map((r) => r.source),
      ['direct', 'team', 'org_role', 'visibility'],
    );
  });

  it('a missing project is not_found; suspension wins over every grant', () => {
    assert.deepEqual(decideAccess(facts({ org_id: null })), { level: 'none', reasons: [{ source: 'not_found' }] });
    assert.deepEqual(decideAccess(facts({ user_status: 'suspended', grants: [grant({ level: 'admin' })] })).reasons, [
      { source: 'suspended', scope: 'user' },
    ]);
    assert.equal(decideAccess(facts({ membership_status: 'suspended', membership_role: 'owner' })).level, 'none');
  });

  it('public read for strangers only when both project and org are public', () => {
    const stranger = { membership_role: null, membership_status: null } as const;
    assert.equal(decideAccess(facts({ ...stranger, project_visibility: 'public', org_visibility: 'public' })).level, 'read');
    assert.equal(decideAccess(facts({ ...stranger, project_visibility: 'public' })).level, 'none');
    assert.equal(decideAccess(facts({ ...stranger, project_visibility: 'internal', org_visibility: 'public' })).level, 'none');
    // a user id nobody knows
    assert.equal(decideAccess(facts({ ...stranger, user_status: null, project_visibility: 'public', org_visibility: 'public' })).level, 'read');
  });

  it('MFA: grace period measured from mfa_required_since; strangers on public projects are not bound by it', () => {
    const now = Date.parse('2026-01-02T00:00:00Z');
    const since = new Date('2026-01-01T00:00:00Z');
    const policy = { mfa_required: true, mfa_required_since: since, grants: [grant({ level: 'write' })] };
    assert.equal(decideAccess(facts({ ...policy, mfa_grace_period_hours: 25 }), now).level, 'write');
    assert.deepEqual(decideAccess(facts({ ...policy, mfa_grace_period_hours: 24 }), now).reasons, [{ source: 'mfa_required', mfa: 'enroll_required' }]);
    const stranger = facts({ mfa_required: true, membership_role: null, membership_status: null, project_visibility: 'public', org_visibility: 'public' });
    assert.equal(decideAccess(stranger, now).level, 'read');
    // an outside collaborator (grant, no membership) is bound by MFA, but not by the SSO requirement
    const collaborator: Partial<AccessFactsRow> = { membership_role: null, membership_status: null, grants: [grant({ level: 'read' })] };
    assert.equal(decideAccess(facts({ ...collaborator, mfa_required: true })).level, 'none');
    assert.equal(
      decideAccess(facts({ ...collaborator, sso_required: true, session_id: 's', live_session_id: 's', session_amr: ['pwd'] })).level,
      'read',
    );
  });

  it('a named session that is not live for this user denies with session_invalid', () => {
    assert.deepEqual(decideAccess(facts({ session_id: 's', live_session_id: null, membership_role: 'owner' })), {
      level: 'none',
      reasons: [{ source: 'session_invalid' }],
    });
  });
});
