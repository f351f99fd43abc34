import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generate } from 'otplib';
import { checkTotpCode, hashRecoveryCode, newRecoveryCodes, newTotpSecret, normalizeRecoveryCode, totpUri } from '../../src/auth/totp.js';

describe('TOTP codes', () => {
  const secret = newTotpSecret();
  const now = Date.UTC(2026, 0, 1, 12, 0, 10); // 10 s into a step
  const step = Math.floor(now / 30_000);
  const codeAt = (ms: number) => generate({ secret, epoch: Math.floor(ms / 1000) });

  it('a new secret is 160 bits of base32', () => {
    assert.match(secret, /^[A-Z2-7]{32}$/);
    assert.notEqual(newTotpSecret(), secret);
  });

  it('accepts the current step and one step either side, and reports the step it matched', async () => {
    assert.deepEqual(await checkTotpCode(secret, await codeAt(now), null, now), { ok: true, step });
    assert.deepEqual(await checkTotpCode(secret, await codeAt(now - 30_000), null, now), { ok: true, step: step - 1 });
    assert.deepEqual(await checkTotpCode(secret, await codeAt(now + 30_000), null, now), { ok: true, step: step + 1 });
  });

  it('refuses codes two steps away, wrong codes and non-digits', async () => {
    const near = new Set([await codeAt(now - 30_000), await codeAt(now), await codeAt(now + 30_000)]);
    for (const far of [await codeAt(now - 60_000), await codeAt(now + 60_000)]) {
      if (!near.has(far)) assert.deepEqual(await checkTotpCode(secret, far, null, now), { ok: false, reason: 'invalid' });
    }
    assert.deepEqual(await checkTotpCode(secret, 'abcdef', null, now), { ok: false, reason: 'invalid' });
    assert.deepEqual(await checkTotpCode(newTotpSecret(), await codeAt(now), null, now), { ok: false, reason: 'invalid' });
  });

  it('refuses a code whose step is not after the last used one (replay), accepts a later one', async () => {
    const code = await codeAt(now);
    assert.deepEqual(await checkTotpCode(secret, code, step, now), { ok: false, reason: 'replayed' });
    assert.deepEqual(await checkTotpCode(secret, code, step + 1, now), { ok: false, reason: 'replayed' });
    assert.deepEqual(await checkTotpCode(secret, code, step - 1, now), { ok: true, step });
  });

  it('the otpauth URI carries issuer, label and secret', () => {
    const uri = new URL(totpUri({ issuer: 'Acme', label: 'a+b@example.com', secret }));
    assert.equal(`${uri.protocol}//${uri.host}`, 'otpauth://totp');
    assert.equal(decodeURIComponent(uri.pathname), '/Acme:a+b@example.com');
    assert.equal(uri.searchParams.get('secret'), secret);
    assert.equal(uri.searchParams.get('issuer'), 'Acme');
  });
});

describe('recovery codes', () => {
  it('ten distinct codes of 80 bits, grouped by four', () => {
    const codes = newRecoveryCodes();
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const c of codes) assert.match(c, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
  });

  it('hashes ignore case, spaces and dashes, and differ per user', () => {
    const [code] = newRecoveryCodes(1) as [string];
    assert.equal(normalizeRecoveryCode(' ABCD-efgh ijkl-MNOP '), 'abcdefghijklmnop');
    assert.equal(hashRecoveryCode('u1', code), hashRecoveryCode('u1', code.toUpperCase().replaceAll('-', ' ')));
    assert.notEqual(hashRecoveryCode('u1', code), hashRecoveryCode('u2', code));
    assert.match(hashRecoveryCode('u1', code), /^[0-9a-f]{64}$/);
  });
});
