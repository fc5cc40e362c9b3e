/** Account look-ups and changes the recovery flows make. */
import { Account, Counter, Session } from '../db/models';
import { accountIdentifierKeys, identifierKey, unlockIdentifiers } from '../domain/limits';
import { keyedDigest, unseal, vetoLinkOf } from '../lib/secrets';
import { maskEmail, maskPhone, parseIdentifier } from '../lib/identifiers';
import { SECURITY_QUESTIONS, normalizeAnswer } from '../lib/questions';
import { verifySecret } from '../lib/passwords';
import type { Channel, FlowKind } from '../workflows/messages';
import { findAccountByIdentifier, notifyAccount } from './accounts';
import { cancelPendingChanges } from './contacts';
import { passwordChangedMessage, recoveryHoldMessage } from './templates';

export interface RecoveryTarget {
  accountId?: string;
  channel: Channel;
  destinationHint: string;
  questions: { id: string; text: string }[];
  /** What a new password must not be equal to. */
  identifiers: string[];
}

/** Three questions derived from the identifier: the same on every try, whether or not an account matches. */
function derivedQuestions(identifier: string) {
  const order = SECURITY_QUESTIONS.map((q) => ({ q, k: keyedDigest('questions', identifier, q.id) })).sort((a, b) => a.k.localeCompare(b.k));
  return order.slice(0, 3).map(({ q }) => ({ id: q.id, text: q.text }));
}

/** Number prefixes and their E.164 lengths (with the '+'), for derivedDestination. */
const HINT_PHONES: readonly (readonly [string, number])[] = [
  ['+1415555', 12],
  ['+1212555', 12],
  ['+4477009', 13],
  ['+8613800', 14],
  ['+8618600', 14],
  ['+4915112', 14],
  ['+9198765', 13],
];
const HINT_EMAIL_DOMAINS = ['gmail.com', 'outlook.com', 'yahoo.com', 'icloud.com', 'qq.com', '163.com'];
const HINT_LETTERS = 'abcdefghijklmnoprstw';
/**
 * Where a code "goes" for an account id with no account: a destination of the same shapes as real
 * ones (a phone masked by maskPhone, or an email masked by maskEmail for the accounts that have no
 * phone), stable per identifier, so the hint tells nothing about whether the account exists.
 */
function derivedDestination(identifier: string): { channel: Channel; destinationHint: string } {
  const d = keyedDigest('destination-hint', identifier);
  const pick = <T>(list: readonly T[], at: number) => list[parseInt(d.slice(at, at + 4), 16) % list.length]!;
  // about one account in five has no phone on file
  if (parseInt(d.slice(0, 2), 16) % 5 === 0) return { channel: 'email', destinationHint: maskEmail(`${pick([...HINT_LETTERS], 2)}x@${pick(HINT_EMAIL_DOMAINS, 6)}`) };
  const [prefix, length] = pick(HINT_PHONES, 10);
  const digits = String(parseInt(d.slice(14, 22), 16)).padStart(10, '0');
  return { channel: 'sms', destinationHint: maskPhone((prefix + digits).slice(0, length)) };
}

export async function findRecoveryTarget({ identifier }: { flowId: string; identifier: string }): Promise<RecoveryTarget> {
  const parsed = parseIdentifier(identifier);
  const value = parsed?.value ?? identifier;
  const account = parsed ? await findAccountByIdentifier(parsed) : null;
  const questionsFor = (acc: typeof account) => {
    // An account created without security answers has no securityAnswers field at all.
    const answers = acc?.securityAnswers ?? [];
    if (answers.length < 3) return derivedQuestions(value);
    return answers.map((a) => ({ id: a.questionId!, text: SECURITY_QUESTIONS.find((q) => q.id === a.questionId)?.text ?? a.questionId! }));
  };
  if (!account) {
    const { channel, destinationHint } =
      parsed?.kind === 'email'
        ? { channel: 'email' as const, destinationHint: maskEmail(value) }
        : parsed?.kind === 'phone'
          ? { channel: 'sms' as const, destinationHint: maskPhone(value) }
          : derivedDestination(value);
    return { channel, destinationHint, questions: questionsFor(null), identifiers: [value] };
  }
  // The channel the identifier names; for an account id, the phone on file, else the email.
  const channel: Channel = parsed!.kind === 'email' ? 'email' : parsed!.kind === 'phone' ? 'sms' : account.phone ? 'sms' : 'email';
  const destinationHint = channel === 'sms' ? maskPhone(account.phone!) : maskEmail(account.email!);
  const identifiers = [account._id, account.email, account.phone].filter((x): x is string => !!x);
  return { accountId: account._id, channel, destinationHint, questions: questionsFor(account), identifiers };
}

/**
 * After the captcha, in one activity: the recovery target, and the claim of the identifier's one active
 * reset. Every identifier has one, account or not, so that a flow superseded by a newer one tells its
 * holder nothing about whether the identifier has an account. Retried, it finds the claim already its
 * own and reports no previous flow.
 */
export async function findAndClaimRecoveryTarget(input: { flowId: string; identifier: string }): Promise<RecoveryTarget & { previousFlowId?: string }> {
  const target = await findRecoveryTarget(input);
  const before = await Counter.findOneAndUpdate(
    { _id: recoveryClaimId(input.identifier) },
    { $set: { flowId: input.flowId, expire: new Date(Date.now() + RECOVERY_CLAIM_TTL_MS) } },
    { upsert: true, returnDocument: 'before' },
  ).lean();
  const previous = before?.flowId;
  return previous && previous !== input.flowId ? { ...target, previousFlowId: previous } : target;
}

/** Releases the identifier's claim while it is still this flow's (a newer flow's claim stays). */
export async function releaseRecoveryClaim({ identifier, flowId }: { identifier: string; flowId: string }): Promise<void> {
  await Counter.deleteOne({ _id: recoveryClaimId(identifier), flowId });
}

const recoveryClaimId = (identifier: string) => `active-reset:${identifierKey(identifier)}`;
/** Longer than any reset lives (a support review and a hold included); a claim outlives its flow only if a release failed. */
const RECOVERY_CLAIM_TTL_MS = 7 * 86_400_000;

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

export async function applyPasswordReset({ flowId, accountId, passwordHash }: { flowId: string; accountId: string; passwordHash: string }): Promise<void> {
  const now = new Date();
  const account = await Account.findOneAndUpdate(
    { _id: accountId },
    { $set: { passwordHash, passwordChangedAt: now, recoveryFailures: { count: 0 } } },
    { returnDocument: 'after' },
  ).lean();
  // A completed reset unlocks sign-in by every identifier of the account.
  if (account) await unlockIdentifiers(accountIdentifierKeys({ ...account, _id: accountId }));
  await Session.deleteMany({ accountId });
  await cancelPendingChanges(accountId, 'password_reset');
  await notifyAccount(accountId, `${flowId}:password-changed`, passwordChangedMessage(now), flowId);
}
