import type { Knex } from 'knex';
import type { CoreDeps } from '../context.js';
import type { Queryable } from '../db/knex.js';
import type { Principal, UserPrincipal } from '../auth/principal.js';
import { actorOf } from '../auth/principal.js';
import { recordAudit } from '../audit/record.js';
import { AppError, badRequest, conflict, forbidden, notFound } from '../errors.js';
import { secretBoxOf } from '../auth/secret-key.js';
import {
  TOTP_ALGORITHM,
  TOTP_DIGITS,
  TOTP_PERIOD_SECONDS,
  checkTotpCode,
  hashRecoveryCode,
  newRecoveryCodes,
  newTotpSecret,
  totpUri,
} from '../auth/totp.js';
import { createMfaQueries } from '../db/queries/mfa.js';
import { createRateLimiter, type LockState } from './rate-limits.js';
import { mfaState, type AuthzService } from './authz.js';
import type { SessionService } from './sessions.js';

/** A second factor as the caller sends it: a TOTP code, or one of the recovery codes. */
export type FactorProof = { code: string; recoveryCode?: undefined } | { recoveryCode: string; code?: undefined };
export type MfaPolicyInput = { required: boolean; gracePeriodHours?: number | null };

type OrgPolicyRow = { id: string; mfa_required: boolean; mfa_grace_period_hours: number | null; mfa_required_since: Date | null };

export function presentPolicy(org: OrgPolicyRow) {
  const graceEndsAt =
    org.mfa_required && org.mfa_required_since && org.mfa_grace_period_hours
      ? new Date(org.mfa_required_since.getTime() + org.mfa_grace_period_hours * 3_600_000)
      : null;
  return {
    orgId: org.id,
    required: org.mfa_required,
    gracePeriodHours: org.mfa_grace_period_hours,
    requiredSince: org.mfa_required_since,
    graceEndsAt,
  };
}

/**
 * TOTP enrolment and verification for the calling session, and the per-org MFA policy.
 * Every code check goes through one lockout counter per user, kept in the database
 * (`mfa:user:<id>` in rate_limits), so all instances enforce the same limit.
 */
export function createMfaService(deps: CoreDeps, authz: AuthzService, sessions: SessionService) {
  const { db, config } = deps;
  const queries = createMfaQueries(db);
  const limiter = createRateLimiter(db);
  const lockout = { maxFailures: config.mfaMaxFailures, windowMs: config.mfaLockoutMs, lockMs: config.mfaLockoutMs };
  const lockKey = (userId: string) => `mfa:user:${userId}`;

  const lockedError = (s: LockState) =>
    new AppError('mfa.locked', 429, 'Too many failed codes; verification is locked for a while', { retryAfterSeconds: s.retryAfterSeconds });

  async function assertNotLocked(userId: string) {
    const state = await limiter.state(lockKey(userId));
    if (state.locked) throw lockedError(state);
  }

  /** Counts the failure (outside any transaction, so it sticks), then throws the lock or the reason. */
  async function refuse(userId: string, code: 'mfa.invalid_code' | 'mfa.code_replayed'): Promise<never> {
    const state = await limiter.fail(lockKey(userId), lockout);
    if (state.locked) throw lockedError(state);
    const message = code === 'mfa.code_replayed' ? 'This code was already used; wait for the next one' : 'The code is not valid';
    throw badRequest(code, message, { attemptsRemaining: Math.max(0, lockout.maxFailures - state.failures) });
  }

  async function confirmedTotp(userId: string) {
    const row = await queries.totpOf(userId);
    if (!row?.confirmed_at) throw conflict('mfa.not_enrolled', 'No confirmed authenticator app: enrol one first');
    return row;
  }

  /**
   * Checks a proof against the user's confirmed factor and spends it inside `trx`
   * (the TOTP step or the recovery code), so that the change it unlocks and the
   * spending commit together. Counts failures; resets the counter on success.
   */
  async function spendProof<T>(user: UserPrincipal, proof: FactorProof, then: (trx: Knex.Transaction, method: 'totp' | 'recovery_code') => Promise<T>): Promise<T> {
    await assertNotLocked(user.userId);
    const totp = await confirmedTotp(user.userId);
    let outcome: { ok: true; value: T } | { ok: false; reason: 'mfa.invalid_code' | 'mfa.code_replayed' };
    if (proof.code !== undefined) {
      const check = await checkTotpCode(secretBoxOf(config).open(totp.secret_encrypted), proof.code, totp.last_used_step);
      if (!check.ok) {
        outcome = { ok: false, reason: check.reason === 'replayed' ? 'mfa.code_replayed' : 'mfa.invalid_code' };
      } else {
        outcome = await db.transaction(async (trx) => {
          if (!(await queries.consumeStep(user.userId, check.step, trx))) return { ok: false as const, reason: 'mfa.code_replayed' as const };
          return { ok: true as const, value: await then(trx, 'totp') };
        });
      }
    } else {
      const hash = hashRecoveryCode(user.userId, proof.recoveryCode);
      outcome = await db.transaction(async (trx) => {
        if (!(await queries.useRecoveryCode(user.userId, hash, trx))) return { ok: false as const, reason: 'mfa.invalid_code' as const };
        return { ok: true as const, value: await then(trx, 'recovery_code') };
      });
    }
    if (!outcome.ok) return refuse(user.userId, outcome.reason);
    await limiter.reset(lockKey(user.userId));
    return outcome.value;
  }

  async function orgPolicy(orgId: string, q: Queryable = db) {
    const org = await q('organizations').where({ id: orgId }).first<OrgPolicyRow | undefined>('id', 'mfa_required', 'mfa_grace_period_hours', 'mfa_required_since');
    if (!org) throw notFound('Organization');
    return org;
  }

  return {
    /** The caller's factors: authenticator app state and how many recovery codes are left. */
    async status(user: UserPrincipal) {
      const totp = await queries.totpOf(user.userId);
      return {
        totp: { status: !totp ? 'none' : totp.confirmed_at ? 'enrolled' : 'pending', confirmedAt: totp?.confirmed_at ?? null },
        recoveryCodesRemaining: totp?.confirmed_at ? await queries.unusedRecoveryCodes(user.userId) : 0,
        sessionVerified: user.amr.includes('otp'),
      };
    },

    /**
     * Starts an enrolment: a new secret, stored encrypted, shown once with its otpauth:// URI.
     * A confirmed factor is never replaced here (a password-only session must not swap it):
     * disable it first, which needs a valid code.
     */
    async enrollTotp(user: UserPrincipal) {
      const account = await db('users').where({ id: user.userId }).first('email');
      if (!account) throw notFound('User');
      const secret = newTotpSecret();
      const started = await queries.upsertPendingTotp(user.userId, secretBoxOf(config).seal(secret));
      if (!started) throw conflict('mfa.already_enrolled', 'An authenticator app is already enrolled; disable it first');
      const issuer = config.mfaTotpIssuer;
      return {
        secret,
        uri: totpUri({ issuer, label: account.email, secret }),
        issuer,
        label: account.email,
        algorithm: TOTP_ALGORITHM,
        digits: TOTP_DIGITS,
        period: TOTP_PERIOD_SECONDS,
      };
    },

    /**
     * Confirms the pending enrolment with a first valid code. That code proves possession,
     * so the calling session also counts as verified (`otp`). Returns the ten recovery codes,
     * shown only this once (stored hashed).
     */
    async confirmTotp(user: UserPrincipal, code: string) {
      await assertNotLocked(user.userId);
      const pending = await queries.totpOf(user.userId);
      if (!pending) throw conflict('mfa.not_enrolling', 'No enrolment in progress: start one with POST /session/mfa/totp');
      if (pending.confirmed_at) throw conflict('mfa.already_enrolled', 'The authenticator app is already confirmed');
      const check = await checkTotpCode(secretBoxOf(config).open(pending.secret_encrypted), code, pending.last_used_step);
      if (!check.ok) return refuse(user.userId, 'mfa.invalid_code');
      const recoveryCodes = newRecoveryCodes();
      await db.transaction(async (trx) => {
        if (!(await queries.confirmTotp(user.userId, check.step, trx))) {
          throw conflict('mfa.already_enrolled', 'The authenticator app is already confirmed');
        }
        await queries.replaceRecoveryCodes(user.userId, recoveryCodes.map((c) => hashRecoveryCode(user.userId, c)), trx);
        await sessions.addMethod(user.sessionId, 'otp', trx);
        await recordAudit(trx, {
          orgId: null,
          actor: actorOf(user),
          action: 'mfa.totp_enrolled',
          target: { type: 'user', id: user.userId },
          after: { factor: 'totp', recoveryCodes: recoveryCodes.length, sessionId: user.sessionId },
        });
      });
      await limiter.reset(lockKey(user.userId));
      return { recoveryCodes, ...(await sessions.whoami(user)) };
    },

    /** Second-factor check for the calling session: adds `otp` to its amr (audited). */
    async verify(user: UserPrincipal, proof: FactorProof) {
      const method = await spendProof(user, proof, async (trx, method) => {
        await sessions.addMethod(user.sessionId, 'otp', trx);
        await recordAudit(trx, {
          orgId: null,
          actor: actorOf(user),
          action: 'session.mfa_verified',
          target: { type: 'session', id: user.sessionId },
          after: { method, userId: user.userId },
        });
        return method;
      });
      return { method, ...(await sessions.whoami(user)) };
    },

    /** Removes the authenticator app and the recovery codes; needs a fresh valid code (audited). */
    async disableTotp(user: UserPrincipal, proof: FactorProof) {
      await spendProof(user, proof, async (trx, method) => {
        await queries.deleteTotp(user.userId, trx);
        await recordAudit(trx, {
          orgId: null,
          actor: actorOf(user),
          action: 'mfa.totp_disabled',
          target: { type: 'user', id: user.userId },
          before: { factor: 'totp' },
          after: { provedWith: method },
        });
      });
    },

    /** New set of ten recovery codes (the old ones stop working); needs a valid code (audited). */
    async regenerateRecoveryCodes(user: UserPrincipal, proof: FactorProof) {
      const recoveryCodes = newRecoveryCodes();
      await spendProof(user, proof, async (trx, method) => {
        await queries.replaceRecoveryCodes(user.userId, recoveryCodes.map((c) => hashRecoveryCode(user.userId, c)), trx);
        await recordAudit(trx, {
          orgId: null,
          actor: actorOf(user),
          action: 'mfa.recovery_codes_regenerated',
          target: { type: 'user', id: user.userId },
          after: { recoveryCodes: recoveryCodes.length, provedWith: method },
        });
      });
      return { recoveryCodes };
    },

    /**
     * For support (service token only): removes a user's authenticator app and recovery codes
     * when both are lost, and clears the lockout. The user enrols again on next sign-in.
     */
    async resetUser(principal: Principal, userId: string) {
      await db.transaction(async (trx) => {
        const user = await trx('users').where({ id: userId }).first('id');
        if (!user) throw notFound('User');
        const existed = (await queries.totpOf(userId, trx)) !== undefined;
        await queries.deleteTotp(userId, trx);
        await limiter.reset(lockKey(userId), trx);
        await recordAudit(trx, {
          orgId: null,
          actor: actorOf(principal),
          action: 'mfa.reset',
          target: { type: 'user', id: userId },
          before: { factor: existed ? 'totp' : null },
          after: { factor: null },
        });
      });
    },

    async getPolicy(principal: Principal, orgId: string) {
      await authz.requireOrg(principal, orgId, 'org:read');
      return presentPolicy(await orgPolicy(orgId));
    },

    /**
     * Sets the org's MFA policy (audited with before/after). `gracePeriodHours` lets
     * members without a factor keep access for a while after the policy is turned on;
     * omitted means none. The grace clock (`requiredSince`) starts when the policy turns on
     * and is kept while it stays on.
     *
     * Lock-out safety: a user session may only turn the policy on when it would itself
     * satisfy it (verified with `otp`, or SSO of this org), as GitHub requires; and
     * because enrolment and verification are not org-scoped, an admin can always get
     * back to a satisfying session to turn it off. Service tokens are never blocked.
     */
    async putPolicy(principal: Principal, orgId: string, input: MfaPolicyInput) {
      return db.transaction(async (trx) => {
        await authz.requireOrg(principal, orgId, 'mfa:manage', trx);
        const org = await trx('organizations')
          .where({ id: orgId })
          .forUpdate()
          .first<OrgPolicyRow>('id', 'mfa_required', 'mfa_grace_period_hours', 'mfa_required_since');
        const turningOn = input.required && !org.mfa_required;
        if (turningOn && principal.kind === 'user') {
          const own = mfaState(principal, orgId, { mfa_required: true, mfa_grace_period_hours: null, mfa_required_since: null }, false);
          if (own !== 'satisfied') {
            throw forbidden('mfa_required', 'Verify a second factor in this session before requiring MFA for the organization', {
              mfa: own,
            });
          }
        }
        const next = {
          mfa_required: input.required,
          mfa_grace_period_hours: input.required ? (input.gracePeriodHours ?? null) : null,
          mfa_required_since: input.required ? (turningOn ? new Date() : org.mfa_required_since) : null,
        };
        const before = presentPolicy(org);
        const unchanged =
          next.mfa_required === org.mfa_required &&
          next.mfa_grace_period_hours === org.mfa_grace_period_hours &&
          next.mfa_required_since?.getTime() === org.mfa_required_since?.getTime();
        if (unchanged) return before;
        const [updated] = await trx('organizations')
          .where({ id: orgId })
          .update({ ...next, updated_at: trx.fn.now() })
          .returning<OrgPolicyRow[]>(['id', 'mfa_required', 'mfa_grace_period_hours', 'mfa_required_since']);
        const after = presentPolicy(updated!);
        await recordAudit(trx, {
          orgId,
          actor: actorOf(principal),
          action: 'mfa_policy.updated',
          target: { type: 'organization', id: orgId },
          before: { required: before.required, gracePeriodHours: before.gracePeriodHours, requiredSince: before.requiredSince },
          after: { required: after.required, gracePeriodHours: after.gracePeriodHours, requiredSince: after.requiredSince },
        });
        return after;
      });
    },
  };
}
export type MfaService = ReturnType<typeof createMfaService>;
