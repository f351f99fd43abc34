import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError, describeConfig, loadConfig } from '../../src/config.js';

describe('config', () => {
  it('When nothing is set, Then it runs embedded under ./data on port 3000', () => {
    const c = loadConfig({});
    assert.equal(c.port, 3000);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.dataDir, path.resolve('./data'));
    assert.equal(c.publicUrl, 'http://localhost:3000');
    assert.equal(c.logLevel, 'info');
    assert.ok(Object.isFrozen(c));
  });

  it('When values are set, Then they are parsed and normalised', () => {
    const c = loadConfig({
      PORT: '8080',
      DATABASE_URL: 'postgres://u:secret@db:5432/app',
      PUBLIC_URL: 'https://id.example.com/',
      LOG_LEVEL: 'debug',
      ADMIN_TOKEN: 'x'.repeat(32),
    });
    assert.equal(c.port, 8080);
    assert.equal(c.databaseUrl, 'postgres://u:secret@db:5432/app');
    assert.equal(c.publicUrl, 'https://id.example.com');
    assert.equal(c.adminToken, 'x'.repeat(32));
  });

  it('When values are invalid, Then one error lists every bad key', () => {
    assert.throws(
      () => loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud', ADMIN_TOKEN: 'short', PUBLIC_URL: 'not a url' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const keys = err.problems.map((p) => p.split(':')[0]).sort();
        assert.deepEqual(keys, ['ADMIN_TOKEN', 'DATABASE_URL', 'LOG_LEVEL', 'PORT', 'PUBLIC_URL']);
        assert.match(err.message, /Invalid configuration/);
        return true;
      },
    );
  });

  it('When an empty string is set, Then it counts as unset', () => {
    const c = loadConfig({ DATABASE_URL: '', ADMIN_TOKEN: '  ' });
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.adminToken, undefined);
  });

  it('When described, Then secrets are masked', () => {
    const d = describeConfig(loadConfig({ DATABASE_URL: 'postgres://u:secret@db/app', ADMIN_TOKEN: 'y'.repeat(30) }));
    const text = JSON.stringify(d);
    assert.doesNotMatch(text, /secret/);
    assert.doesNotMatch(text, /yyyy/);
    assert.equal(d.database, 'postgresql');
  });
});
