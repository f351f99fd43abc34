import { DOMParser } from '@xmldom/xmldom';
import xpath from 'xpath';
import { SignedXml } from 'xml-crypto';
import { buildResponse, generateKeyPair } from '../../test/helpers/idp.js';
import { expectStatus, request } from '../lib/http.js';
import { runConcurrent } from '../lib/stats.js';
import { admin, createTenant, type BenchContext } from './context.js';
import { rawRateRow } from './targets.js';

/**
 * Workload 5, SSO: IdP-initiated SAML responses, signed by the test IdP
 * (test/helpers/idp.ts, xml-crypto), each with its own assertion id, posted to the
 * ACS. A third of the sign-ins create their user (JIT), the rest are returning users.
 * Raw: xml-crypto verifying the same signed responses in this process.
 * Responses are signed before the clock starts, so signing does not load the machine.
 */
const RETURN_URL = 'https://app.bench.example/sso/callback';
const DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

export async function runSso(ctx: BenchContext): Promise<string | undefined> {
  const tenant = await createTenant(ctx, 'sso');
  const orgId = tenant.orgId;
  const domain = `sso-${ctx.tag}.example.com`;
  expectStatus(await admin(ctx, 'POST', `/orgs/${orgId}/domains`, { domain }), [201], 'domain');
  expectStatus(await admin(ctx, 'POST', `/orgs/${orgId}/domains/${domain}/verify`, { method: 'manual' }), [200], 'verify domain');
  const idp = await generateKeyPair('bench-idp');
  const idpEntityId = `https://idp.bench.example/${ctx.tag}`;
  const connection = expectStatus(
    await admin(ctx, 'POST', `/orgs/${orgId}/sso-connections`, {
      idpEntityId,
      idpSsoUrl: 'https://idp.bench.example/sso',
      idpCertificates: [idp.cert],
      allowedReturnUrls: [RETURN_URL],
      defaultReturnUrl: RETURN_URL,
    }),
    [201],
    'sso connection',
  ).body as { id: string; acsUrl: string; spEntityId: string };

  const count = ctx.sizes.signIns;
  const people = Math.max(1, Math.floor(count / 3));
  ctx.log(`5 sso: signing ${count} responses for ${people} people`);
  const responses = Array.from({ length: count }, (_, i) =>
    buildResponse(
      { acsUrl: connection.acsUrl, spEntityId: connection.spEntityId, idpEntityId, nameId: `person-${i % people}@${domain}` },
      idp,
      'assertion',
    ),
  );
  const acsPath = new URL(connection.acsUrl).pathname;
  // signing blocked this process's event loop: let it notice keep-alive sockets the service closed meanwhile
  await settle();

  ctx.log(`5 sso: ${count} sign-ins at concurrency ${ctx.concurrency}`);
  const app = await runConcurrent(count, ctx.concurrency, async (i) => {
    const res = expectStatus(await request(ctx.engine.base, 'POST', acsPath, { form: { SAMLResponse: responses[i]!.base64 } }), [302], 'acs');
    const location = String(res.headers.location ?? '');
    if (!location.startsWith(RETURN_URL) || !new URL(location).searchParams.get('code')) throw new Error(`unexpected redirect ${location}`);
  });

  // Raw limit: parse each response and verify its assertion signature with xml-crypto.
  const raw = await runConcurrent(count, 1, async (i) => {
    const xml = responses[i]!.xml;
    const doc = new DOMParser().parseFromString(xml, 'text/xml');
    const signature = xpath.select1(`//*[local-name(.)='Signature' and namespace-uri(.)='${DSIG}']`, doc as unknown as Node) as Node | undefined;
    if (!signature) throw new Error('no signature');
    const sig = new SignedXml({ publicCert: idp.cert });
    sig.loadSignature(signature);
    if (!sig.checkSignature(xml)) throw new Error('signature does not verify');
  });

  await settle();

  ctx.rows.push(rawRateRow('5 sso ACS sign-in: sign-ins/s', app, raw, `raw = xml-crypto checkSignature of the same responses, in the bench process; ${people} people, ${count - people} returning sign-ins`));
  return undefined;
}
