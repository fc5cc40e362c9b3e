/** Account helpers shared by activities and the API. */
import { Account, Contact, type AccountDoc } from '../db/models';
import type { Identifier } from '../lib/identifiers';
import { deliver } from './delivery';
import type { Rendered } from './templates';

export const contactKey = (kind: 'email' | 'phone', value: string) => `${kind}:${value}`;

export async function findAccountByIdentifier(id: Identifier): Promise<(AccountDoc & { _id: string }) | null> {
  if (id.kind === 'accountId') return Account.findById(id.value).lean<AccountDoc & { _id: string }>();
  const contact = await Contact.findById(contactKey(id.kind, id.value)).lean();
  return contact ? Account.findById(contact.accountId).lean<AccountDoc & { _id: string }>() : null;
}

/** Sends `message` to every channel on file (each once, keyed by `key`). */
export async function notifyAccount(accountId: string, key: string, message: Rendered, flowId?: string): Promise<void> {
  const account = await Account.findById(accountId, { email: 1, phone: 1 }).lean();
  if (!account) return;
  if (account.email) await deliver({ key: `${key}:email`, channel: 'email', to: account.email, flowId, ...message });
  if (account.phone) await deliver({ key: `${key}:sms`, channel: 'sms', to: account.phone, flowId, ...message });
}

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
    for (const [kind, value] of [['email', input.email], ['phone', input.phone]] as const) {
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
