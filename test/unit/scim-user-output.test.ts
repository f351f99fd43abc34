import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SCIMMY from 'scimmy';
import { parseUserBody, toOutput, toResource } from '../../src/scim/users.js';
import type { ScimUserRow } from '../../src/db/queries/scim-users.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/scim');
const USERS_PATH = 'https://idp.example/scim/v2/0b7c0e51-5c86-4f0b-9d47-0f1b3c1e8a10/Users';
const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/** Every User body (POST or PUT) that a documented Okta or Entra request sends. */
function documentedUserBodies(): unknown[] {
  const bodies: unknown[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    const step = node as { request?: { method?: string; path?: string; body?: unknown } };
    const req = step.request;
    if (req && /^(POST|PUT)$/.test(req.method ?? '') && /\/Users(\/|$)/.test(req.path ?? '') && req.body) bodies.push(req.body);
    Object.values(node).forEach(walk);
  };
  for (const file of fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json'))) walk(JSON.parse(fs.readFileSync(path.join(FIXTURES, file), 'utf8')));
  return bodies;
}

const rowOf = (body: unknown, i: number): ScimUserRow => {
  const parsed = parseUserBody(body);
  return {
    id: `6f1c1b0e-2f7e-4f44-9a57-${String(i).padStart(12, '0')}`,
    org_id: 'o',
    directory_id: 'd',
    user_id: 'u',
    user_name: parsed.userName,
    external_id: parsed.externalId,
    active: parsed.active,
    attributes: parsed.attributes,
    version: 3,
    created_at: new Date('2026-01-02T03:04:05.678Z'),
    updated_at: new Date('2026-02-03T04:05:06.789Z'),
  };
};

/** What scimmy's 'out' pass builds from the same row (the slow path, still used with attribute filters). */
const viaScimmy = (row: ScimUserRow) => JSON.parse(JSON.stringify(new SCIMMY.Schemas.User(toResource(row), 'out', USERS_PATH))) as unknown;

describe('SCIM user output without the scimmy pass', () => {
  it('equals scimmy\'s representation for every documented Okta and Entra user body', () => {
    const bodies = documentedUserBodies();
    assert.ok(bodies.length >= 5, `found ${bodies.length} documented user bodies`);
    bodies.forEach((body, i) => {
      const row = rowOf(body, i);
      assert.deepEqual(JSON.parse(JSON.stringify(toOutput(row, USERS_PATH))), viaScimmy(row), `body ${i + 1}`);
    });
  });

  it('equals it for a full profile with the enterprise extension, for an inactive user and without externalId', () => {
    const full = {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', ENT],
      userName: 'Ada@Example.com',
      externalId: 'x-1',
      name: { givenName: 'Ada', familyName: 'Lovelace', formatted: 'Ada Lovelace', middleName: 'B', honorificPrefix: 'Dr' },
      displayName: 'Ada Lovelace',
      nickName: 'ada',
      title: 'Engineer',
      userType: 'Employee',
      preferredLanguage: 'en',
      locale: 'en-GB',
      timezone: 'Europe/London',
      active: 'False',
      emails: [{ primary: 'True', value: 'ada@example.com', type: 'work' }, { value: 'ada@home.example', type: 'home' }],
      phoneNumbers: [{ type: 'mobile', value: '+44 1' }],
      addresses: [{ type: 'work', streetAddress: '1 Main', locality: 'London', country: 'GB', primary: true }],
      [ENT]: { employeeNumber: '7', department: 'R&D', costCenter: 'c', organization: 'o', division: 'd', manager: { value: 'boss' } },
    };
    const minimal = { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'], userName: 'min@example.com' };
    for (const [i, body] of [full, minimal].entries()) {
      const row = rowOf(body, 100 + i);
      assert.deepEqual(JSON.parse(JSON.stringify(toOutput(row, USERS_PATH))), viaScimmy(row));
    }
    const out = toOutput(rowOf(full, 1), USERS_PATH) as { active: boolean; schemas: string[]; meta: { location: string } };
    assert.equal(out.active, false);
    assert.deepEqual(out.schemas, ['urn:ietf:params:scim:schemas:core:2.0:User', ENT]);
    assert.match(out.meta.location, /\/Users\/6f1c1b0e-/);
  });
});
