/** Sessions (opaque tokens stored hashed), sign-in with lockout, and the ops token. */
import type { Request } from 'express';
import { Account, Session } from '../db/models';
import { config } from '../lib/config';
import { parseIdentifier } from '../lib/identifiers';
import { verifySecret } from '../lib/passwords';
import { constantTimeEqual, randomToken, sha256 } from '../lib/secrets';
import { findAccountByIdentifier } from '../activities/accounts';
import { accountIdentifierKeys, beginPasswordAttempt, identifierKey } from '../domain/limits';
import { problem } from './problem';

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

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  const m = h && /^Bearer\s+(\S{1,512})$/i.exec(h);
  return m?.[1];
}

export async function currentSession(req: Request): Promise<SessionInfo | undefined> {
  const token = bearer(req);
  if (!token) return undefined;
  const s = await Session.findById(sha256(token)).lean();
  if (!s || s.expiresAt <= new Date()) return undefined;
  return { token, accountId: s.accountId, authenticatedAt: s.authenticatedAt, expiresAt: s.expiresAt };
}

export async function requireSession(req: Request): Promise<SessionInfo> {
  const s = await currentSession(req);
  if (!s) throw problem('unauthorized', 'Send Authorization: Bearer <token> from POST /v1/sessions.', {}, { 'WWW-Authenticate': 'Bearer' });
  return s;
}

/** Change flows need a session signed in recently (PRIVILEGED_SESSION_AGE). */
export function requireRecentSignIn(s: SessionInfo, detail = 'Sign in again to change your phone or email.'): void {
  if (Date.now() - s.authenticatedAt.getTime() > config().PRIVILEGED_SESSION_AGE) throw problem('reauth_required', detail);
}

export function requireOps(req: Request): void {
  const token = bearer(req);
  if (!token || !constantTimeEqual(sha256(token), sha256(config().OPS_TOKEN))) {
    throw problem('unauthorized', 'Send Authorization: Bearer $OPS_TOKEN.', {}, { 'WWW-Authenticate': 'Bearer' });
  }
}
