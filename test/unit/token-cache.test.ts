import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTokenCache } from '../../src/auth/token-cache.js';

describe('token lookup cache', () => {
  it('returns a stored row until it expires', async () => {
    const cache = createTokenCache<{ id: string }>(30);
    cache.set('h1', { id: 'a' }, cache.epoch());
    assert.deepEqual(cache.get('h1'), { id: 'a' });
    assert.equal(cache.get('h2'), undefined);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(cache.get('h1'), undefined, 'expired');
  });

  it('invalidate drops matching rows at once', () => {
    const cache = createTokenCache<{ id: string; org: string }>(60_000);
    cache.set('h1', { id: 'a', org: 'o1' }, cache.epoch());
    cache.set('h2', { id: 'b', org: 'o2' }, cache.epoch());
    cache.invalidate((row) => row.org === 'o1');
    assert.equal(cache.get('h1'), undefined);
    assert.deepEqual(cache.get('h2'), { id: 'b', org: 'o2' });
  });

  it('a lookup that started before an invalidation is not cached (it may hold the old row)', () => {
    const cache = createTokenCache<{ id: string }>(60_000);
    const started = cache.epoch();
    cache.invalidate((row) => row.id === 'a'); // a rotation commits while the lookup is in flight
    cache.set('h1', { id: 'a' }, started);
    assert.equal(cache.get('h1'), undefined);
  });

  it('a TTL of 0 disables caching; the size is bounded', () => {
    const off = createTokenCache<{ id: string }>(0);
    off.set('h', { id: 'a' }, off.epoch());
    assert.equal(off.get('h'), undefined);
    const small = createTokenCache<{ id: string }>(60_000, 2);
    for (const h of ['h1', 'h2', 'h3']) small.set(h, { id: h }, small.epoch());
    assert.equal(small.get('h1'), undefined, 'oldest evicted');
    assert.deepEqual(small.get('h3'), { id: 'h3' });
  });

  it('lookup reads once, serves the cached row after, and does not cache a read an invalidation overtook', async () => {
    const cache = createTokenCache<{ id: string }>(60_000);
    let reads = 0;
    const read = async () => (reads++, { id: 'a' });
    assert.deepEqual(await cache.lookup('h1', read), { id: 'a' });
    assert.deepEqual(await cache.lookup('h1', read), { id: 'a' });
    assert.equal(reads, 1);
    assert.equal(await cache.lookup('h2', async () => undefined), undefined);
    const raced = cache.lookup('h3', async () => {
      cache.invalidate(() => true); // a rotation commits while the read is in flight
      return { id: 'old' };
    });
    assert.deepEqual(await raced, { id: 'old' });
    assert.equal(cache.get('h3'), undefined);
  });
});
