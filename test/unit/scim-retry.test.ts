import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { untilWritten } from '../../src/scim/resource-kit.js';

describe('untilWritten (version-checked SCIM writes)', () => {
  it('runs the write again while another writer wins the race, and returns the first result', async () => {
    let calls = 0;
    const written = await untilWritten('u1', async () => (++calls < 4 ? undefined : 'row'));
    assert.equal(written, 'row');
    assert.equal(calls, 4);
  });

  it('answers 409 after 21 lost races, without a 22nd attempt', async () => {
    let calls = 0;
    await assert.rejects(
      untilWritten('u1', async () => {
        calls++;
        return undefined;
      }),
      (err: { status?: unknown; message?: string }) => String(err.status) === '409' && /u1 is being changed/.test(err.message ?? ''),
    );
    assert.equal(calls, 21);
  });

  it('from the third attempt on, runs the write behind the row lock when the caller can take one', async () => {
    const calls: string[] = [];
    const written = await untilWritten(
      'g1',
      async () => void calls.push('optimistic'),
      async () => (calls.push('locked'), calls.length < 4 ? undefined : 'row'),
    );
    assert.equal(written, 'row');
    assert.deepEqual(calls, ['optimistic', 'optimistic', 'locked', 'locked']);
  });

  it('passes a refusal through at once (404, 412 are not retried)', async () => {
    let calls = 0;
    await assert.rejects(
      untilWritten('u1', async () => {
        calls++;
        throw new Error('precondition');
      }),
      /precondition/,
    );
    assert.equal(calls, 1);
  });
});
