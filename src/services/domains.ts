import { randomBytes } from 'node:crypto';
import { promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { parse as parseHostname } from 'tldts';
import type { CoreDeps } from '../context.js';
import type { Queryable } from '../db/knex.js';
import { createDomainQueries, type DomainRow } from '../db/queries/domains.js';
import { recordAudit } from '../audit/record.js';
import { actorOf, type Principal } from '../auth/principal.js';
import type { AuthzService } from './authz.js';
import { AppError, badRequest, conflict, forbidden, notFound } from '../errors.js';
import { toPage, decodeCursor, type ListQuery } from '../http/pagination.js';

/** Where the TXT record lives and what it must say. */
export const VERIFICATION_PREFIX = '_idp-verification';
const verificationName = (domain: string) => `${VERIFICATION_PREFIX}.${domain}`;
const verificationValue = (token: string) => `idp-verification=${token}`;

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/**
 * A domain as the user typed it → its canonical form (lower case, no trailing dot,
 * IDN as punycode), or a reason it cannot be verified: IP literals, single labels and
 * public suffixes (`com`, `co.uk`, `github.io`) are refused; a registrable domain or a
 * subdomain of one is accepted.
 */
export function normaliseDomain(input: string): { ok: true; domain: string } | { ok: false; reason: string } {
  let d = input.trim().toLowerCase().replace(/\.+$/, '');
  if (!d) return { ok: false, reason: 'empty' };
  if (d.startsWith('[') || isIP(d) || isIP(d.replace(/^\[|\]$/g, ''))) return { ok: false, reason: 'ip_literal' };
  const ascii = domainToASCII(d);
  if (!ascii) return { ok: false, reason: 'invalid' };
  d = ascii;
  if (d.length > 253 || !d.split('.').every((l) => LABEL.test(l))) return { ok: false, reason: 'invalid' };
  // allowPrivateDomains: suffixes such as github.io count as public suffixes too
  const parsed = parseHostname(d, { allowPrivateDomains: true });
  if (parsed.isIp) return { ok: false, reason: 'ip_literal' };
  if (!parsed.domain || !(parsed.isIcann || parsed.isPrivate)) return { ok: false, reason: 'public_suffix' };
  return { ok: true, domain: d };
}

export function presentDomain(row: DomainRow) {
  return {
    id: row.id,
    orgId: row.org_id,
    domain: row.domain,
    status: row.status,
    verification: { type: 'TXT', name: verificationName(row.domain), value: verificationValue(row.verification_token) },
    verificationMethod: row.verification_method,
    verifiedAt: row.verified_at,
    captureEnabled: row.capture_enabled,
    captureRole: row.capture_role,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function parseDomainOrThrow(input: string): string {
  const result = normaliseDomain(input);
  if (!result.ok) {
    const messages: Record<string, string> = {
      ip_literal: 'IP addresses cannot be verified as domains',
      public_suffix: 'A public suffix (such as com or co.uk) cannot be verified; use a registrable domain',
    };
    throw badRequest(`domain.${result.reason}`, messages[result.reason] ?? 'Not a valid domain name', { domain: input });
  }
  return result.domain;
}

/** Looks up TXT records with our own Resolver so DNS_SERVERS (e.g. a test server on 127.0.0.1:5353) applies. */
function createTxtLookup(servers: string[] | undefined) {
  return async (name: string): Promise<string[]> => {
    const resolver = new dnsPromises.Resolver({ timeout: 2_000, tries: 2 });
    if (servers?.length) resolver.setServers(servers);
    try {
      const records = await resolver.resolveTxt(name);
      // a TXT record may arrive split into 255-byte chunks: join them back
      return records.map((chunks) => chunks.join(''));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') return [];
      throw new AppError('domain.dns_lookup_failed', 502, `DNS lookup of ${name} failed (${code ?? 'error'})`);
    }
  };
}

export function createDomainService(deps: CoreDeps, authz: AuthzService) {
  const { db, config } = deps;
  const queries = createDomainQueries(db);
  const lookupTxt = createTxtLookup(config.dnsServers);

  async function load(orgId: string, domainParam: string, q: Queryable = db) {
    const parsed = normaliseDomain(domainParam);
    const row = parsed.ok ? await queries.find(orgId, parsed.domain, q) : undefined;
    if (!row) throw notFound('Domain');
    return row;
  }

  return {
    async list(principal: Principal, orgId: string, page: ListQuery) {
      await authz.requireOrg(principal, orgId, 'domains:manage');
      const after = page.after === undefined ? undefined : String(decodeCursor(page.after, 1)[0]);
      const rows = await queries.list(orgId, { after, limit: page.limit });
      return toPage(rows, page.limit, (r) => [r.domain], presentDomain);
    },

    async get(principal: Principal, orgId: string, domain: string) {
      await authz.requireOrg(principal, orgId, 'domains:manage');
      return presentDomain(await load(orgId, domain));
    },

    async add(principal: Principal, orgId: string, input: { domain: string }) {
      await authz.requireOrg(principal, orgId, 'domains:manage');
      const domain = parseDomainOrThrow(input.domain);
      return db.transaction(async (trx) => {
        const holder = await queries.findVerified(domain, trx);
        if (holder && holder.org_id !== orgId) {
          throw conflict('conflict.domains_verified_key', 'This domain is already verified by another organization');
        }
        const row = await queries.insert({ org_id: orgId, domain, verification_token: randomBytes(24).toString('base64url') }, trx);
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'domain.created',
          target: { type: 'domain', id: row.id },
          after: { domain },
        });
        return presentDomain(row);
      });
    },

    /**
     * `dns`: the TXT record `_idp-verification.<domain>` must carry our value. `manual`: the
     * product's backend vouches for the domain (service tokens only). Either way, a domain
     * verified by another org is a 409 (the unique index settles races).
     */
    async verify(principal: Principal, orgId: string, domainParam: string, input: { method: 'dns' | 'manual' }) {
      await authz.requireOrg(principal, orgId, 'domains:manage');
      if (input.method === 'manual' && principal.kind !== 'service') {
        throw forbidden('auth.service_token_required', 'Manual verification needs a service token');
      }
      const row = await load(orgId, domainParam);
      if (row.status === 'verified') return presentDomain(row);
      const holder = await queries.findVerified(row.domain);
      if (holder && holder.org_id !== orgId) {
        throw conflict('conflict.domains_verified_key', 'This domain is already verified by another organization');
      }
      if (input.method === 'dns') {
        const name = verificationName(row.domain);
        const expected = verificationValue(row.verification_token);
        const found = await lookupTxt(name);
        if (!found.includes(expected)) {
          throw new AppError(
            found.length ? 'domain.record_mismatch' : 'domain.record_not_found',
            422,
            found.length ? `The TXT record at ${name} does not carry the expected value` : `No TXT record found at ${name}`,
            { name, expected, found: found.length },
          );
        }
      }
      return db.transaction(async (trx) => {
        const updated = await queries.update(
          orgId,
          row.id,
          { status: 'verified', verified_at: new Date(), verification_method: input.method },
          trx,
        );
        if (!updated) throw notFound('Domain');
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'domain.verified',
          target: { type: 'domain', id: row.id },
          before: { status: row.status },
          after: { domain: row.domain, status: 'verified', method: input.method },
        });
        return presentDomain(updated);
      });
    },

    async update(principal: Principal, orgId: string, domainParam: string, input: { captureEnabled?: boolean; captureRole?: 'admin' | 'member' | 'viewer' }) {
      await authz.requireOrg(principal, orgId, 'domains:manage');
      return db.transaction(async (trx) => {
        const row = await load(orgId, domainParam, trx);
        if (input.captureEnabled && row.status !== 'verified') {
          throw conflict('domain.not_verified', 'Domain capture needs a verified domain');
        }
        const updated = await queries.update(
          orgId,
          row.id,
          {
            ...(input.captureEnabled === undefined ? {} : { capture_enabled: input.captureEnabled }),
            ...(input.captureRole === undefined ? {} : { capture_role: input.captureRole }),
          },
          trx,
        );
        if (!updated) throw notFound('Domain');
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'domain.updated',
          target: { type: 'domain', id: row.id },
          before: { captureEnabled: row.capture_enabled, captureRole: row.capture_role },
          after: { captureEnabled: updated.capture_enabled, captureRole: updated.capture_role },
        });
        return presentDomain(updated);
      });
    },

    async remove(principal: Principal, orgId: string, domainParam: string) {
      await authz.requireOrg(principal, orgId, 'domains:manage');
      await db.transaction(async (trx) => {
        const row = await load(orgId, domainParam, trx);
        await queries.remove(orgId, row.id, trx);
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'domain.deleted',
          target: { type: 'domain', id: row.id },
          before: { domain: row.domain, status: row.status },
        });
      });
    },
  };
}
export type DomainService = ReturnType<typeof createDomainService>;
