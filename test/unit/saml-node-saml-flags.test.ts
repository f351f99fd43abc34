import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SAML } from '@node-saml/node-saml';
import { buildResponse, generateKeyPair, type SignMode } from '../helpers/idp.js';

/**
 * What node-saml 5.1 does with wantAssertionsSigned / wantAuthnResponseSigned, checked rather
 * than assumed: it is why src/saml/sp.ts sets both to false (one valid signature still required).
 */
describe('node-saml signature flags', () => {
  const sp = 'https://sp.test/sso/saml/c1';
  const acs = `${sp}/acs`;
  const idp = 'https://idp.test';
  async function outcome(flags: { wantAssertionsSigned: boolean; wantAuthnResponseSigned: boolean }, sign: SignMode) {
    const key = await keyPromise;
    const saml = new SAML({ issuer: sp, callbackUrl: acs, audience: sp, idpCert: key.cert, ...flags, acceptedClockSkewMs: 1000 });
    const { base64 } = buildResponse({ acsUrl: acs, spEntityId: sp, idpEntityId: idp, nameId: 'a@corp.com' }, key, sign);
    try {
      await saml.validatePostResponseAsync({ SAMLResponse: base64 });
      return 'accepted';
    } catch (err) {
      return (err as Error).message;
    }
  }
  const keyPromise = generateKeyPair('flags');

  it('wantAssertionsSigned true + wantAuthnResponseSigned false refuses a response signed only on the Response', async () => {
    const flags = { wantAssertionsSigned: true, wantAuthnResponseSigned: false };
    assert.equal(await outcome(flags, 'assertion'), 'accepted');
    assert.equal(await outcome(flags, 'both'), 'accepted');
    assert.equal(await outcome(flags, 'response'), 'Invalid signature');
    assert.equal(await outcome(flags, 'none'), 'Invalid signature');
  });

  it('both false accepts either signature and still refuses an unsigned response', async () => {
    const flags = { wantAssertionsSigned: false, wantAuthnResponseSigned: false };
    assert.equal(await outcome(flags, 'assertion'), 'accepted');
    assert.equal(await outcome(flags, 'response'), 'accepted');
    assert.equal(await outcome(flags, 'both'), 'accepted');
    assert.equal(await outcome(flags, 'none'), 'Invalid signature');
  });

  it('the defaults (both true) refuse the Entra shape (assertion-only signature)', async () => {
    assert.equal(await outcome({ wantAssertionsSigned: true, wantAuthnResponseSigned: true }, 'assertion'), 'Invalid document signature');
  });
});
