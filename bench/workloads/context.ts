import { randomBytes } from 'node:crypto';
import type { Engine } from '../lib/engine.js';
import { expectStatus, request, type HttpResult } from '../lib/http.js';
import type { Row } from '../lib/report.js';

export type Sizes = {
  /** users imported in workload 1 */
  users: number;
  /** members of the big group in workload 2 */
  bigGroup: number;
  /** users of the access-decision org (workload 4) */
  accessUsers: number;
  /** growth points (workload 6) */
  growthSmall: number;
  growthLarge: number;
  /** request counts of the read workloads */
  accessSingles: number;
  accessBatches: number;
  signIns: number;
  growthProbes: number;
};

export type BenchContext = {
  engine: Engine;
  sizes: Sizes;
  concurrency: number;
  quick: boolean;
  rows: Row[];
  /** a run-unique tag for emails, slugs and names */
  tag: string;
  log(msg: string): void;
};

export const SCIM_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const SCIM_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export function admin(ctx: BenchContext, method: string, path: string, json?: unknown): Promise<HttpResult> {
  return request(ctx.engine.base, method, `/api/v1${path}`, { headers: { authorization: `Bearer ${ctx.engine.adminToken}` }, json });
}

export function scim(ctx: BenchContext, dir: Directory, method: string, path: string, json?: unknown): Promise<HttpResult> {
  return request(ctx.engine.base, method, `/scim/v2/${dir.id}${path}`, {
    headers: { authorization: `Bearer ${dir.token}`, ...(json !== undefined ? { 'content-type': 'application/scim+json' } : {}) },
    json,
  });
}

export type Directory = { id: string; token: string; orgId: string };

/** An org (with an owner, as the API requires) and a SCIM directory, created through the admin API. */
export async function createTenant(ctx: BenchContext, label: string): Promise<{ orgId: string; ownerId: string; directory: Directory }> {
  const owner = expectStatus(
    await admin(ctx, 'POST', '/users', { email: `owner-${label}-${ctx.tag}@bench.example`, name: `Owner ${label}` }),
    [201],
    'create owner',
  ).body as { id: string };
  const org = expectStatus(
    await admin(ctx, 'POST', '/orgs', { name: `Bench ${label}`, slug: `bench-${label}-${ctx.tag}`, ownerUserId: owner.id }),
    [201],
    'create org',
  ).body as { id: string };
  const dir = expectStatus(await admin(ctx, 'POST', `/orgs/${org.id}/scim-directories`, { name: `Bench ${label}` }), [201], 'create directory')
    .body as { id: string; token: string };
  return { orgId: org.id, ownerId: owner.id, directory: { id: dir.id, token: dir.token, orgId: org.id } };
}

export const runTag = () => randomBytes(3).toString('hex');
