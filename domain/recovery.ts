/**
 * Who a reset is for, the same work whether or not an account matches: the look-up of an identifier (an unknown
 * one gets questions and a destination hint of the same shapes as a real account's), the one active reset per
 * identifier, and the code issued once the captcha is passed. Used by the API (which does it before it tells
 * the flow the captcha is passed) and by the worker's activities (flows that ran before that, and a fallback).
 */
import { Account, Code, Counter } from '../db/models';
import { identifierKey } from './limits';
import { codeDigest, keyedDigest, newCode, seal } from '../lib/secrets';
import { maskEmail, maskPhone, parseIdentifier } from '../lib/identifiers';
import { SECURITY_QUESTIONS } from '../lib/questions';
import type { Channel } from '../workflows/messages';
import { findAccountByIdentifier } from './accounts';

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

/** An _id no account has (account ids are 10 digits). */
const NO_ACCOUNT_ID = 'no-account';

export async function findRecoveryTarget(input: { flowId: string; identifier: string }): Promise<RecoveryTarget> {
  return (await lookUpRecoveryTarget(input.identifier)).target;
}

/** The recovery target of `identifier`, and the address on file its code goes to (none without an account). */
async function lookUpRecoveryTarget(identifier: string): Promise<{ target: RecoveryTarget; address?: string }> {
  const parsed = parseIdentifier(identifier);
  const value = parsed?.value ?? identifier;
  const account = parsed ? await findAccountByIdentifier(parsed) : null;
  // An email or phone with an account takes two reads (its contact, then the account): one without takes as many.
  if (!account && parsed && parsed.kind !== 'accountId') await Account.exists({ _id: NO_ACCOUNT_ID });
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
    return { target: { channel, destinationHint, questions: questionsFor(null), identifiers: [value] } };
  }
  // The channel the identifier names; for an account id, the phone on file, else the email.
  const channel: Channel = parsed!.kind === 'email' ? 'email' : parsed!.kind === 'phone' ? 'sms' : account.phone ? 'sms' : 'email';
  const destinationHint = channel === 'sms' ? maskPhone(account.phone!) : maskEmail(account.email!);
  const identifiers = [account._id, account.email, account.phone].filter((x): x is string => !!x);
  return {
    target: { accountId: account._id, channel, destinationHint, questions: questionsFor(account), identifiers },
    address: channel === 'sms' ? account.phone! : account.email!,
  };
}

/**
 * After the captcha, in one activity: the recovery target, and the claim of the identifier's one active
 * reset. Every identifier has one, account or not, so that a flow superseded by a newer one tells its
 * holder nothing about whether the identifier has an account. Retried, it finds the claim already its
 * own and reports no previous flow.
 */
export async function findAndClaimRecoveryTarget(input: { flowId: string; identifier: string }): Promise<RecoveryTarget & { previousFlowId?: string }> {
  return claimRecovery(input, (await lookUpRecoveryTarget(input.identifier)).target);
}

async function claimRecovery<T extends RecoveryTarget>(input: { flowId: string; identifier: string }, target: T): Promise<T & { previousFlowId?: string }> {
  const previousFlowId = await claimPrevious(input);
  return previousFlowId ? { ...target, previousFlowId } : target;
}

/** Claims the identifier's one active reset for this flow; returns the flow that held it before, if another. */
async function claimPrevious(input: { flowId: string; identifier: string }): Promise<string | undefined> {
  const before = await Counter.findOneAndUpdate(
    { _id: recoveryClaimId(input.identifier) },
    { $set: { flowId: input.flowId, expire: new Date(Date.now() + RECOVERY_CLAIM_TTL_MS) } },
    { upsert: true, returnDocument: 'before' },
  ).lean();
  const previous = before?.flowId;
  return previous && previous !== input.flowId ? previous : undefined;
}

/** A reset's target as the code step needs it: the claim's previous flow, and the code's HMAC when one was issued. */
export type FoundForCode = RecoveryTarget & { previousFlowId?: string; hmac?: string };

/**
 * After the captcha, what findAndClaimRecoveryTarget does, and the code issued (codeId given): by the API with
 * the passed captcha, or as one activity (FEWER_TASKS_PATCH). An identifier without an account gets the same
 * single write, a code record that nothing can match and nobody is sent, so the captcha's answer takes as long
 * either way. Retried, it answers with the code it stored the first time.
 *
 * An email or a phone is the address its code goes to, so that code is stored while the look-up and the claim run
 * (one database round trip less before the answer); an account id's address is known only from its account.
 */
export async function findClaimAndIssueCode(
  input: { flowId: string; identifier: string; codeId: string; ttlMs: number },
  /** Where work that must not delay the answer goes (the API runs it once it has answered); by default it starts at once. */
  afterAnswer: (work: () => Promise<unknown>) => void = (work) => void work(),
): Promise<FoundForCode> {
  const parsed = parseIdentifier(input.identifier);
  const named: { channel: Channel; to: string } | undefined =
    parsed?.kind === 'email' ? { channel: 'email', to: parsed.value } : parsed?.kind === 'phone' ? { channel: 'sms', to: parsed.value } : undefined;
  const code = newCode();
  const issued = { hmac: codeDigest(input.flowId, code), sealed: seal(input.codeId, { code, ttlMs: input.ttlMs }) };
  const expiresAt = new Date(Date.now() + input.ttlMs);
  const record = { _id: input.codeId, flowId: input.flowId, purpose: 'password_reset' as const, expiresAt };
  const [looked, claim, stored] = await Promise.allSettled([lookUpRecoveryTarget(input.identifier), claimPrevious(input), named && storeCode({ ...record, ...named, ...issued })]);
  if (looked.status === 'rejected' || claim.status === 'rejected' || stored.status === 'rejected') {
    // Nobody takes the code this attempt stored: it goes (a retry's stored code, another HMAC, stays).
    if (stored.status === 'fulfilled' && named) void Code.deleteOne({ _id: input.codeId, hmac: issued.hmac }).catch(() => undefined);
    throw [looked, claim, stored].find((r): r is PromiseRejectedResult => r.status === 'rejected')!.reason;
  }
  const { target, address } = looked.value;
  const [previousFlowId, storedEarly] = [claim.value, stored.value];
  const claimed: FoundForCode = previousFlowId ? { ...target, previousFlowId } : target;
  if (named) {
    if (!address) {
      // No account: the code is nobody's; what was typed is not kept. After the answer: a write more while the
      // answer is on its way made unknown identifiers answer 3–5 ms slower (test/attacks.test.ts 6a).
      afterAnswer(() => Code.updateOne({ _id: input.codeId }, { $unset: { to: 1, hmac: 1, sealed: 1 } }).catch(() => undefined));
      return claimed;
    }
    // (the contact that found the account is its address; should the two ever be spelled apart, the account's wins)
    if (address !== named.to) await Code.updateOne({ _id: input.codeId }, { $set: { to: address } });
    return { ...claimed, hmac: storedEarly };
  }
  // The same work either way: a code drawn and sealed, one insert; without an address nothing of it is kept.
  const hmac = await storeCode(address ? { ...record, channel: target.channel, to: address, ...issued } : { ...record, channel: target.channel });
  return address ? { ...claimed, hmac } : claimed;
}

/** Inserts a reset's code record; returns the HMAC of the code it holds (a retry's: the one stored first). */
async function storeCode(doc: { _id: string; channel: Channel; to?: string; hmac?: string; sealed?: string } & Record<string, unknown>): Promise<string | undefined> {
  try {
    await Code.create(doc);
    return doc.hmac;
  } catch (err) {
    if ((err as { code?: number }).code !== 11000) throw err;
    // a retry that raced, or followed, an earlier attempt that stored it: that one is the code
    return (await Code.findById(doc._id).lean())?.hmac ?? undefined;
  }
}

/** Releases the identifier's claim while it is still this flow's (a newer flow's claim stays). */
export async function releaseRecoveryClaim({ identifier, flowId }: { identifier: string; flowId: string }): Promise<void> {
  await Counter.deleteOne({ _id: recoveryClaimId(identifier), flowId });
}

const recoveryClaimId = (identifier: string) => `active-reset:${identifierKey(identifier)}`;
/** Longer than any reset lives (a support review and a hold included); a claim outlives its flow only if a release failed. */
const RECOVERY_CLAIM_TTL_MS = 7 * 86_400_000;
