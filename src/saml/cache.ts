import type { CacheItem, CacheProvider } from '@node-saml/node-saml';
import type { Queryable } from '../db/knex.js';
import type { SsoSignInQueries } from '../db/queries/sso-signin.js';
import { REQUEST_TTL_MS } from './sp.js';

/**
 * node-saml's CacheProvider backed by saml_requests, so a flow begun on one instance
 * can finish on another. Keys are AuthnRequest ids, values their IssueInstant (stored
 * verbatim: node-saml parses it to check expiry). Rows are scoped to one connection,
 * so a request id of connection A never satisfies an InResponseTo at connection B.
 * `pending` carries the relay state and validated return URL saved with the request.
 */
export function createSamlRequestCache(
  queries: SsoSignInQueries,
  scope: {
    orgId: string;
    connectionId: string;
    pending?: { relayState: string; returnTo: string };
    /** login: the expired-row housekeeping goes into the same statement as the insert */
    purgeOnSave?: boolean;
    /** ACS: leave the row in place; the sign-in statement consumes it atomically (see sign-in.ts) */
    consumeLater?: boolean;
    /**
     * ACS: the live request this response answers, as the ACS read it moments before in the same
     * request (node-saml asks for it again); any other key is looked up.
     */
    known?: { id: string; issueInstant: string };
  },
  q?: Queryable,
): CacheProvider {
  const lookup = async (key: string) =>
    scope.known && key === scope.known.id ? scope.known.issueInstant : ((await queries.findLiveRequest(scope.connectionId, key, q))?.issue_instant ?? null);
  return {
    async saveAsync(key: string, value: string): Promise<CacheItem | null> {
      const createdAt = Date.now();
      const saved = await queries.insertRequest(
        {
          id: key,
          org_id: scope.orgId,
          connection_id: scope.connectionId,
          issue_instant: value,
          relay_state: scope.pending?.relayState ?? null,
          return_to: scope.pending?.returnTo ?? null,
          expires_at: new Date(createdAt + REQUEST_TTL_MS),
        },
        q,
        { purgeExpired: scope.purgeOnSave },
      );
      return saved ? { value, createdAt } : null;
    },
    async getAsync(key: string): Promise<string | null> {
      return lookup(key);
    },
    async removeAsync(key: string | null): Promise<string | null> {
      if (key === null) {
        await queries.purgeExpiredRequests(q);
        return null;
      }
      if (scope.consumeLater) return lookup(key);
      const row = await queries.removeRequest(scope.connectionId, key, q);
      return row?.issue_instant ?? null;
    },
  };
}
