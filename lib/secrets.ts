/**
 * Keyed digests and sealed values. Codes, captcha answers and veto tokens reach workflows only as
 * HMACs; security answers travel sealed (AES-256-GCM bound to the flow) to the activity that checks
 * them. Neither is readable in history, even through the codec server.
 */
import crypto from 'node:crypto';
import { config } from './config';
import type { FlowKind } from '../workflows/messages';
import { KIND_PREFIX } from '../workflows/messages';

function hmacKey(): Buffer {
  return Buffer.from(config().CODE_HMAC_SECRET, 'utf8');
}

/** HMAC-SHA256 (hex) of `parts` under CODE_HMAC_SECRET, domain-separated by `purpose`. */
export function keyedDigest(purpose: string, ...parts: string[]): string {
  const h = crypto.createHmac('sha256', hmacKey());
  h.update(purpose);
  for (const p of parts) h.update('\0' + p);
  return h.digest('hex');
}

/** The digest a 6-digit code is stored and compared as. Same function on the activity and the API side. */
export const codeDigest = (flowId: string, code: string) => keyedDigest('code', flowId, code);
export const captchaDigest = (flowId: string, answer: string) => keyedDigest('captcha', flowId, answer.trim().toLowerCase());
export const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');

export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function sealKey(): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', hmacKey(), Buffer.alloc(0), 'seal-v1', 32));
}

/** Encrypts `value` so that only our activities can read it, and only for this flow. */
export function seal(flowId: string, value: unknown): string {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', sealKey(), iv);
  cipher.setAAD(Buffer.from(flowId));
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

export function unseal<T>(flowId: string, sealed: string): T {
  const raw = Buffer.from(sealed, 'base64url');
  const decipher = crypto.createDecipheriv('aes-256-gcm', sealKey(), raw.subarray(0, 12));
  decipher.setAAD(Buffer.from(flowId));
  decipher.setAuthTag(raw.subarray(12, 28));
  return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')) as T;
}

/** An unguessable token (256 bits), for sessions. */
export const randomToken = () => crypto.randomBytes(32).toString('base64url');

/** A flow id: the kind's prefix and 128 bits of randomness. */
export const newFlowId = (kind: FlowKind) => KIND_PREFIX[kind] + crypto.randomBytes(16).toString('base64url');

/** A flow id derived from a client's Idempotency-Key, so a retried start lands on the same flow. */
export const idempotentFlowId = (kind: FlowKind, scope: string, key: string) =>
  KIND_PREFIX[kind] +
  Buffer.from(keyedDigest('idempotency', kind, scope, key), 'hex')
    .subarray(0, 16)
    .toString('base64url');

/** A 6-digit code from the CSPRNG. */
export const newCode = () => crypto.randomInt(0, 1_000_000).toString().padStart(6, '0');

/** A 10-digit numeric account id that does not start with 0. */
export const newAccountId = () => String(crypto.randomInt(1_000_000_000, 10_000_000_000));

/**
 * The secret that drives an anonymous flow (a reset, a sign-up): derived from the flow id under
 * CODE_HMAC_SECRET, so it is stored nowhere (no history, memo, log or search attribute holds it), a
 * retried start with the same Idempotency-Key (same flow id) gets the same one, and it is checked
 * before anything else is looked up, in the same time for a real flow as for a made-up one.
 */
export const flowSecretOf = (flowId: string) => Buffer.from(keyedDigest('flow-secret', flowId), 'hex').toString('base64url');

/** Whether `given` is the derived secret `expected` (a flow secret, a veto token, an attestation): constant time, whatever their lengths; a missing one never is. */
export function sameSecret(expected: string, given: string | undefined): boolean {
  return constantTimeEqual(sha256(expected), sha256(given ?? ''));
}

/** The flows a secret drives (anonymous ones); the others are driven with their owner's session. */
export const drivenBySecret = (kind: FlowKind) => kind === 'password_reset' || kind === 'sign_up';

/** The one-time cancel token of a flow's hold notice (derived, so a retried activity sends the same one). */
export const vetoTokenOf = (flowId: string) => Buffer.from(keyedDigest('veto', flowId), 'hex').subarray(0, 24).toString('base64url');

/** The cancel link a hold notice carries (PUBLIC_URL, never the request's Host), and the token's digest the flow compares. */
export function vetoLinkOf(flowId: string): { url: string; tokenDigest: string } {
  const token = vetoTokenOf(flowId);
  return { url: `${config().publicUrl}/veto?flow=${encodeURIComponent(flowId)}&token=${token}`, tokenDigest: sha256(token) };
}

/**
 * A device's attestation: base64url(HMAC-SHA256(DEVICE_ATTESTATION_KEY, imei)). It stands in for the
 * hardware-backed key attestation a phone presents when it binds itself; the key is the maker's.
 */
export const deviceAttestationOf = (imei: string) => crypto.createHmac('sha256', Buffer.from(config().DEVICE_ATTESTATION_KEY, 'utf8')).update(imei).digest('base64url');
