import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseDomain } from '../../src/services/domains.js';
import { parseCertificate } from '../../src/saml/certificates.js';
import { parseIdpMetadata } from '../../src/saml/idp-metadata.js';
import { DEFAULT_ATTRIBUTE_MAPPING, effectiveMapping, emailDomain, mapProfile } from '../../src/saml/attributes.js';
import { matchReturnUrl, withCode } from '../../src/saml/return-urls.js';
import { fromNodeSamlError } from '../../src/saml/failures.js';
import { readEnvelope } from '../../src/saml/envelope.js';
import { generateKeyPair, idpMetadataXml, toBase64 } from '../helpers/idp.js';

describe('normaliseDomain', () => {
  it('normalises case, whitespace, trailing dots and IDN', () => {
    assert.deepEqual(normaliseDomain(' Example.COM.. '), { ok: true, domain: 'example.com' });
    assert.deepEqual(normaliseDomain('eu.acme.co.uk'), { ok: true, domain: 'eu.acme.co.uk' });
    assert.deepEqual(normaliseDomain('bücher.de'), { ok: true, domain: 'xn--bcher-kva.de' });
  });
  it('refuses public suffixes (ICANN and private), IP literals and junk', () => {
    for (const d of ['com', 'co.uk', 'github.io', 'CO.UK.']) assert.deepEqual(normaliseDomain(d), { ok: false, reason: 'public_suffix' }, d);
    for (const d of ['10.0.0.1', '::1', '[2001:db8::1]']) assert.deepEqual(normaliseDomain(d), { ok: false, reason: 'ip_literal' }, d);
    for (const d of ['a..b.com', 'a_b.example.com', '-x.example.com', 'x'.repeat(64) + '.com', 'ex ample.com']) {
      assert.equal(normaliseDomain(d).ok, false, d);
    }
    assert.deepEqual(normaliseDomain('   '), { ok: false, reason: 'empty' });
  });
});

describe('parseCertificate', () => {
  it('accepts PEM and base64 DER (with line breaks), rejects garbage', async () => {
    const key = await generateKeyPair('unit-cert');
    const fromPem = parseCertificate(key.cert);
    const fromDer = parseCertificate(key.certBase64.replace(/(.{64})/g, '$1\n'));
    assert.ok(fromPem && fromDer);
    assert.equal(fromPem.fingerprintSha256, fromDer.fingerprintSha256);
    assert.match(fromPem.subject, /CN=unit-cert/);
    assert.ok(fromPem.notAfter.getTime() > Date.now());
    assert.equal(parseCertificate('hello world'), null);
    assert.equal(parseCertificate('QUJDRA=='), null);
    assert.equal(parseCertificate('-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----'), null);
  });
});

describe('parseIdpMetadata', () => {
  it('reads entityID, the HTTP-Redirect SSO URL and signing certificates; refuses DOCTYPE', async () => {
    const key = await generateKeyPair('meta');
    const xml = idpMetadataXml({ entityId: 'http://www.okta.com/exk1', ssoUrl: 'https://acme.okta.com/app/sso/saml', certs: [key.cert] });
    const parsed = parseIdpMetadata(xml);
    assert.ok(parsed.ok);
    assert.equal(parsed.value.entityId, 'http://www.okta.com/exk1');
    assert.equal(parsed.value.ssoUrl, 'https://acme.okta.com/app/sso/saml');
    assert.deepEqual(parsed.value.certificates, [key.certBase64]);
    const wrapped = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">${xml.replace(/^<\?xml[^>]*>/, '')}</md:EntitiesDescriptor>`;
    assert.ok(parseIdpMetadata(wrapped).ok);
    const doctype = parseIdpMetadata(`<!DOCTYPE x [<!ENTITY a "b">]>${xml.replace(/^<\?xml[^>]*>/, '')}`);
    assert.equal(doctype.ok, false);
    assert.equal(!doctype.ok && doctype.problem, 'doctype_forbidden');
  });
});

describe('attribute mapping', () => {
  it('Entra claim URIs and Okta names map by default; NameID is the email only in emailAddress format', () => {
    const m = effectiveMapping({});
    const entra = mapProfile(
      {
        nameID: 'opaque',
        nameIDFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
        attributes: {
          'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': 'Ann@Corp.COM',
          'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname': 'Ann',
          'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname': 'Lee',
          'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups': ['a', 'b', 'a'],
          'http://schemas.microsoft.com/identity/claims/objectidentifier': 'oid-1',
        },
      },
      m,
    );
    assert.deepEqual([entra.email, entra.firstName, entra.lastName, entra.name, entra.externalId], ['ann@corp.com', 'Ann', 'Lee', 'Ann Lee', 'oid-1']);
    assert.deepEqual(entra.groups, ['a', 'b']);
    const okta = mapProfile({ nameID: 'bo@corp.com', nameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress', attributes: { firstName: 'Bo', groups: 'eng' } }, m);
    assert.deepEqual([okta.email, okta.firstName, okta.groups], ['bo@corp.com', 'Bo', ['eng']]);
    const opaque = mapProfile({ nameID: 'x@y.com', nameIDFormat: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent' }, m);
    assert.equal(opaque.email, null);
    assert.deepEqual(effectiveMapping({ email: ['custom'] }).email, ['custom']);
    assert.deepEqual(effectiveMapping({ email: ['custom'] }).groups, [...DEFAULT_ATTRIBUTE_MAPPING.groups]);
  });
  it('emailDomain takes plain addresses only', () => {
    assert.equal(emailDomain('a@corp.com'), 'corp.com');
    assert.equal(emailDomain('a@b@corp.com'), null);
    assert.equal(emailDomain('<a@corp.com>'), null);
    assert.equal(emailDomain('a@corp.com.'), 'corp.com');
  });
});

describe('return URLs', () => {
  const allowed = ['https://app.example.com/sso/callback'];
  it('matches scheme, host, port and path; keeps the query; drops the fragment', () => {
    assert.equal(matchReturnUrl('https://app.example.com/sso/callback?s=1#frag', allowed), 'https://app.example.com/sso/callback?s=1');
    for (const bad of ['http://app.example.com/sso/callback', 'https://app.example.com:444/sso/callback', 'https://app.example.com/sso/callback/x', 'https://app.example.com.evil.net/sso/callback', 'https://user@app.example.com/sso/callback', '/sso/callback', 'javascript:alert(1)']) {
      assert.equal(matchReturnUrl(bad, allowed), null, bad);
    }
    assert.equal(withCode('https://app.example.com/cb?code=old&s=1', 'new'), 'https://app.example.com/cb?code=new&s=1');
  });
});

describe('node-saml error mapping', () => {
  it('maps the messages node-saml 5.1 throws to our codes', () => {
    const cases: [string, string][] = [
      ['Invalid document signature', 'signature_invalid'],
      ['Invalid signature', 'signature_invalid'],
      ['Invalid signature: multiple assertions', 'signature_invalid'],
      ['SAML assertion expired: clocks skewed too much', 'expired'],
      ['SAML assertion not yet valid', 'not_yet_valid'],
      ['SAML assertion audience mismatch. Expected: a Received: b', 'audience_mismatch'],
      ['InResponseTo is not valid', 'in_response_to_invalid'],
      ['something else entirely', 'invalid_response'],
    ];
    for (const [message, code] of cases) assert.equal(fromNodeSamlError(new Error(message)).code, code, message);
  });
});

describe('readEnvelope', () => {
  it('refuses DOCTYPE, non-base64, non-Response; reads Destination, InResponseTo, Issuer and status', () => {
    assert.throws(() => readEnvelope(toBase64('<!DOCTYPE x><x/>')), { code: 'doctype_forbidden' });
    assert.throws(() => readEnvelope('%%%'), { code: 'malformed_response' });
    assert.throws(() => readEnvelope(toBase64('<Response/>')), { code: 'malformed_response' });
    assert.throws(() => readEnvelope(toBase64('<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">')), { code: 'malformed_response' });
    const env = readEnvelope(
      toBase64(
        '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Destination="https://sp/acs" InResponseTo="_r1"><saml:Issuer> https://idp </saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:Response>',
      ),
    );
    assert.deepEqual([env.destination, env.inResponseTo, env.issuer, env.statusCode], ['https://sp/acs', '_r1', 'https://idp', 'urn:oasis:names:tc:SAML:2.0:status:Success']);
    assert.deepEqual(env.signatureAlgorithms, []);
  });

  it('lists the Algorithm of every SignatureMethod, in any namespace and decoded, so the key form follows what xml-crypto will read', () => {
    const RSA = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
    const env = readEnvelope(
      toBase64(
        `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">` +
          `<ds:Signature><ds:SignedInfo><ds:SignatureMethod Algorithm="${RSA}"/></ds:SignedInfo></ds:Signature>` +
          `<x:SignatureMethod xmlns:x="urn:elsewhere" Algorithm="http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF&#49;"/>` +
          `<SignatureMethod/></samlp:Response>`,
      ),
    );
    assert.deepEqual(env.signatureAlgorithms, [RSA, 'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1', null]);
  });
});
