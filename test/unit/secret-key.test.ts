import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.js';
import { SECRET_KEY_FILE, secretBoxOf, settleSecretKey } from '../../src/auth/secret-key.js';

describe('SECRET_KEY settlement', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-key-'));
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const hexKey = 'ab'.repeat(32);

  it('a configured key is used as is (hex or base64)', () => {
    const { config, generatedFile } = settleSecretKey(loadConfig({ SECRET_KEY: hexKey, DATA_DIR: dataDir }));
    assert.equal(config.secretKey, hexKey);
    assert.equal(generatedFile, undefined);
    const b64 = Buffer.alloc(32, 7).toString('base64');
    assert.equal(settleSecretKey(loadConfig({ SECRET_KEY: b64, DATABASE_URL: 'postgres://x/y' })).config.secretKey, b64);
    assert.equal(fs.existsSync(path.join(dataDir, SECRET_KEY_FILE)), false);
  });

  it('unset with DATABASE_URL is a configuration error naming SECRET_KEY', () => {
    assert.throws(
      () => settleSecretKey(loadConfig({ DATABASE_URL: 'postgres://u@db/app', DATA_DIR: dataDir })),
      (err: unknown) => err instanceof ConfigError && /SECRET_KEY/.test(err.message),
    );
  });

  it('unset with the embedded database: generated once into DATA_DIR/secret.key (0600), then reused', () => {
    const first = settleSecretKey(loadConfig({ DATA_DIR: dataDir }));
    const file = path.join(dataDir, SECRET_KEY_FILE);
    assert.equal(first.generatedFile, file);
    assert.match(first.config.secretKey!, /^[0-9a-f]{64}$/);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const second = settleSecretKey(loadConfig({ DATA_DIR: dataDir }));
    assert.equal(second.generatedFile, undefined);
    assert.equal(second.config.secretKey, first.config.secretKey);
    // what one start sealed, the next start opens
    const sealed = secretBoxOf(first.config).seal('JBSWY3DPEHPK3PXP');
    assert.equal(secretBoxOf(second.config).open(sealed), 'JBSWY3DPEHPK3PXP');
    assert.ok(Object.isFrozen(second.config));
  });

  it('a damaged key file stops the start instead of being replaced', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'idp-key-bad-'));
    try {
      fs.writeFileSync(path.join(dir, SECRET_KEY_FILE), 'not a key\n');
      assert.throws(() => settleSecretKey(loadConfig({ DATA_DIR: dir })), ConfigError);
      assert.equal(fs.readFileSync(path.join(dir, SECRET_KEY_FILE), 'utf8'), 'not a key\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('MFA settings have defaults and are validated', () => {
    const c = loadConfig({});
    assert.deepEqual([c.mfaTotpIssuer, c.mfaMaxFailures, c.mfaLockoutMs], ['Identity Service', 5, 15 * 60_000]);
    const d = loadConfig({ MFA_TOTP_ISSUER: 'Acme', MFA_MAX_FAILURES: '3', MFA_LOCKOUT_MINUTES: '1' });
    assert.deepEqual([d.mfaTotpIssuer, d.mfaMaxFailures, d.mfaLockoutMs], ['Acme', 3, 60_000]);
    assert.throws(() => loadConfig({ MFA_MAX_FAILURES: '0', MFA_LOCKOUT_MINUTES: 'soon' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems.map((p) => p.split(':')[0]).sort(), ['MFA_LOCKOUT_MINUTES', 'MFA_MAX_FAILURES']);
      return true;
    });
  });
});
