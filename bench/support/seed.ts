/**
 * Accounts for the bench and the drills, written straight into MongoDB with the product's own code
 * (activities/accounts.ts createAccount) and an argon2id hash made with the configured parameters.
 * For thousands of accounts (the parked scenario) the same documents are inserted in bulk.
 */
import crypto from 'node:crypto';

/** US numbers in the 555 range (libphonenumber accepts them), 10,000 per area code. */
const AREA_CODES = ['415', '650', '212', '310', '617', '206', '303', '512', '702', '808'];
export function benchPhone(n: number): string {
  const ac = AREA_CODES[Math.floor(n / 10_000) % AREA_CODES.length]!;
  return `+1${ac}555${String(n % 10_000).padStart(4, '0')}`;
}

export interface SeededAccount {
  accountId: string;
  email: string;
  phone: string;
}

const WORDS = ['maple', 'river', 'quartz', 'lantern', 'orbit', 'velvet', 'harbor', 'cactus', 'meadow', 'falcon', 'ember', 'glacier', 'pepper', 'saddle', 'tundra', 'walnut'];

/** The password every seeded account starts with (a reset must make it stop working). */
export const SEED_PASSWORD = 'old bench password is long';

/**
 * A password that passes the API's strength rules, different every call: a passphrase, as people choose.
 * (Random hex would be the worst case for zxcvbn's l33t matching, ~20-60x its cost on a passphrase,
 * and would make the strength check look like the API's main cost.)
 */
export function freshPassword(): string {
  const w = () => WORDS[crypto.randomInt(WORDS.length)]!;
  return `${w()} ${w()} ${w()} ${crypto.randomInt(1000, 10_000)}`;
}

/** `count` accounts through createAccount, `concurrency` at a time. Emails: `<prefix>-<n>@example.com`. */
export async function seedAccounts(prefix: string, count: number, opts: { phoneOffset?: number; concurrency?: number; passwordHash?: string } = {}): Promise<SeededAccount[]> {
  const { createAccount } = await import('../../domain/accounts');
  const { hashSecret } = await import('../../lib/passwords');
  const passwordHash = opts.passwordHash ?? (await hashSecret(SEED_PASSWORD));
  const out: SeededAccount[] = new Array(count);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const email = `${prefix}-${i}@example.com`;
      const phone = benchPhone((opts.phoneOffset ?? 0) + i);
      const accountId = await createAccount({ email, phone, passwordHash });
      out[i] = { accountId, email, phone };
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 8, count) }, worker));
  return out;
}

/** The same documents createAccount writes, inserted in batches: for thousands of accounts. */
export async function seedAccountsBulk(prefix: string, count: number, opts: { phoneOffset?: number; passwordHash?: string } = {}): Promise<SeededAccount[]> {
  const { Account, Contact } = await import('../../db/models');
  const { contactKey } = await import('../../domain/accounts');
  const { newAccountId } = await import('../../lib/secrets');
  const { hashSecret } = await import('../../lib/passwords');
  const passwordHash = opts.passwordHash ?? (await hashSecret(SEED_PASSWORD));
  const out: SeededAccount[] = [];
  const used = new Set<string>();
  for (let i = 0; i < count; i++) {
    let accountId = newAccountId();
    while (used.has(accountId)) accountId = newAccountId();
    used.add(accountId);
    out.push({ accountId, email: `${prefix}-${i}@example.com`, phone: benchPhone((opts.phoneOffset ?? 0) + i) });
  }
  const BATCH = 1000;
  for (let i = 0; i < out.length; i += BATCH) {
    const slice = out.slice(i, i + BATCH);
    await Contact.insertMany(
      slice.flatMap((a) => [
        { _id: contactKey('email', a.email), accountId: a.accountId },
        { _id: contactKey('phone', a.phone), accountId: a.accountId },
      ]),
      { ordered: false },
    );
    await Account.insertMany(
      slice.map((a) => ({ _id: a.accountId, email: a.email, phone: a.phone, passwordHash, securityAnswers: [] })),
      { ordered: false },
    );
  }
  return out;
}
