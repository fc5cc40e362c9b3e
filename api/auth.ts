/** Who is calling: the session behind a bearer token (domain/sessions.ts), a recent sign-in, the ops token. */
import type { Request } from 'express';
import { config } from '../lib/config';
import { constantTimeEqual, sha256 } from '../lib/secrets';
import { sessionOf, type SessionInfo } from '../domain/sessions';
import { problem } from './problem';

export type { SessionInfo };

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  const m = h && /^Bearer\s+(\S{1,512})$/i.exec(h);
  return m?.[1];
}

export async function currentSession(req: Request): Promise<SessionInfo | undefined> {
  const token = bearer(req);
  if (!token) return undefined;
  return sessionOf(token);
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
