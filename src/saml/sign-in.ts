import { randomBytes, randomUUID } from 'node:crypto';
import type { AppContext } from '../context.js';
import type { Db } from '../db/knex.js';
import type { SignInConnectionRow } from '../db/queries/sso-connections.js';
import type { SignInFacts, SignInPlan, SsoSignInQueries } from '../db/queries/sso-signin.js';
import { auditInsert, type AuditEvent } from '../audit/record.js';
import type { AuditActor } from '../auth/principal.js';
import { mintToken } from '../auth/tokens.js';
import { effectiveMapping, emailDomain, mapProfile } from './attributes.js';
import { createSamlRequestCache } from './cache.js';
import { assertionFacts, readEnvelope, STATUS_SUCCESS } from './envelope.js';
import { auditSafe, fail, forEncryptedResponse, fromNodeSamlError, SamlFailure } from './failures.js';
import { matchReturnUrl, withCode } from './return-urls.js';
import { normaliseDomain } from '../services/domains.js';
import { KEY_OBJECT_ALGORITHMS, REQUEST_TTL_MS, samlFor, spMetadataXml, spUrls } from './sp.js';

type Loaded = { row: SignInConnectionRow; idpCertificates: string[]; spPrivateKey: string | null };

/** The connection acts; `requestId` is the HTTP request's id (audit_events.request_id). */
const actorFor = (connectionId: string, requestId: string | undefined): AuditActor => ({ type: 'sso_connection', id: connectionId, requestId });

/**
 * The SAML flows: SP metadata, SP-initiated login (302 to the IdP), and the ACS that
 * turns a validated assertion into a session and a one-time code. node-saml checks the
 * signature, audience, Conditions times and InResponseTo; everything in `acs` marked
 * "ours" is what it leaves to us (STYLE.md §3).
 */
export function createSignInFlow(ctx: AppContext) {
  const { config } = ctx;
  const db: Db = ctx.db;
  const connections = ctx.services.ssoConnections;
  const queries: SsoSignInQueries = connections.signInQueries;

  async function loadConnection(connectionId: string): Promise<Loaded> {
    const loaded = await connections.forSignIn(connectionId);
    if (!loaded) throw fail('connection_not_found', 404, 'Unknown SSO connection');
    return loaded;
  }

  const spConfig = (c: Loaded, cacheProvider: ReturnType<typeof createSamlRequestCache>, keyObjects = false) => ({
    publicUrl: config.publicUrl,
    connectionId: c.row.id,
    idpEntityId: c.row.idp_entity_id,
    idpSsoUrl: c.row.idp_sso_url,
    idpCertificates: c.idpCertificates,
    spPrivateKey: c.spPrivateKey,
    spCertificate: c.row.sp_certificate,
    clockSkewMs: config.samlClockSkewMs,
    cacheProvider,
    keyObjects,
  });

  /** A refused ACS leaves one trace: `sso.sign_in_failed`, one statement (nothing else is written). */
  async function recordFailure(row: SignInConnectionRow, failure: SamlFailure, requestId: string | undefined) {
    const { sql, bindings } = auditInsert({
      orgId: row.org_id,
      actor: actorFor(row.id, requestId),
      action: 'sso.sign_in_failed',
      target: { type: 'sso_connection', id: row.id },
      after: { reason: failure.code, ...auditSafe(failure.details) },
    });
    await db.raw(sql, bindings);
  }
  /** The connection a refused ACS request had already loaded, so its audit needs no second read. */
  const loadedFor = new WeakMap<SamlFailure, SignInConnectionRow>();

  /**
   * Who signs in, decided on the facts `resolveSignIn` read. A SCIM directory of the org is
   * the authority over the users it manages: their membership is never created, re-activated
   * or re-roled here. Others join by domain capture (the domain's role) or JIT (the
   * connection's default role), or are refused.
   */
  function decideMember(c: SignInConnectionRow, email: string, facts: SignInFacts & { domain: NonNullable<SignInFacts['domain']> }) {
    const { user, membership } = facts;
    if (user && user.status !== 'active') throw fail('suspended', 403, 'This account is suspended');
    if (user) {
      if (facts.scimLinksActive.length) {
        if (!membership) throw fail('not_provisioned', 403, 'This account is not provisioned in the organization', { userId: user.id });
        if (membership.status !== 'active' || facts.scimLinksActive.some((active) => !active)) {
          throw fail('suspended', 403, 'This membership is suspended by the directory', { userId: user.id });
        }
        return { user, join: null };
      }
      if (membership) {
        if (membership.status !== 'active') throw fail('suspended', 403, 'This membership is suspended', { userId: user.id });
        return { user, join: null };
      }
    }
    const join = facts.domain.capture_enabled
      ? { source: 'domain_capture' as const, role: facts.domain.capture_role }
      : c.jit_enabled
        ? { source: 'sso_jit' as const, role: c.default_role as string }
        : null;
    if (!join) throw fail('not_provisioned', 403, 'This account is not provisioned in the organization', { email });
    return { user, join };
  }

  /** A database error the sign-in resolves by reading again: a concurrent first sign-in created the account or membership. */
  const isJoinRace = (err: unknown) => {
    const { code, constraint } = (err ?? {}) as { code?: unknown; constraint?: unknown };
    return code === '23505' && (constraint === 'users_email_lower_key' || constraint === 'memberships_pkey');
  };

  async function acsFor(c: Loaded, form: { SAMLResponse?: unknown; RelayState?: unknown }, requestId: string | undefined): Promise<string> {
    const { row } = c;
    if (!row.enabled) throw fail('connection_disabled', 403, 'This SSO connection is disabled');
    // a parameter sent twice arrives as an array: which copy would be checked and which used? Refused.
    if (Array.isArray(form.SAMLResponse) || Array.isArray(form.RelayState)) {
      throw fail('malformed_request', 400, 'SAMLResponse and RelayState must each be sent at most once');
    }
    if (typeof form.SAMLResponse !== 'string') throw fail('missing_response', 400, 'SAMLResponse is missing');
    const relayState = typeof form.RelayState === 'string' ? form.RelayState : null;
    const { acsUrl } = spUrls(config.publicUrl, row.id);

    // ours: no DOCTYPE, one Response, its status, Destination and Issuer
    const envelope = readEnvelope(form.SAMLResponse);
    if (envelope.version !== '2.0') throw fail('version_mismatch', 400, 'Only SAML 2.0 responses are accepted', { version: envelope.version });
    if (envelope.statusCode !== STATUS_SUCCESS) {
      throw fail('idp_status_error', 401, 'The identity provider did not report success', { status: envelope.statusCode });
    }
    if (envelope.destination === null && envelope.signed) {
      throw fail('destination_mismatch', 401, 'A signed response must name its Destination (SAML bindings §3.5.5.2)');
    }
    if (envelope.destination !== null && envelope.destination !== acsUrl) {
      throw fail('destination_mismatch', 401, 'The response is addressed to another endpoint', { destination: envelope.destination });
    }
    if (envelope.issuer !== null && envelope.issuer !== row.idp_entity_id) {
      throw fail('issuer_mismatch', 401, 'The response comes from another identity provider', { issuer: envelope.issuer });
    }

    // SP-initiated (InResponseTo names our request) or IdP-initiated (unsolicited)
    let returnTo: string | null;
    let known: { id: string; issueInstant: string } | undefined;
    if (envelope.inResponseTo) {
      const pending = await queries.findLiveRequest(row.id, envelope.inResponseTo);
      if (!pending) throw fail('in_response_to_invalid', 401, 'The response does not answer a pending sign-in request');
      if (pending.relay_state && relayState !== pending.relay_state) {
        throw fail('relay_state_mismatch', 401, 'RelayState does not belong to this sign-in request');
      }
      returnTo = pending.return_to;
      known = { id: pending.id, issueInstant: pending.issue_instant };
    } else {
      if (!row.allow_idp_initiated) throw fail('idp_initiated_disabled', 403, 'IdP-initiated sign-in is disabled for this connection');
      returnTo = row.default_return_url;
    }
    if (!returnTo) throw fail('return_url_required', 400, 'The connection has no default return URL for IdP-initiated sign-in');

    // node-saml: signature (one of the connection's certificates), decryption, Conditions times, audience, InResponseTo
    // (its InResponseTo lookup is answered from the request read just above)
    const cache = createSamlRequestCache(queries, { orgId: row.org_id, connectionId: row.id, consumeLater: true, known });
    // the certificates' decoded public keys when every signature in sight is RSA PKCS#1 (sp.ts)
    const keyObjects =
      !envelope.encrypted &&
      envelope.signatureAlgorithms.length > 0 &&
      envelope.signatureAlgorithms.every((algorithm) => algorithm !== null && KEY_OBJECT_ALGORITHMS.has(algorithm));
    let validated;
    try {
      validated = await samlFor(spConfig(c, cache, keyObjects)).validateParsedResponse(envelope.xml, envelope.root, form.SAMLResponse);
    } catch (err) {
      const failure = fromNodeSamlError(err);
      throw envelope.encrypted ? forEncryptedResponse(failure) : failure;
    }
    const profile = validated.profile;
    if (!profile) throw fail('invalid_response', 400, 'The response carries no assertion');

    // ours, on the signed assertion: issuer, recipient, bearer confirmation times, InResponseTo binding
    if (profile.issuer !== row.idp_entity_id) {
      throw fail('issuer_mismatch', 401, 'The assertion comes from another identity provider', { issuer: profile.issuer ?? null });
    }
    const facts = assertionFacts(profile.getAssertion?.());
    if (!facts.id) throw fail('invalid_response', 400, 'The assertion has no ID');
    if (facts.version !== '2.0') throw fail('version_mismatch', 400, 'Only SAML 2.0 assertions are accepted', { version: facts.version });
    // SAML profiles §4.1.4.2 (Web Browser SSO): a bearer SubjectConfirmation whose data names our ACS
    // as Recipient, carries NotOnOrAfter, MUST NOT carry NotBefore, and repeats the request id when
    // answering one; and the assertion MUST carry an AuthnStatement.
    if (!facts.bearer.length) {
      throw fail('subject_confirmation_invalid', 401, 'The assertion has no bearer subject confirmation', { methods: facts.confirmationMethods });
    }
    const confirmation = facts.bearer.find((b) => b.recipient === acsUrl);
    if (!confirmation) {
      throw fail('recipient_mismatch', 401, 'The assertion is addressed to another endpoint', { recipients: facts.bearer.map((b) => b.recipient) });
    }
    const confirmationEnd = confirmation.notOnOrAfter ? Date.parse(confirmation.notOnOrAfter) : NaN;
    if (!Number.isFinite(confirmationEnd)) {
      throw fail('subject_confirmation_invalid', 401, 'The bearer confirmation has no valid NotOnOrAfter', { notOnOrAfter: confirmation.notOnOrAfter });
    }
    if (confirmation.notBefore !== null) {
      throw fail('subject_confirmation_invalid', 401, 'A bearer confirmation must not carry NotBefore', { notBefore: confirmation.notBefore });
    }
    const now = Date.now();
    if (now - config.samlClockSkewMs >= confirmationEnd) throw fail('expired', 401, 'The assertion has expired');
    // The Response's InResponseTo is unsigned when only the assertion is signed: the signed copy must agree,
    // both ways, or an unsolicited assertion could be passed off as the answer to someone's pending request.
    if ((confirmation.inResponseTo || null) !== envelope.inResponseTo) {
      throw fail('in_response_to_invalid', 401, 'The assertion answers another request', {
        assertionInResponseTo: confirmation.inResponseTo,
        responseInResponseTo: envelope.inResponseTo,
      });
    }
    if (!facts.hasAuthnStatement) throw fail('authn_statement_missing', 401, 'The assertion carries no authentication statement');

    const mapped = mapProfile(profile as Parameters<typeof mapProfile>[0], effectiveMapping(row.attribute_mapping));
    if (!mapped.email) throw fail('email_missing', 403, 'The assertion carries no email address', { assertionId: facts.id });
    const email = mapped.email;
    // the same canonical form domains are stored in (lower case, IDN as punycode)
    const rawDomain = emailDomain(email);
    const parsedDomain = rawDomain ? normaliseDomain(rawDomain) : undefined;
    const domain = parsedDomain?.ok ? parsedDomain.domain : rawDomain;
    const details = { assertionId: facts.id, email };
    const replayUntil = Math.max(
      now + REQUEST_TTL_MS,
      ...[confirmation.notOnOrAfter, facts.conditionsNotOnOrAfter].map((t) => (t ? Date.parse(t) : 0)).filter(Number.isFinite),
    );

    try {
      return await signIn({ row, assertionId: facts.id, email, domain, mapped, inResponseTo: envelope.inResponseTo, replayUntil, returnTo, requestId });
    } catch (err) {
      if (err instanceof SamlFailure) throw new SamlFailure(err.code, err.status, err.message, { ...details, ...err.details });
      throw err;
    }
  }

  /**
   * The sign-in after every check of the response passed: one read decides the member (in the
   * order the checks were always made: replay, domain, member rules), one statement writes it
   * all (`completeSignIn`) and re-checks, atomically, what a concurrent request could have
   * changed meanwhile. A concurrent first sign-in of the same person makes it read once more.
   */
  async function signIn(input: {
    row: SignInConnectionRow;
    assertionId: string;
    email: string;
    domain: string | null;
    mapped: ReturnType<typeof mapProfile>;
    inResponseTo: string | null;
    replayUntil: number;
    returnTo: string;
    requestId: string | undefined;
  }): Promise<string> {
    const { row, assertionId, email, mapped, inResponseTo } = input;
    const actor = actorFor(row.id, input.requestId);
    for (let attempt = 0; ; attempt++) {
      const facts = await queries.resolveSignIn({
        orgId: row.org_id,
        connectionId: row.id,
        assertionId,
        domain: input.domain,
        email,
        externalId: mapped.externalId,
      });
      // ours: replay cache (made atomic across instances by the write below)
      if (facts.used) throw fail('replayed', 401, 'This assertion was already used');
      if (!facts.domain) throw fail('domain_not_verified', 403, "The email's domain is not verified by this organization", { domain: input.domain });
      const { user, join } = decideMember(row, email, { ...facts, domain: facts.domain });

      const userId = user?.id ?? randomUUID();
      const session = connections.sessions.prepare({ userId, amr: ['sso'], ssoConnectionId: row.id, ssoOrgId: row.org_id }, actor);
      const { token: code, hash } = mintToken('ssoc');
      const event = (action: string, after: Record<string, unknown>): AuditEvent => ({ orgId: row.org_id, actor, action, target: { type: 'user', id: userId }, after });
      const name = mapped.name?.slice(0, 256) ?? null;
      const plan: SignInPlan = {
        orgId: row.org_id,
        connectionId: row.id,
        assertionId,
        replayExpiresAt: new Date(input.replayUntil + config.samlClockSkewMs),
        inResponseTo,
        userId,
        newUser:
          user || !join
            ? null
            : { email, name, audit: (onlyIf) => auditInsert(event('user.created', { email, name, source: join.source }), { onlyIf }) },
        membership: join
          ? {
              role: join.role,
              source: join.source,
              audit: (onlyIf) => auditInsert(event('member.added', { role: join.role, status: 'active', source: join.source }), { onlyIf }),
            }
          : null,
        session: { values: session.values, audit: (onlyIf) => auditInsert(session.audit, { onlyIf }) },
        code: { code_hash: hash, profile: { ...mapped, idpEntityId: row.idp_entity_id }, expires_at: new Date(Date.now() + config.ssoCodeTtlMs) },
        signedInAudit: (onlyIf) =>
          auditInsert(
            event('sso.signed_in', { sessionId: session.values.id, assertionId, email, joined: join?.source ?? null, idpInitiated: !inResponseTo }),
            { onlyIf },
          ),
      };

      let outcome;
      try {
        outcome = await queries.completeSignIn(plan);
      } catch (err) {
        if (attempt === 0 && isJoinRace(err)) continue;
        throw err;
      }
      if (outcome.done) return withCode(input.returnTo, code);
      // ours: the AuthnRequest is consumed with the sign-in, once (a concurrent twin finds it gone)
      if (!outcome.requestFound) throw fail('in_response_to_invalid', 401, 'The sign-in request was already answered');
      if (!outcome.userActive) {
        // suspended (or removed) since it was read: read again, once, for the right answer
        if (attempt === 0) continue;
        throw fail('suspended', 403, 'This account is suspended', { userId });
      }
      if (!outcome.fresh) throw fail('replayed', 401, 'This assertion was already used');
      throw new Error('the sign-in statement stopped without a reason');
    }
  }

  return {
    async metadata(connectionId: string): Promise<string> {
      const c = await loadConnection(connectionId);
      return spMetadataXml({ publicUrl: config.publicUrl, connectionId: c.row.id, spPrivateKey: c.spPrivateKey, spCertificate: c.row.sp_certificate });
    },

    /** SP-initiated: remember the request id, the relay state and the validated return URL; 302 to the IdP. */
    async login(connectionId: string, returnTo: string | undefined): Promise<string> {
      const c = await loadConnection(connectionId);
      if (!c.row.enabled) throw fail('connection_disabled', 403, 'This SSO connection is disabled');
      const allowed = [...c.row.allowed_return_urls, ...(c.row.default_return_url ? [c.row.default_return_url] : [])];
      const target = returnTo === undefined ? c.row.default_return_url : matchReturnUrl(returnTo, allowed);
      if (!target) {
        throw returnTo === undefined
          ? fail('return_url_required', 400, 'returnTo is required (the connection has no default return URL)')
          : fail('return_url_not_allowed', 400, 'returnTo is not one of the allowed return URLs');
      }
      const relayState = randomBytes(24).toString('base64url');
      const cache = createSamlRequestCache(queries, {
        orgId: c.row.org_id,
        connectionId: c.row.id,
        pending: { relayState, returnTo: target },
        purgeOnSave: true,
      });
      return samlFor(spConfig(c, cache)).getAuthorizeUrlAsync(relayState, undefined, {});
    },

    /** Writes `sso.sign_in_failed` (when the connection is known) and returns the failure to answer with. */
    async recordFailure(connectionId: string, err: unknown, requestId?: string): Promise<SamlFailure> {
      const failure = err instanceof SamlFailure ? err : fromNodeSamlError(err);
      const row =
        loadedFor.get(failure) ??
        (failure.code === 'connection_not_found' ? undefined : (await connections.forSignIn(connectionId).catch(() => undefined))?.row);
      if (row) await recordFailure(row, failure, requestId);
      return failure;
    },

    /** The ACS: validate, read what decides the member (one statement), then write the sign-in atomically (one statement). */
    async acs(connectionId: string, form: { SAMLResponse?: unknown; RelayState?: unknown }, requestId?: string): Promise<string> {
      const c = await loadConnection(connectionId);
      try {
        return await acsFor(c, form, requestId);
      } catch (err) {
        if (err instanceof SamlFailure) loadedFor.set(err, c.row);
        throw err;
      }
    },
  };
}
