/** Sessions (opaque tokens stored hashed) and passwords checked with the sign-in lockout (domain/limits.ts). */
import { Account, Session } from '../db/models';
import { config } from '../lib/config';
import { parseIdentifier } from '../lib/identifiers';
import { verifySecret } from '../lib/passwords';
import { randomToken, sha256 } from '../lib/secrets';
import { findAccountByIdentifier } from './accounts';
import { accountIdentifierKeys, beginPasswordAttempt, identifierKey } from './limits';
import { problem } from './problems';

export interface SessionInfo {
  token: string;
  accountId: string;
  authenticatedAt: Date;
  expiresAt: Date;
}

export async function createSession(accountId: string, authenticatedAt = new Date()): Promise<{ token: string; expiresAt: string; accountId: string }> {
  const token = randomToken();
  const expiresAt = new Date(authenticatedAt.getTime() + config().SESSION_TTL);
  await Session.create({ _id: sha256(token), accountId, authenticatedAt, expiresAt });
  return { token, expiresAt: expiresAt.toISOString(), accountId };
}

/**
 * Sign-in. The lockout is counted per identifier as typed, before the password is checked
 * (domain/limits.ts): an unknown identifier locks exactly like a real one, and simultaneous attempts
 * past the budget are answered 423 without being judged.
 */
export async function signIn(identifier: string, password: string): Promise<{ token: string; expiresAt: string; accountId: string }> {
  const attempt = await beginPasswordAttempt([identifierKey(identifier)]);
  const parsed = parseIdentifier(identifier);
  const account = parsed ? await findAccountByIdentifier(parsed) : null;
  // Unknown accounts spend the same argon2 time and get the same answer.
  const ok = await verifySecret(account?.passwordHash, password);
  await attempt.settle(!!account && ok);
  if (!account || !ok) throw problem('invalid_credentials');
  return createSession(account._id);
}

/**
 * The signed-in user's password, asked again before a sensitive change (removing a device, new security
 * answers). Wrong ones count toward the sign-in lockout of every identifier of the account.
 */
export async function confirmPassword(accountId: string, password: string): Promise<void> {
  const account = await Account.findById(accountId, { email: 1, phone: 1, passwordHash: 1 }).lean();
  if (!account) throw problem('unauthorized');
  const attempt = await beginPasswordAttempt(accountIdentifierKeys({ ...account, _id: accountId }));
  const ok = await verifySecret(account.passwordHash, password);
  await attempt.settle(ok);
  if (!ok) throw problem('invalid_credentials', 'The password is wrong.');
}

/** The session of `token`, while it lasts. */
export async function sessionOf(token: string): Promise<SessionInfo | undefined> {
  const s = await Session.findById(sha256(token)).lean();
  if (!s || s.expiresAt <= new Date()) return undefined;
  return { token, accountId: s.accountId, authenticatedAt: s.authenticatedAt, expiresAt: s.expiresAt };
}

/** Ends the session of `token`. */
export async function endSession(token: string): Promise<void> {
  await Session.deleteOne({ _id: sha256(token) });
}
