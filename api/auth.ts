/** Sessions (opaque tokens stored hashed), sign-in with lockout, and the ops token. */
import type { Request } from 'express';
import { Account, Session } from '../db/models';
import { config } from '../lib/config';
import { parseIdentifier } from '../lib/identifiers';
import { verifySecret } from '../lib/passwords';
import { constantTimeEqual, randomToken, sha256 } from '../lib/secrets';
import { findAccountByIdentifier } from '../activities/accounts';
import { problem } from './problem';

export const LOCKOUT_THRESHOLD = 10;
export const LOCKOUT_WINDOW_MS = 15 * 60_000;
export const LOCKOUT_BASE_MS = 15 * 60_000;
export const LOCKOUT_MAX_MS = 24 * 3_600_000;

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

/** Lockout after LOCKOUT_THRESHOLD failures within the window: 15 min, doubling each time, at most 24 h. */
export function lockDuration(lockCount: number): number {
  return Math.min(LOCKOUT_BASE_MS * 2 ** lockCount, LOCKOUT_MAX_MS);
}

export async function signIn(identifier: string, password: string): Promise<{ token: string; expiresAt: string; accountId: string }> {
  const parsed = parseIdentifier(identifier);
  const account = parsed ? await findAccountByIdentifier(parsed) : null;
  const now = new Date();
  const lockedUntil = account?.lockout?.lockedUntil;
  if (account && lockedUntil && lockedUntil > now) {
    const seconds = Math.ceil((lockedUntil.getTime() - now.getTime()) / 1000);
    throw problem('account_locked', `Try again after ${lockedUntil.toISOString()}, or reset your password.`, { lockedUntil: lockedUntil.toISOString() }, { 'Retry-After': String(seconds) });
  }
  // Unknown accounts spend the same argon2 time and get the same answer.
  const ok = await verifySecret(account?.passwordHash, password);
  if (!account || !ok) {
    if (account) await recordSignInFailure(account._id, account.lockout ?? {}, now);
    throw problem('invalid_credentials');
  }
  if (account.lockout?.failures) await Account.updateOne({ _id: account._id }, { $set: { 'lockout.failures': 0 }, $unset: { 'lockout.windowStartedAt': 1 } });
  return createSession(account._id, now);
}

async function recordSignInFailure(accountId: string, lockout: { failures?: number | null; windowStartedAt?: Date | null; lockCount?: number | null }, now: Date): Promise<void> {
  const inWindow = lockout.windowStartedAt && now.getTime() - lockout.windowStartedAt.getTime() < LOCKOUT_WINDOW_MS;
  const failures = (inWindow ? (lockout.failures ?? 0) : 0) + 1;
  if (failures >= LOCKOUT_THRESHOLD) {
    const lockCount = lockout.lockCount ?? 0;
    await Account.updateOne(
      { _id: accountId },
      { $set: { 'lockout.failures': 0, 'lockout.lockedUntil': new Date(now.getTime() + lockDuration(lockCount)), 'lockout.lockCount': lockCount + 1 }, $unset: { 'lockout.windowStartedAt': 1 } },
    );
  } else if (inWindow) {
    await Account.updateOne({ _id: accountId }, { $inc: { 'lockout.failures': 1 } });
  } else {
    await Account.updateOne({ _id: accountId }, { $set: { 'lockout.failures': 1, 'lockout.windowStartedAt': now } });
  }
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
export function requireRecentSignIn(s: SessionInfo): void {
  if (Date.now() - s.authenticatedAt.getTime() > config().PRIVILEGED_SESSION_AGE) throw problem('reauth_required', 'Sign in again to change your phone or email.');
}

export function requireOps(req: Request): void {
  const token = bearer(req);
  if (!token || !constantTimeEqual(sha256(token), sha256(config().OPS_TOKEN))) {
    throw problem('unauthorized', 'Send Authorization: Bearer $OPS_TOKEN.', {}, { 'WWW-Authenticate': 'Bearer' });
  }
}
