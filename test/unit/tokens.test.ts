import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digestsEqual, hashToken, mintToken, parseBearer } from '../../src/auth/tokens.js';

describe('tokens', () => {
  it('mints distinct prefixed tokens whose stored form is only the SHA-256', () => {
    const a = mintToken('svc');
    const b = mintToken('svc');
    assert.match(a.token, /^svc_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a.token, b.token);
    assert.equal(a.hash, hashToken(a.token));
    assert.equal(a.hash.length, 64);
    assert.ok(!a.hash.includes(a.token));
  });

  it('compares digests in constant time and rejects length mismatches', () => {
    const h = hashToken('x');
    assert.equal(digestsEqual(h, hashToken('x')), true);
    assert.equal(digestsEqual(h, hashToken('y')), false);
    assert.equal(digestsEqual(h, h.slice(0, 10)), false);
    assert.equal(digestsEqual('', ''), false);
  });

  it('parses only well-formed bearer headers', () => {
    assert.equal(parseBearer('Bearer abc.def'), 'abc.def');
    assert.equal(parseBearer('bearer abc'), 'abc');
    assert.equal(parseBearer(undefined), undefined);
    assert.equal(parseBearer('Basic abc'), undefined);
    assert.equal(parseBearer('Bearer '), undefined);
    assert.equal(parseBearer('Bearer a b'), undefined);
    assert.equal(parseBearer(`Bearer ${'a'.repeat(600)}`), undefined);
  });
});
