import { generateKeyPair, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { generate as generateSelfSigned } from 'selfsigned';
import type { CoreDeps } from '../context.js';
import type { Queryable } from '../db/knex.js';
import { createSsoConnectionQueries, type SsoCertificateRow, type SsoConnectionRow } from '../db/queries/sso-connections.js';
import { createSsoSignInQueries } from '../db/queries/sso-signin.js';
import { recordAudit } from '../audit/record.js';
import { actorOf, type Principal } from '../auth/principal.js';
import { createSecretBox, parseSecretKey, type SecretBox } from '../auth/secret-box.js';
import { hashToken, mintToken } from '../auth/tokens.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import { isUuid } from '../http/params.js';
import { decodeCursor, toPage, type ListQuery } from '../http/pagination.js';
import { parseCertificate, type ParsedCertificate } from '../saml/certificates.js';
import { parseIdpMetadata } from '../saml/idp-metadata.js';
import { effectiveMapping, emailDomain, type AttributeMappingInput } from '../saml/attributes.js';
import { isAcceptableReturnUrl, matchReturnUrl } from '../saml/return-urls.js';
import { spUrls } from '../saml/sp.js';
import { normaliseDomain } from './domains.js';
import type { AuthzService } from './authz.js';
import { presentSession, type SessionService } from './sessions.js';
import type { SessionRow } from '../db/queries/sessions.js';

type Role = 'admin' | 'member' | 'viewer';

export type ConnectionInput = {
  name?: string;
  enabled?: boolean;
  idpEntityId?: string;
  idpSsoUrl?: string;
  idpCertificates?: string[];
  idpMetadataXml?: string;
  attributeMapping?: AttributeMappingInput;
  allowIdpInitiated?: boolean;
  jitEnabled?: boolean;
  defaultRole?: Role;
  allowedReturnUrls?: string[];
  defaultReturnUrl?: string | null;
};

function presentCertificate(row: SsoCertificateRow) {
  const parsed = parseCertificate(row.pem);
  return {
    id: row.id,
    fingerprintSha256: row.fingerprint_sha256,
    subject: parsed?.subject ?? null,
    issuer: parsed?.issuer ?? null,
    notBefore: row.not_before,
    notAfter: row.not_after,
    expired: row.not_after ? row.not_after.getTime() < Date.now() : false,
    pem: row.pem,
  };
}

export function presentConnection(publicUrl: string, row: SsoConnectionRow, certs: SsoCertificateRow[]) {
  return {
    id: row.id,
    orgId: row.org_id,
    name: row.name,
    enabled: row.enabled,
    idpEntityId: row.idp_entity_id,
    idpSsoUrl: row.idp_sso_url,
    idpCertificates: certs.filter((c) => c.connection_id === row.id).map(presentCertificate),
    idpMetadataImported: row.idp_metadata_xml !== null,
    ...spUrls(publicUrl, row.id),
    spCertificate: row.sp_certificate,
    attributeMapping: effectiveMapping(row.attribute_mapping),
    allowIdpInitiated: row.allow_idp_initiated,
    jitEnabled: row.jit_enabled,
    defaultRole: row.default_role,
    allowedReturnUrls: row.allowed_return_urls,
    defaultReturnUrl: row.default_return_url,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** A short summary for audit before/after (no PEMs, no keys). */
const auditView = (row: SsoConnectionRow, certs: { fingerprint_sha256: string }[]) => ({
  name: row.name,
  enabled: row.enabled,
  idpEntityId: row.idp_entity_id,
  idpSsoUrl: row.idp_sso_url,
  certificateFingerprints: certs.map((c) => c.fingerprint_sha256),
  allowIdpInitiated: row.allow_idp_initiated,
  jitEnabled: row.jit_enabled,
  defaultRole: row.default_role,
  allowedReturnUrls: row.allowed_return_urls,
  defaultReturnUrl: row.default_return_url,
});

function parseCertificatesOrThrow(inputs: string[], path: string): ParsedCertificate[] {
  const problems: { path: string; message: string }[] = [];
  const parsed: ParsedCertificate[] = [];
  inputs.forEach((input, i) => {
    const cert = parseCertificate(input);
    if (cert) parsed.push(cert);
    else problems.push({ path: `${path}.${i}`, message: 'not an X.509 certificate (PEM or base64 DER)' });
  });
  if (problems.length) throw badRequest('sso_connection.invalid_certificate', 'A certificate could not be parsed', problems);
  // the same certificate twice is one certificate
  return [...new Map(parsed.map((c) => [c.fingerprintSha256, c])).values()];
}

type IdpSettings = { entityId: string; ssoUrl: string; certificates: ParsedCertificate[]; metadataXml: string | null };

/** The IdP side from either the three fields or metadata XML (not both). */
function resolveIdp(input: ConnectionInput, current?: SsoConnectionRow): IdpSettings | null {
  const fields = input.idpEntityId !== undefined || input.idpSsoUrl !== undefined || input.idpCertificates !== undefined;
  if (input.idpMetadataXml !== undefined) {
    if (fields) {
      throw badRequest('sso_connection.ambiguous_idp', 'Send either idpMetadataXml or idpEntityId/idpSsoUrl/idpCertificates, not both');
    }
    const meta = parseIdpMetadata(input.idpMetadataXml);
    if (!meta.ok) throw badRequest(`sso_connection.metadata_${meta.problem}`, meta.message);
    if (!/^https?:\/\//.test(meta.value.ssoUrl)) throw badRequest('sso_connection.metadata_no_redirect_sso', 'The SSO URL must be http(s)');
    return {
      entityId: meta.value.entityId,
      ssoUrl: meta.value.ssoUrl,
      certificates: parseCertificatesOrThrow(meta.value.certificates, 'idpMetadataXml.certificates'),
      metadataXml: input.idpMetadataXml,
    };
  }
  if (!fields) return null;
  if (!current && (input.idpEntityId === undefined || input.idpSsoUrl === undefined || input.idpCertificates === undefined)) {
    throw badRequest('sso_connection.idp_required', 'Send idpMetadataXml, or all of idpEntityId, idpSsoUrl and idpCertificates');
  }
  return {
    entityId: input.idpEntityId ?? current!.idp_entity_id,
    ssoUrl: input.idpSsoUrl ?? current!.idp_sso_url,
    certificates: input.idpCertificates ? parseCertificatesOrThrow(input.idpCertificates, 'idpCertificates') : [],
    metadataXml: null,
  };
}

function checkReturnUrls(allowed: string[], defaultUrl: string | null) {
  allowed.forEach((u, i) => {
    if (!isAcceptableReturnUrl(u)) throw badRequest('sso_connection.invalid_return_url', `allowedReturnUrls.${i} must be an absolute http(s) URL`);
  });
  if (defaultUrl !== null && !matchReturnUrl(defaultUrl, allowed)) {
    throw badRequest('sso_connection.invalid_return_url', 'defaultReturnUrl must match one of allowedReturnUrls');
  }
}

const certRows = (certs: ParsedCertificate[]) =>
  certs.map((c) => ({ pem: c.pem, fingerprint_sha256: c.fingerprintSha256, not_before: c.notBefore, not_after: c.notAfter }));

export function createSsoConnectionService(deps: CoreDeps, authz: AuthzService, sessions: SessionService) {
  const { db, config } = deps;
  const queries = createSsoConnectionQueries(db);
  const signIn = createSsoSignInQueries(db);
  let box: SecretBox | undefined;
  const secretBox = () => {
    if (!config.secretKey) throw new AppError('config.secret_key_missing', 500, 'SECRET_KEY is not configured');
    return (box ??= createSecretBox(parseSecretKey(config.secretKey)));
  };
  /**
   * The opened SP private key per connection, kept while the sealed value read from the row is
   * the same (a new key pair is a new sealed value): the SAML endpoints read the row on every
   * request, and only the decryption is skipped. Bounded; the oldest entry goes first.
   */
  const openedKeys = new Map<string, { sealed: string; pem: string }>();
  const openSpPrivateKey = (row: Pick<SsoConnectionRow, 'id' | 'sp_private_key_encrypted'>): string | null => {
    const sealed = row.sp_private_key_encrypted;
    if (!sealed) return null;
    const cached = openedKeys.get(row.id);
    if (cached?.sealed === sealed) return cached.pem;
    const pem = secretBox().open(sealed);
    openedKeys.delete(row.id);
    if (openedKeys.size >= 1000) openedKeys.delete(openedKeys.keys().next().value!);
    openedKeys.set(row.id, { sealed, pem });
    return pem;
  };
  const present = (row: SsoConnectionRow, certs: SsoCertificateRow[]) => presentConnection(config.publicUrl, row, certs);

  async function load(orgId: string, connectionId: string, q: Queryable = db) {
    const row = isUuid(connectionId) ? await queries.find(orgId, connectionId, q) : undefined;
    if (!row) throw notFound('SSO connection');
    return row;
  }

  /** The SP's own key pair: a self-signed certificate IdPs encrypt assertions to; the private key is sealed at rest. */
  async function generateSpKeyPair(connectionId: string) {
    // node:crypto generates the RSA key natively (selfsigned's own keygen is slow JavaScript)
    const keyPair = await promisify(generateKeyPair)('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    const pems = await generateSelfSigned([{ name: 'commonName', value: `saml-sp-${connectionId}` }], {
      keyPair,
      algorithm: 'sha256',
      notAfterDate: new Date(Date.now() + 10 * 365 * 24 * 3_600_000),
    });
    return { sp_certificate: pems.cert.trim(), sp_private_key_encrypted: secretBox().seal(pems.private) };
  }

  return {
    async list(principal: Principal, orgId: string, page: ListQuery) {
      await authz.requireOrg(principal, orgId, 'sso:manage');
      const after = page.after === undefined ? undefined : String(decodeCursor(page.after, 1)[0]);
      if (after !== undefined && !isUuid(after)) throw badRequest('validation.invalid_cursor', 'The `after` cursor is not valid');
      const rows = await queries.list(orgId, { after, limit: page.limit });
      const certs = await queries.certificates(orgId, rows.map((r) => r.id));
      return toPage(rows, page.limit, (r) => [r.id], (r) => present(r, certs));
    },

    async get(principal: Principal, orgId: string, connectionId: string) {
      await authz.requireOrg(principal, orgId, 'sso:manage');
      const row = await load(orgId, connectionId);
      return present(row, await queries.certificates(orgId, [row.id]));
    },

    async create(principal: Principal, orgId: string, input: ConnectionInput) {
      await authz.requireOrg(principal, orgId, 'sso:manage');
      const idp = resolveIdp(input);
      if (!idp) throw badRequest('sso_connection.idp_required', 'Send idpMetadataXml, or all of idpEntityId, idpSsoUrl and idpCertificates');
      const allowed = input.allowedReturnUrls ?? [];
      const defaultUrl = input.defaultReturnUrl ?? null;
      checkReturnUrls(allowed, defaultUrl);
      const id = randomUUID();
      const keys = await generateSpKeyPair(id); // slow-ish (RSA keygen): outside the transaction
      return db.transaction(async (trx) => {
        const row = await queries.insert(
          {
            id,
            org_id: orgId,
            ...(input.name === undefined ? {} : { name: input.name }),
            enabled: input.enabled ?? true,
            idp_entity_id: idp.entityId,
            idp_sso_url: idp.ssoUrl,
            idp_metadata_xml: idp.metadataXml,
            ...keys,
            attribute_mapping: (input.attributeMapping ?? {}) as Record<string, string[]>,
            allow_idp_initiated: input.allowIdpInitiated ?? true,
            jit_enabled: input.jitEnabled ?? true,
            default_role: input.defaultRole ?? 'member',
            allowed_return_urls: allowed,
            default_return_url: defaultUrl,
          },
          trx,
        );
        const certs = await queries.replaceCertificates(orgId, row.id, certRows(idp.certificates), trx);
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'sso_connection.created',
          target: { type: 'sso_connection', id: row.id },
          after: auditView(row, certs),
        });
        return present(row, certs);
      });
    },

    async update(principal: Principal, orgId: string, connectionId: string, input: ConnectionInput) {
      await authz.requireOrg(principal, orgId, 'sso:manage');
      return db.transaction(async (trx) => {
        const before = await load(orgId, connectionId, trx);
        const beforeCerts = await queries.certificates(orgId, [before.id], trx);
        const idp = resolveIdp(input, before);
        const allowed = input.allowedReturnUrls ?? before.allowed_return_urls;
        const defaultUrl = input.defaultReturnUrl === undefined ? before.default_return_url : input.defaultReturnUrl;
        checkReturnUrls(allowed, defaultUrl);
        const row = await queries.update(
          orgId,
          before.id,
          {
            ...(input.name === undefined ? {} : { name: input.name }),
            ...(input.enabled === undefined ? {} : { enabled: input.enabled }),
            ...(idp ? { idp_entity_id: idp.entityId, idp_sso_url: idp.ssoUrl, idp_metadata_xml: idp.metadataXml } : {}),
            ...(input.attributeMapping === undefined ? {} : { attribute_mapping: input.attributeMapping as Record<string, string[]> }),
            ...(input.allowIdpInitiated === undefined ? {} : { allow_idp_initiated: input.allowIdpInitiated }),
            ...(input.jitEnabled === undefined ? {} : { jit_enabled: input.jitEnabled }),
            ...(input.defaultRole === undefined ? {} : { default_role: input.defaultRole }),
            allowed_return_urls: allowed,
            default_return_url: defaultUrl,
          },
          trx,
        );
        if (!row) throw notFound('SSO connection');
        const certs = idp?.certificates.length
          ? await queries.replaceCertificates(orgId, row.id, certRows(idp.certificates), trx)
          : beforeCerts;
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'sso_connection.updated',
          target: { type: 'sso_connection', id: row.id },
          before: auditView(before, beforeCerts),
          after: auditView(row, certs),
        });
        return present(row, certs);
      });
    },

    async remove(principal: Principal, orgId: string, connectionId: string) {
      await authz.requireOrg(principal, orgId, 'sso:manage');
      await db.transaction(async (trx) => {
        const row = await load(orgId, connectionId, trx);
        const certs = await queries.certificates(orgId, [row.id], trx);
        await queries.remove(orgId, row.id, trx);
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'sso_connection.deleted',
          target: { type: 'sso_connection', id: row.id },
          before: auditView(row, certs),
        });
      });
    },

    async getPolicy(principal: Principal, orgId: string) {
      await authz.requireOrg(principal, orgId, 'sso:manage');
      return { required: Boolean(await queries.ssoRequired(orgId)) };
    },

    /** Requiring SSO with no enabled connection would lock every member out: refused (409). */
    async setPolicy(principal: Principal, orgId: string, input: { required: boolean }) {
      await authz.requireOrg(principal, orgId, 'sso:manage');
      return db.transaction(async (trx) => {
        const before = Boolean(await queries.ssoRequired(orgId, trx));
        if (input.required) {
          const enabled = await trx('sso_connections').where({ org_id: orgId, enabled: true }).first('id');
          if (!enabled) throw conflict('sso_policy.no_connection', 'Requiring SSO needs an enabled SSO connection');
        }
        const row = await queries.setSsoRequired(orgId, input.required, trx);
        if (!row) throw notFound('Organization');
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'sso_policy.updated',
          target: { type: 'organization', id: orgId },
          before: { required: before },
          after: { required: row.sso_required },
        });
        return { required: row.sso_required };
      });
    },

    /** `GET /sso/discover`: the enabled connection of the org that verified the email's domain. */
    async discover(email: string) {
      const domainPart = emailDomain(email.trim().toLowerCase());
      const parsed = domainPart ? normaliseDomain(domainPart) : undefined;
      if (!parsed?.ok) return undefined;
      const found = await queries.findEnabledForVerifiedDomain(parsed.domain);
      if (!found) return undefined;
      return { connectionId: found.id, orgId: found.org_id, loginUrl: spUrls(config.publicUrl, found.id).loginUrl };
    },

    /** What the SAML endpoints need: the row, its IdP certificates and the opened SP private key (one statement). */
    async forSignIn(connectionId: string) {
      const found = isUuid(connectionId) ? await queries.findForSignIn(connectionId) : undefined;
      if (!found) return undefined;
      const { idp_certificate_pems: idpCertificates, ...row } = found;
      return { row, idpCertificates, spPrivateKey: openSpPrivateKey(row) };
    },

    /**
     * `POST /api/v1/sso/token`: the one-time code from the return URL → the session. The
     * session's token is minted here (the ACS stored none), so the code is the only way to it.
     */
    async exchangeCode(principal: Principal, code: string) {
      return db.transaction(async (trx) => {
        const row = await signIn.consumeCode(hashToken(code), trx);
        if (!row) throw badRequest('sso.invalid_code', 'The code is unknown, expired or already used');
        const { token, hash } = mintToken('ses');
        const session = (await signIn.rotateSessionToken(row.session_id, hash, trx)) as SessionRow | undefined;
        if (!session) throw badRequest('sso.invalid_code', 'The session of this code is no longer valid');
        const user = await signIn.findUser(session.user_id, trx);
        const org = await signIn.findOrg(row.org_id, trx);
        await recordAudit(trx, {
          orgId: row.org_id,
          actor: actorOf(principal),
          action: 'sso.code_exchanged',
          target: { type: 'session', id: session.id },
          after: { userId: session.user_id, connectionId: row.connection_id },
        });
        return {
          token,
          session: presentSession(session),
          user: user ? { id: user.id, email: user.email, name: user.name, status: user.status } : null,
          organization: org ?? null,
          profile: row.profile,
        };
      });
    },

    sessions,
    signInQueries: signIn,
  };
}
export type SsoConnectionService = ReturnType<typeof createSsoConnectionService>;
