import { inflateRawSync } from 'node:zlib';
import type { TestApp } from './app.js';
import { insertOrg, insertUser } from './fixtures.js';
import { buildResponse, generateKeyPair, type KeyPair, type ResponseOptions, type SignMode } from './idp.js';

/** An org with a verified domain, an IdP key pair and a SAML connection created through the admin API. */
export const RETURN_URL = 'https://app.example.com/sso/callback';

export type SamlSetup = {
  org: { id: string; slug: string };
  owner: { id: string; email: string };
  domain: string;
  idp: KeyPair;
  idpEntityId: string;
  connection: { id: string; acsUrl: string; spEntityId: string; loginUrl: string; metadataUrl: string; spCertificate: string };
};

let counter = 0;
export async function samlSetup(t: TestApp, opts: { domain?: string; connection?: Record<string, unknown>; idp?: KeyPair } = {}): Promise<SamlSetup> {
  counter += 1;
  const domain = opts.domain ?? `corp${counter}-${Date.now().toString(36)}.example.com`;
  const owner = await insertUser(t);
  const org = await insertOrg(t, { ownerId: owner.id });
  await t.testDb.db('domains').insert({ org_id: org.id, domain, status: 'verified', verified_at: new Date(), verification_token: 'x', verification_method: 'manual' });
  const idp = opts.idp ?? (await generateKeyPair());
  const idpEntityId = `https://idp.test/${org.slug}`;
  const res = await t.http
    .post(`/api/v1/orgs/${org.id}/sso-connections`)
    .set('Authorization', t.adminAuth)
    .send({
      idpEntityId,
      idpSsoUrl: 'https://idp.test/sso',
      idpCertificates: [idp.cert],
      allowedReturnUrls: [RETURN_URL],
      defaultReturnUrl: RETURN_URL,
      ...opts.connection,
    });
  if (res.status !== 201) throw new Error(`connection create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { org, owner, domain, idp, idpEntityId, connection: res.body };
}

/** The options a well-behaved IdP would use for this connection. */
export function responseFor(s: SamlSetup, email: string, extra: Partial<ResponseOptions> = {}): ResponseOptions {
  return { acsUrl: s.connection.acsUrl, spEntityId: s.connection.spEntityId, idpEntityId: s.idpEntityId, nameId: email, ...extra };
}

export function signedResponse(s: SamlSetup, email: string, extra: Partial<ResponseOptions> = {}, sign: SignMode = 'assertion', key?: KeyPair) {
  return buildResponse(responseFor(s, email, extra), key ?? s.idp, sign);
}

/** SP-initiated start: GET /login → the AuthnRequest id and RelayState the IdP would answer to. */
export async function startLogin(t: TestApp, connectionId: string, returnTo: string = RETURN_URL) {
  const res = await t.http.get(`/sso/saml/${connectionId}/login`).query({ returnTo });
  if (res.status !== 302) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  const url = new URL(res.headers.location!);
  const request = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  const requestId = /\sID="([^"]+)"/.exec(request)![1]!;
  return { url, request, requestId, relayState: url.searchParams.get('RelayState')! };
}

export function postAcs(t: TestApp, connectionId: string, base64: string, relayState?: string) {
  return t.http
    .post(`/sso/saml/${connectionId}/acs`)
    .type('form')
    .send({ SAMLResponse: base64, ...(relayState ? { RelayState: relayState } : {}) });
}

/** The `code` of a successful ACS redirect. */
export function codeFrom(location: string | undefined): string {
  const code = location ? new URL(location).searchParams.get('code') : null;
  if (!code) throw new Error(`no code in ${location}`);
  return code;
}

export async function failureReasons(t: TestApp, connectionId: string): Promise<string[]> {
  const rows = await t.testDb.db('audit_events').where({ action: 'sso.sign_in_failed', target_id: connectionId }).orderBy('id');
  return rows.map((r: { after: { reason: string } }) => r.after.reason);
}
