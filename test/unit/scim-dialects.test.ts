import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { withoutNulls } from '../../src/scim/dialects.js';
import { qualifyExtensionPath } from '../../src/scim/schema.js';
import { withDerivedFormattedName } from '../../src/scim/users.js';

const ENT = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

describe('SCIM dialect helpers', () => {
  it('null means unassigned: dropped at every level, other values kept', () => {
    assert.deepEqual(withoutNulls({ userName: 'a', department: null, name: { givenName: 'G', honorificPrefix: null }, addresses: [{ type: 'work', country: null }], active: false }), {
      userName: 'a',
      name: { givenName: 'G' },
      addresses: [{ type: 'work' }],
      active: false,
    });
  });

  it('enterprise attribute names without their URN are qualified; core names and unknown names are not', () => {
    assert.equal(qualifyExtensionPath('User', 'manager'), `${ENT}:manager`);
    assert.equal(qualifyExtensionPath('User', 'Department'), `${ENT}:Department`);
    assert.equal(qualifyExtensionPath('User', 'manager.value'), `${ENT}:manager.value`);
    assert.equal(qualifyExtensionPath('User', 'name.familyName'), 'name.familyName');
    assert.equal(qualifyExtensionPath('User', 'emails[type eq "work"].value'), 'emails[type eq "work"].value');
    assert.equal(qualifyExtensionPath('User', 'nickname'), 'nickname');
    assert.equal(qualifyExtensionPath('User', 'foo'), 'foo');
    assert.equal(qualifyExtensionPath('Group', 'manager'), 'manager');
  });

  it('name.formatted follows a PATCHed given/family name only when it was their plain join', () => {
    const before = { name: { formatted: 'Ann Lee', givenName: 'Ann', familyName: 'Lee' } };
    assert.deepEqual(withDerivedFormattedName(before, { name: { formatted: 'Ann Lee', givenName: 'Ann', familyName: 'Smith' } }).name, {
      formatted: 'Ann Smith',
      givenName: 'Ann',
      familyName: 'Smith',
    });
    // a formatted name of its own, or one the PATCH set, is kept
    const custom = { name: { formatted: 'Dr. Ann Lee', givenName: 'Ann', familyName: 'Lee' } };
    assert.equal((withDerivedFormattedName(custom, { name: { ...custom.name, familyName: 'Smith' } }).name as { formatted: string }).formatted, 'Dr. Ann Lee');
    assert.equal(
      (withDerivedFormattedName(before, { name: { formatted: 'A. Smith', givenName: 'Ann', familyName: 'Smith' } }).name as { formatted: string }).formatted,
      'A. Smith',
    );
  });
});
