/** Changing an account's phone or email (the change flows); cancelling a pending change is domain/pending-changes.ts. */
import { ApplicationFailure } from '@temporalio/activity';
import { Account, Contact, Session } from '../db/models';
import { maskEmail, maskPhone } from '../lib/identifiers';
import { SECURITY_QUESTIONS } from '../lib/questions';
import type { Channel } from '../workflows/messages';
import { contactKey, notifyAccount } from '../domain/accounts';
import { deliver } from '../domain/delivery';
import { contactChangeHoldMessage, contactChangedMessage } from '../domain/templates';
import { vetoLinkOf } from '../lib/secrets';

export type ContactKind = 'phone' | 'email';

const channelOf = (kind: ContactKind): Channel => (kind === 'phone' ? 'sms' : 'email');
const maskOf = (kind: ContactKind, value: string) => (kind === 'phone' ? maskPhone(value) : maskEmail(value));

export interface ChangeTarget {
  /** Where "verify your identity" goes: the channel being changed, else the other one on file. */
  channel: Channel;
  destinationHint: string;
  /** The account's security questions when all three are set; none: "not working?" goes straight to support. */
  questions: { id: string; text: string }[];
}

export async function changeContactTarget({ accountId, kind }: { accountId: string; kind: ContactKind }): Promise<ChangeTarget> {
  const account = await Account.findById(accountId, { email: 1, phone: 1, securityAnswers: 1 }).lean();
  if (!account) throw ApplicationFailure.nonRetryable(`account ${accountId} not found`);
  const other: ContactKind = kind === 'phone' ? 'email' : 'phone';
  const via: ContactKind = account[kind] ? kind : other;
  const answers = account.securityAnswers ?? [];
  return {
    channel: channelOf(via),
    destinationHint: maskOf(via, account[via]!),
    questions: answers.length >= 3 ? answers.map((a) => ({ id: a.questionId!, text: SECURITY_QUESTIONS.find((q) => q.id === a.questionId)?.text ?? a.questionId! })) : [],
  };
}

/** Whether a new phone or email is free (a hint only: the change itself claims it, see applyContactChange). */
export async function checkNewContact({
  accountId,
  kind,
  value,
}: {
  accountId: string;
  kind: ContactKind;
  value: string;
}): Promise<{ owner: 'nobody' | 'you' | 'someone_else'; hint: string }> {
  const contact = await Contact.findById(contactKey(kind, value)).lean();
  const owner = !contact ? 'nobody' : contact.accountId === accountId ? 'you' : 'someone_else';
  return { owner, hint: maskOf(kind, value) };
}

/**
 * Replaces the account's phone or email. Without transactions, in an order that is safe to retry at
 * any point: the new contact is claimed first (keyed, so unique: if somebody else has it, nothing
 * changes and the answer is `taken`), then the account is updated, every other session revoked, the
 * old address and the other channel on file told, and last the old contact released.
 * Nothing changes once the session that started the change has signed out.
 */
export async function applyContactChange(input: {
  flowId: string;
  accountId: string;
  kind: ContactKind;
  value: string;
  /** The session that started the change (its id): it stays signed in. */
  sessionId: string;
}): Promise<{ outcome: 'applied' | 'taken' | 'signed_out' }> {
  const { flowId, accountId, kind, value } = input;
  if (!(await Session.exists({ _id: input.sessionId, accountId, expiresAt: { $gt: new Date() } }))) return { outcome: 'signed_out' };
  const key = contactKey(kind, value);
  try {
    await Contact.create({ _id: key, accountId });
  } catch (err) {
    if ((err as { code?: number }).code !== 11000) throw err;
    const owner = await Contact.findById(key).lean();
    if (owner?.accountId !== accountId) return { outcome: 'taken' };
  }
  await Account.updateOne({ _id: accountId }, { $set: { [kind]: value } });
  const account = await Account.findById(accountId, { email: 1, phone: 1 }).lean();
  await Session.deleteMany({ accountId, _id: { $ne: input.sessionId } });
  // The old contact(s) of this kind are still claimed until the very end, so a retry still finds them.
  const old = (await Contact.find({ accountId }).lean()).map((c) => String(c._id)).filter((id) => id.startsWith(`${kind}:`) && id !== key);
  const message = contactChangedMessage(kind, maskOf(kind, value));
  for (const id of old) {
    await deliver({ key: `${flowId}:contact-changed:${id}`, channel: channelOf(kind), to: id.slice(kind.length + 1), flowId, ...message });
  }
  const other: ContactKind = kind === 'phone' ? 'email' : 'phone';
  const otherValue = account?.[other];
  if (otherValue) await deliver({ key: `${flowId}:contact-changed:${other}`, channel: channelOf(other), to: otherValue, flowId, ...message });
  await Contact.deleteMany({ _id: { $in: old }, accountId });
  return { outcome: 'applied' };
}

/**
 * Starts the hold of a change proven without a channel on file: every channel on file (the one being
 * replaced included, since it is still the account's) gets a one-time link to cancel. Returns the
 * token's digest; the token is derived, so a retried activity sends the same one.
 */
export async function startContactChangeHold(input: {
  flowId: string;
  accountId: string;
  kind: ContactKind;
  newHint: string;
  holdUntil: string;
  round: number;
}): Promise<{ tokenDigest: string }> {
  const { url, tokenDigest } = vetoLinkOf(input.flowId);
  await notifyAccount(input.accountId, `${input.flowId}:hold:${input.round}`, contactChangeHoldMessage(input.kind, input.newHint, input.holdUntil, url), input.flowId);
  return { tokenDigest };
}
