/** Creating the account a sign-up flow asked for. */
import { Account } from '../db/models';
import { keyedDigest } from '../lib/secrets';
import { ContactTakenError, createAccount } from '../domain/accounts';
import type { SignUpConsent, SignUpContact } from '../workflows/messages';

export type { SignUpConsent, SignUpContact };

/**
 * The i-th candidate account id of a flow: 10 digits, no leading 0, derived (not random) so that a
 * retried activity creates the same account rather than a second one.
 */
export function signUpAccountId(flowId: string, i: number): string {
  const n = BigInt('0x' + keyedDigest('account-id', flowId, String(i)).slice(0, 16));
  return String(1_000_000_000n + (n % 9_000_000_000n));
}

/**
 * Creates the account, its phone or email claimed in `contacts` first: of two sign-ups racing for
 * one phone exactly one gets it, the other `{ taken }` (an answer, not an error: nothing to retry).
 * Idempotent per flow. A candidate id that belongs to somebody else's account is skipped.
 */
export async function createSignUpAccount(input: {
  flowId: string;
  contact: SignUpContact;
  passwordHash: string;
  consent: SignUpConsent;
}): Promise<{ accountId: string } | { taken: SignUpContact['kind'] }> {
  const { kind, value } = input.contact;
  for (let i = 0; ; i++) {
    const accountId = signUpAccountId(input.flowId, i);
    const existing = await Account.findById(accountId, { email: 1, phone: 1 }).lean();
    if (existing && existing[kind] !== value) continue; // somebody else's id; ours (a retry) has our contact
    try {
      await createAccount({
        accountId,
        [kind]: value,
        passwordHash: input.passwordHash,
        consent: { ...input.consent, acceptedAt: new Date(input.consent.acceptedAt) },
      });
      return { accountId };
    } catch (err) {
      if (err instanceof ContactTakenError) return { taken: err.kind };
      throw err;
    }
  }
}
