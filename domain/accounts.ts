/** Accounts: finding one by an identifier, creating one, telling every channel on file, its summary and security answers. */
import { Account, Contact, type AccountDoc } from '../db/models';
import type { Identifier } from '../lib/identifiers';
import { deliver } from './delivery';
import { securityQuestionsChangedMessage, type Rendered } from './templates';
import { maskEmail, maskPhone } from '../lib/identifiers';
import { SECURITY_QUESTIONS, normalizeAnswer } from '../lib/questions';
import { hashSecret } from '../lib/passwords';
import { devicesOf } from './devices';
import { problem } from './problems';

export const contactKey = (kind: 'email' | 'phone', value: string) => `${kind}:${value}`;

export async function findAccountByIdentifier(id: Identifier): Promise<(AccountDoc & { _id: string }) | null> {
  if (id.kind === 'accountId') return Account.findById(id.value).lean<AccountDoc & { _id: string }>();
  const contact = await Contact.findById(contactKey(id.kind, id.value)).lean();
  return contact ? Account.findById(contact.accountId).lean<AccountDoc & { _id: string }>() : null;
}

/** Sends `message` to every channel on file (each once, keyed by `key`); `known`: the account's contacts, when the caller has just read them. */
export async function notifyAccount(accountId: string, key: string, message: Rendered, flowId?: string, known?: Contacts): Promise<void> {
  const account = known ?? (await Account.findById(accountId, { email: 1, phone: 1 }).lean());
  if (!account) return;
  // both at once: each is its own message, sent once by its key
  await Promise.all([
    account.email && deliver({ key: `${key}:email`, channel: 'email', to: account.email, flowId, ...message }),
    account.phone && deliver({ key: `${key}:sms`, channel: 'sms', to: account.phone, flowId, ...message }),
  ]);
}

/** An account's channels on file, as a caller that has just read the account passes them (`known`). */
type Contacts = { email?: string | null; phone?: string | null };

export class ContactTakenError extends Error {
  constructor(readonly kind: 'email' | 'phone') {
    super(`${kind}_taken`);
  }
}

/**
 * Creates an account. Its email and phone are claimed first in `contacts` (keyed, so unique on any
 * backend): of two racing sign-ups for one phone exactly one wins; the other gets ContactTakenError.
 */
export async function createAccount(input: {
  accountId?: string;
  email?: string;
  phone?: string;
  passwordHash: string;
  consent?: { privacyPolicy: string; userAgreement: string; acceptedAt: Date; syncEnabled: boolean };
  securityAnswers?: { questionId: string; hash: string }[];
}): Promise<string> {
  const { newAccountId } = await import('../lib/secrets');
  const accountId = input.accountId ?? newAccountId();
  const claimed: string[] = [];
  try {
    for (const [kind, value] of [
      ['email', input.email],
      ['phone', input.phone],
    ] as const) {
      if (!value) continue;
      try {
        await Contact.create({ _id: contactKey(kind, value), accountId });
        claimed.push(contactKey(kind, value));
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        const owner = await Contact.findById(contactKey(kind, value)).lean();
        if (owner?.accountId !== accountId) throw new ContactTakenError(kind);
        claimed.push(contactKey(kind, value)); // a retry of this very creation
      }
    }
    await Account.updateOne(
      { _id: accountId },
      { $setOnInsert: { email: input.email, phone: input.phone, passwordHash: input.passwordHash, consent: input.consent, securityAnswers: input.securityAnswers ?? [] } },
      { upsert: true },
    );
    return accountId;
  } catch (err) {
    if (err instanceof ContactTakenError) await Contact.deleteMany({ _id: { $in: claimed }, accountId });
    throw err;
  }
}

/** The signed-in account as GET /v1/me shows it: contacts masked, devices, consent. */
export async function accountSummary(accountId: string) {
  const account = await Account.findById(accountId).lean();
  if (!account) throw problem('unauthorized');
  return {
    accountId: account._id,
    email: account.email ? maskEmail(account.email) : undefined,
    phone: account.phone ? maskPhone(account.phone) : undefined,
    devices: await devicesOf(accountId),
    consent: account.consent?.acceptedAt
      ? {
          privacyPolicy: account.consent.privacyPolicy,
          userAgreement: account.consent.userAgreement,
          acceptedAt: account.consent.acceptedAt.toISOString(),
          syncEnabled: !!account.consent.syncEnabled,
        }
      : undefined,
    hasSecurityQuestions: (account.securityAnswers?.length ?? 0) >= 3,
    createdAt: (account as { createdAt?: Date }).createdAt?.toISOString() ?? new Date(0).toISOString(),
  };
}

/**
 * New security answers: three distinct questions of the catalogue, none empty; stored as argon2 hashes of the
 * normalised answers. They open a recovery, so the caller has checked the password. Every channel on file is told.
 */
export async function setSecurityAnswers(accountId: string, answers: { questionId: string; answer: string }[]): Promise<void> {
  const ids = answers.map((a) => a.questionId);
  const known = new Set<string>(SECURITY_QUESTIONS.map((q) => q.id));
  if (ids.length !== 3 || new Set(ids).size !== 3 || ids.some((id) => !known.has(id))) {
    throw problem('validation_failed', 'answers: three distinct questionIds from GET /v1/security-questions', {
      errors: [{ path: 'body.answers', message: 'three distinct known questions' }],
    });
  }
  if (answers.some((a) => normalizeAnswer(a.answer) === '')) throw problem('validation_failed', 'answers: an answer is empty');
  const securityAnswers = await Promise.all(answers.map(async (a) => ({ questionId: a.questionId, hash: await hashSecret(normalizeAnswer(a.answer)) })));
  await Account.updateOne({ _id: accountId }, { $set: { securityAnswers } });
  const now = new Date();
  await notifyAccount(accountId, `questions:${accountId}:${now.getTime()}`, securityQuestionsChangedMessage(now));
}
