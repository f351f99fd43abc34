import { DOMParser } from '@xmldom/xmldom';
import xpath from 'xpath';
import { SignedXml } from 'xml-crypto';
import { buildResponse, generateKeyPair } from '../../test/helpers/idp.js';
import { expectStatus, request } from '../lib/http.js';
import { runConcurrent } from '../lib/stats.js';
import { admin, createTenant, phase, warmup, type BenchContext } from './context.js';
import { rawRateRow } from './targets.js';

/**
 * Workload 5, SSO: IdP-initiated SAML responses, signed by the test IdP
 * (test/helpers/idp.ts, xml-crypto), each with its own assertion id, posted to the
 * ACS. A third of the sign-ins create their user (JIT), the rest are returning users.
 * Raw: xml-crypto verifying the same signed responses in this process.
 * Responses are signed before the clock starts, so signing does not load the machine.
 * Warm-up (unmeasured): sign-ins of other people through the same connection, with their
 * own responses, and xml-crypto verifying those.
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
  const warmCount = ctx.sizes.warm.signIns;
  const warmPeople = Math.max(1, Math.floor(warmCount / 3));
  ctx.log(`5 sso: signing ${warmCount} warm-up responses for ${warmPeople} people and ${count} measured ones for ${people} people`);
  const sign = (n: number, person: (i: number) => string) =>
    Array.from({ length: n }, (_, i) =>
      buildResponse({ acsUrl: connection.acsUrl, spEntityId: connection.spEntityId, idpEntityId, nameId: `${person(i)}@${domain}` }, idp, 'assertion'),
    );
  // warm-up people are not measured people: the measured part keeps its mix of JIT and returning sign-ins
  const warmResponses = sign(warmCount, (i) => `warm-person-${i % warmPeople}`);
  const responses = sign(count, (i) => `person-${i % people}`);
  const acsPath = new URL(connection.acsUrl).pathname;
  // signing blocked this process's event loop: let it notice keep-alive sockets the service closed meanwhile
  await settle();

  const signIns = (list: typeof responses) =>
    runConcurrent(list.length, ctx.concurrency, async (i) => {
      const res = expectStatus(await request(ctx.engine.base, 'POST', acsPath, { form: { SAMLResponse: list[i]!.base64 } }), [302], 'acs');
      const location = String(res.headers.location ?? '');
      if (!location.startsWith(RETURN_URL) || !new URL(location).searchParams.get('code')) throw new Error(`unexpected redirect ${location}`);
    });
  // Raw limit: parse each response and verify its assertion signature with xml-crypto.
  const verifies = (list: typeof responses) =>
    runConcurrent(list.length, 1, async (i) => {
      const xml = list[i]!.xml;
      const doc = new DOMParser().parseFromString(xml, 'text/xml');
      const signature = xpath.select1(`//*[local-name(.)='Signature' and namespace-uri(.)='${DSIG}']`, doc as unknown as Node) as Node | undefined;
      if (!signature) throw new Error('no signature');
      const sig = new SignedXml({ publicCert: idp.cert });
      sig.loadSignature(signature);
      if (!sig.checkSignature(xml)) throw new Error('signature does not verify');
    });

  const W = '5 sso';
  ctx.log(`5 sso: ${count} sign-ins at concurrency ${ctx.concurrency} (after ${warmCount} unmeasured)`);
  await warmup(ctx, W, 'app', 'sign-ins', () => signIns(warmResponses));
  const app = await phase(ctx, W, 'app', { unit: 'sign-ins' }, () => signIns(responses));
  await warmup(ctx, W, 'raw', 'sign-ins', () => verifies(warmResponses), { database: false });
  const raw = await phase(ctx, W, 'raw', { unit: 'sign-ins', database: false }, () => verifies(responses));

  await settle();

  ctx.rows.push(rawRateRow('5 sso ACS sign-in: sign-ins/s', app, raw, `raw = xml-crypto checkSignature of the same responses, in the bench process; ${people} people, ${count - people} returning sign-ins`));
  return undefined;
}
