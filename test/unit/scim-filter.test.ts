import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import SCIMMY from 'scimmy';
import { parseFilter } from '../../src/scim/filter-parser.js';
import { compileFilter, groupResolver, userResolver } from '../../src/scim/filter-sql.js';
import { pageWindow } from '../../src/scim/paging.js';

describe('SCIM filter parser', () => {
  it('keeps grouping and negation as written', () => {
    assert.deepEqual(parseFilter('not (userName eq "a" or userName eq "b")'), {
      kind: 'not',
      node: { kind: 'or', left: { kind: 'compare', path: 'userName', op: 'eq', value: 'a' }, right: { kind: 'compare', path: 'userName', op: 'eq', value: 'b' } },
    });
    const nested = parseFilter('userName eq "a" and (title pr or not (active eq true))');
    assert.equal(nested.kind, 'and');
  });

  it('documents why we do not use SCIMMY.Types.Filter: it mis-parses these on 1.3.5', () => {
    // not (a or b) comes back as (not a) or (not b)
    const scimmy = new SCIMMY.Types.Filter('not (userName eq "a" or userName eq "b")') as unknown as unknown[];
    assert.equal(scimmy.length, 2);
    assert.throws(() => new SCIMMY.Types.Filter('userName eq "a" and (title pr or not (active eq true))'));
  });

  it('value paths, PATCH-style value paths, keywords in any case, JSON values', () => {
    assert.deepEqual(parseFilter('emails[type eq "work" AND value co "@x"]'), {
      kind: 'has',
      path: 'emails',
      filter: { kind: 'and', left: { kind: 'compare', path: 'type', op: 'eq', value: 'work' }, right: { kind: 'compare', path: 'value', op: 'co', value: '@x' } },
    });
    assert.equal(parseFilter('emails[type eq "work"].value eq "a@b.c"').kind, 'has');
    assert.deepEqual(parseFilter('title EQ "say \\"hi\\""'), { kind: 'compare', path: 'title', op: 'eq', value: 'say "hi"' });
    assert.deepEqual(parseFilter('active eq False'), { kind: 'compare', path: 'active', op: 'eq', value: false });
    assert.deepEqual(parseFilter('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x"').kind, 'compare');
  });

  it('takes a bare word after an operator as a string, as Microsoft\'s examples send it', () => {
    assert.deepEqual(parseFilter('externalId eq jyoung'), { kind: 'compare', path: 'externalId', op: 'eq', value: 'jyoung' });
    assert.deepEqual(parseFilter('userName sw O'), { kind: 'compare', path: 'userName', op: 'sw', value: 'O' });
    assert.equal(parseFilter('name.familyName eq Employee and (userName eq x or active eq true)').kind, 'and');
  });

  for (const bad of ['', 'userName', 'userName eq', 'userName xx "a"', '(userName eq "a"', 'userName eq "a")', 'emails[type eq "a"', 'a eq "x" and']) {
    it(`rejects ${JSON.stringify(bad)} as invalidFilter`, () => {
      assert.throws(() => parseFilter(bad), (e: { status?: number; scimType?: string }) => e.status === 400 && e.scimType === 'invalidFilter');
    });
  }
});

describe('SCIM filter → SQL', () => {
  it('uses indexed columns with bindings, never inlines values', () => {
    const { sql, bindings } = compileFilter(parseFilter('userName eq "Bob" and externalId eq "x\'; drop table users; --"'), userResolver);
    assert.match(sql, /lower\(su\.user_name\) = lower\(\?\)/);
    assert.match(sql, /su\.external_id = \?/);
    assert.deepEqual(bindings, ['Bob', "x'; drop table users; --"]);
    assert.doesNotMatch(sql, /drop table/);
  });
  it('multi-valued attributes become exists over jsonb elements; members over team_members', () => {
    assert.match(compileFilter(parseFilter('emails.value co "x"'), userResolver).sql, /exists \(select 1 from jsonb_array_elements/);
    assert.match(compileFilter(parseFilter('members[value eq "x"]'), groupResolver).sql, /team_members/);
  });
  it('rejects unknown attributes and type mismatches', () => {
    for (const f of ['shoe eq 1', 'active co "t"', 'meta.created eq "yesterday"', 'name eq "x"', 'emails[value eq "x"].foo eq 1']) {
      assert.throws(() => compileFilter(parseFilter(f), userResolver), (e: { scimType?: string }) => e.scimType === 'invalidFilter', f);
    }
  });
});

describe('pageWindow (with scimmy ListResponse) returns exactly the requested page', () => {
  it('for every total 0–30, startIndex 1–33, count 0–12', () => {
    for (let total = 0; total <= 30; total++) {
      const rows = Array.from({ length: total }, (_, i) => ({ i }));
      for (let startIndex = 1; startIndex <= 33; startIndex++) {
        for (let count = 0; count <= 12; count++) {
          const { offset, limit } = pageWindow(startIndex, count, total);
          const fetched = rows.slice(offset, offset + limit);
          const list = new SCIMMY.Messages.ListResponse(fetched as never[], { startIndex, count, totalResults: total } as never);
          const expected = rows.slice(startIndex - 1, startIndex - 1 + count);
          assert.deepEqual(list.Resources, expected, `total=${total} startIndex=${startIndex} count=${count}`);
        }
      }
    }
  });
});
