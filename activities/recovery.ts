/** Account look-ups and changes the recovery flows make. */
import { Account, Session } from '../db/models';
import { accountIdentifierKeys, unlockIdentifiers } from '../domain/limits';
import { releaseRecoveryClaim } from '../domain/recovery';
import { unseal, vetoLinkOf } from '../lib/secrets';
import { normalizeAnswer } from '../lib/questions';
import { verifySecret } from '../lib/passwords';
import type { FlowKind } from '../workflows/messages';
import { notifyAccount } from '../domain/accounts';
import { cancelPendingChanges } from '../domain/pending-changes';
import { passwordChangedMessage, recoveryHoldMessage } from '../domain/templates';

// The look-up, claim and code after the captcha: the API does them now (domain/recovery.ts); flows that ran
// before that, and a flow told of a passed captcha without them, call them as these activities.
export { findRecoveryTarget, findAndClaimRecoveryTarget, findClaimAndIssueCode, releaseRecoveryClaim, type RecoveryTarget } from '../domain/recovery';

export async function claimActiveFlow({ accountId, kind, flowId }: { accountId: string; kind: FlowKind; flowId: string }): Promise<{ previousFlowId?: string }> {
  const before = await Account.findOneAndUpdate({ _id: accountId }, { $set: { [`activeFlows.${kind}`]: flowId } }, { returnDocument: 'before' }).lean();
  const prev = (before?.activeFlows as Record<string, string> | undefined)?.[kind];
  return prev && prev !== flowId ? { previousFlowId: prev } : {};
}

export async function releaseActiveFlow({ accountId, kind, flowId }: { accountId: string; kind: FlowKind; flowId: string }): Promise<void> {
  // Only while it is still this flow's: a newer flow's claim stays (one conditional update, atomic on every backend).
  await Account.updateOne({ _id: accountId, [`activeFlows.${kind}`]: flowId }, { $unset: { [`activeFlows.${kind}`]: 1 } });
}

export const RECOVERY_FAILURE_LIMIT = 20;
export const RECOVERY_FAILURE_WINDOW_MS = 3_600_000;

/** Counts a wrong code or answer against the account (across flows); past the limit recovery pauses for the window. */
export async function recordFailedAttempt({ accountId }: { accountId: string }): Promise<{ blockedUntil?: string }> {
  const now = new Date();
  const account = await Account.findById(accountId, { recoveryFailures: 1 }).lean();
  if (!account) return {};
  const started = account.recoveryFailures?.windowStartedAt;
  const fresh = !started || now.getTime() - started.getTime() > RECOVERY_FAILURE_WINDOW_MS;
  const updated = await Account.findOneAndUpdate(
    { _id: accountId },
    fresh ? { $set: { 'recoveryFailures.count': 1, 'recoveryFailures.windowStartedAt': now } } : { $inc: { 'recoveryFailures.count': 1 } },
    { returnDocument: 'after' },
  ).lean();
  const count = updated?.recoveryFailures?.count ?? 0;
  const windowStart = updated?.recoveryFailures?.windowStartedAt ?? now;
  return count >= RECOVERY_FAILURE_LIMIT ? { blockedUntil: new Date(windowStart.getTime() + RECOVERY_FAILURE_WINDOW_MS).toISOString() } : {};
}

export async function verifySecurityAnswers({ flowId, accountId, sealedAnswers }: { flowId: string; accountId?: string; sealedAnswers: string }): Promise<{ ok: boolean }> {
  const answers = unseal<{ questionId: string; answer: string }[]>(flowId, sealedAnswers);
  const account = accountId ? await Account.findById(accountId, { securityAnswers: 1 }).lean() : null;
  const stored = account?.securityAnswers ?? [];
  let ok = stored.length >= 3;
  // Always three slow checks, so an unknown account takes as long as a known one.
  for (let i = 0; i < 3; i++) {
    const s = stored[i];
    const given = s ? answers.find((a) => a.questionId === s.questionId) : answers[i];
    const right = await verifySecret(s?.hash ?? undefined, normalizeAnswer(given?.answer ?? ''));
    ok = ok && right && !!given;
  }
  return { ok };
}

/** Starts the recovery hold: every channel on file gets a one-time link to cancel. Returns the token's digest. */
export async function startRecoveryHold({ flowId, accountId, holdUntil }: { flowId: string; accountId: string; holdUntil: string }): Promise<{ tokenDigest: string }> {
  // Derived rather than random, so a retried activity sends the same token it stores.
  const { url, tokenDigest } = vetoLinkOf(flowId);
  await notifyAccount(accountId, `${flowId}:hold`, recoveryHoldMessage(holdUntil, url), flowId);
  return { tokenDigest };
}

/**
 * The new password: hash, sessions revoked, lockout cleared, pending contact changes cancelled, every channel
 * told. With `releaseClaimOf` (since `one-activity-from-captcha-to-code`), the identifier's active-reset claim
 * is released here too, instead of by an activity of its own.
 */
export async function applyPasswordReset({
  flowId,
  accountId,
  passwordHash,
  releaseClaimOf,
}: {
  flowId: string;
  accountId: string;
  passwordHash: string;
  releaseClaimOf?: string;
}): Promise<void> {
  const now = new Date();
  const account = await Account.findOneAndUpdate(
    { _id: accountId },
    { $set: { passwordHash, passwordChangedAt: now, recoveryFailures: { count: 0 } } },
    { returnDocument: 'after' },
  ).lean();
  // A completed reset unlocks sign-in by every identifier of the account; every session ends, as do pending
  // contact changes; every channel on file is told. Independent of each other: all at once, from the account just read.
  await Promise.all([
    account && unlockIdentifiers(accountIdentifierKeys({ ...account, _id: accountId })),
    Session.deleteMany({ accountId }),
    cancelPendingChanges(accountId, 'password_reset', account ?? {}),
    notifyAccount(accountId, `${flowId}:password-changed`, passwordChangedMessage(now), flowId, account ?? undefined),
    releaseClaimOf && releaseRecoveryClaim({ identifier: releaseClaimOf, flowId }),
  ]);
}
