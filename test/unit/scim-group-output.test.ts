import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import SCIMMY from 'scimmy';
import { groupOutput, groupResource, parseGroupBody } from '../../src/scim/groups.js';
import type { GroupMemberRow, ScimGroupRow } from '../../src/db/queries/scim-groups.js';
import { declareScimResources } from '../../src/scim/schema.js';
import { toScimError } from '../../src/scim/errors.js';

const BASE = 'https://idp.example/scim/v2/0b7c0e51-5c86-4f0b-9d47-0f1b3c1e8a10';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';

const rowOf = (body: unknown, version = 4): ScimGroupRow => {
  const parsed = parseGroupBody(body);
  return {
    id: '6f1c1b0e-2f7e-4f44-9a57-000000000001',
    org_id: 'o',
    directory_id: 'd',
    team_id: 't',
    display_name: parsed.displayName,
    external_id: parsed.externalId,
    version,
    created_at: new Date('2026-01-02T03:04:05.678Z'),
    updated_at: new Date('2026-02-03T04:05:06.789Z'),
  };
};
const members: GroupMemberRow[] = [
  { team_id: 't', id: '11111111-1111-4111-8111-111111111111', user_name: 'ada@example.com', display_name: 'Ada Lovelace' },
  { team_id: 't', id: '22222222-2222-4222-8222-222222222222', user_name: 'bob@example.com', display_name: null },
];

/** What scimmy's 'out' pass builds from the same row (the path still used with attribute filters). */
const viaScimmy = (row: ScimGroupRow, list: GroupMemberRow[] | undefined) =>
  JSON.parse(JSON.stringify(new SCIMMY.Schemas.Group(groupResource(row, list, BASE), 'out', `${BASE}/Groups`))) as unknown;

describe('SCIM group input and output without a Schema instance', () => {
  declareScimResources();

  it('output equals scimmy\'s for groups with members, none, an empty list, and without externalId', () => {
    const bodies = [
      { schemas: [GROUP], displayName: 'Engineering', externalId: 'okta-00g1' },
      { schemas: [GROUP, 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group'], displayName: 'Entra group', externalId: 'e-1' },
      { schemas: [GROUP], displayName: 'No external id' },
    ];
    for (const body of bodies) {
      const row = rowOf(body);
      for (const list of [members, [], undefined]) {
        assert.deepEqual(JSON.parse(JSON.stringify(groupOutput(row, list, BASE))), viaScimmy(row, list), `${row.display_name} ${list?.length}`);
      }
    }
  });

  it('input: the same values and refusals as a scimmy Schema instance', () => {
    const parsed = parseGroupBody({ schemas: [GROUP], displayName: '  Sales  ', externalId: 'x', members: [{ value: 'm1' }] });
    assert.deepEqual(parsed, { displayName: 'Sales', externalId: 'x', members: ['m1'] });
    assert.deepEqual(parseGroupBody({ displayName: 'No schemas' }), { displayName: 'No schemas', externalId: null, members: undefined });
    const refusals = [
      { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], displayName: 'x' },
      { schemas: [GROUP], displayName: 7 },
      { schemas: [GROUP], displayName: '   ' },
      { schemas: [GROUP] },
      { schemas: [GROUP], displayName: 'x', externalId: { a: 1 } },
      { schemas: [GROUP], displayName: 'x', owner: 'y' },
    ];
    for (const body of refusals) assert.throws(() => parseGroupBody(body), (err) => toScimError(err).status === 400, JSON.stringify(body));
    // the envelope check a Schema instance makes, kept without the instance
    assert.throws(() => new SCIMMY.Schemas.Group(refusals[0] as never, 'in'), /incompatible/);
    assert.throws(() => parseGroupBody(refusals[0]), /incompatible/);
  });
});
