/**
 * What the API keeps of a flow so that it can answer without asking the workflow (a query costs the Temporal
 * server and the worker about as much as an update): the captcha, judged here, and for a reset whom it is for.
 * The workflow stays the judge of every step: a record only lets the API refuse early, count a guess against
 * the right keys, and check a new password against the right identifiers. A flow without a record (started
 * before records, or of a kind that keeps none) is asked instead.
 *
 * The captcha: text-in-picture challenges drawn by svg-captcha; the text comes from node:crypto (the library's
 * own picks are not cryptographic). With CAPTCHA_PROVIDER=test every answer is CAPTCHA_TEST_ANSWER. A flow has
 * at most one picture on show (a new one voids the one before) and each takes one answer: taking it is one
 * atomic update, so of simultaneous answers to one picture at most one can pass (test/db-atomicity.test.ts
 * proves such updates on the embedded database; test/password-reset.test.ts fires 30 answers at once).
 */
import crypto from 'node:crypto';
import svgCaptcha from 'svg-captcha';
import { FlowRecord } from '../db/models';

type FlowRecordDoc = {
  identifier?: string | null;
  passedCaptcha?: boolean | null;
  accountId?: string | null;
  identifiers?: string[] | null;
  viaSupport?: boolean | null;
  ended?: boolean | null;
  deadline?: Date | null;
  atNewPassword?: boolean | null;
};
import { config } from '../lib/config';
import { captchaDigest, sameSecret } from '../lib/secrets';

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789';
const draw = svgCaptcha as unknown as (text: string, options?: svgCaptcha.ConfigObject) => string;
/** How long a picture can be answered. */
const CHALLENGE_TTL_MS = 10 * 60_000;
/** A record outlives its flow's deadline by this much (a support review or a hold can extend a reset). */
const RECORD_MARGIN_MS = 8 * 86_400_000;

export interface ResetRecord {
  identifier: string;
  passedCaptcha: boolean;
  accountId?: string;
  identifiers: string[];
  viaSupport: boolean;
  atNewPassword: boolean;
  /** Not cancelled, superseded or past its deadline, as far as the API knows (the flow stays the judge). */
  open: boolean;
}

export function makeCaptcha(): { svg: string; answer: string } {
  const cfg = config();
  const answer = cfg.CAPTCHA_PROVIDER === 'test' ? cfg.CAPTCHA_TEST_ANSWER : Array.from({ length: 5 }, () => ALPHABET[crypto.randomInt(ALPHABET.length)]).join('');
  return { svg: draw(answer, { noise: 3, color: true, background: '#f4f4f4', width: 160, height: 60, fontSize: 56 }), answer };
}

/** A reset was started for `identifier` (a retried start finds the record its first start wrote). */
export async function recordResetStart(flowId: string, identifier: string, expiresAt: number): Promise<void> {
  await FlowRecord.updateOne({ _id: flowId }, { $setOnInsert: { identifier, deadline: new Date(expiresAt), expire: new Date(expiresAt + RECORD_MARGIN_MS) } }, { upsert: true });
}

/** A reset's record, or undefined for a flow that keeps none. */
export async function resetRecord(flowId: string): Promise<ResetRecord | undefined> {
  return asResetRecord(await FlowRecord.findById(flowId).lean());
}

function asResetRecord(r: FlowRecordDoc | null): ResetRecord | undefined {
  if (!r?.identifier) return undefined;
  const open = !r.ended && (!r.deadline || r.deadline.getTime() > Date.now());
  return {
    open,
    atNewPassword: !!r.atNewPassword,
    identifier: r.identifier,
    passedCaptcha: !!r.passedCaptcha,
    accountId: r.accountId ?? undefined,
    identifiers: r.identifiers ?? [],
    viaSupport: !!r.viaSupport,
  };
}

/**
 * A fresh picture for `flowId` (the one before it is void), in the same write that reads the reset's record as it
 * stood. Returns the SVG, the record, and `withdraw`: for a caller that finds the flow past its captcha after all.
 */
export async function newChallenge(flowId: string): Promise<{ svg: string; record?: ResetRecord; withdraw(): Promise<void> }> {
  const { svg, answer } = makeCaptcha();
  const challenge = captchaDigest(flowId, answer);
  const expire = new Date(Date.now() + CHALLENGE_TTL_MS);
  const before = await FlowRecord.findOneAndUpdate(
    { _id: flowId },
    { $set: { challenge, challengeExpire: expire }, $max: { expire } },
    { upsert: true, returnDocument: 'before' },
  ).lean();
  return {
    svg,
    record: asResetRecord(before),
    // (only while it is still this picture: a newer one stays)
    withdraw: async () => void (await FlowRecord.updateOne({ _id: flowId, challenge }, { $unset: { challenge: 1, challengeExpire: 1 } })),
  };
}

/**
 * Takes the flow's picture and judges `answer` (in constant time): 'passed' (with the reset's record as it stood,
 * if the flow is a reset), 'failed', or 'none' when there is no picture to answer (never asked for, answered, expired).
 */
export async function answerChallenge(flowId: string, answer: string): Promise<{ verdict: 'passed' | 'failed' | 'none'; record?: ResetRecord }> {
  const taken = await FlowRecord.findOneAndUpdate(
    { _id: flowId, challenge: { $exists: true } },
    { $unset: { challenge: 1, challengeExpire: 1 } },
    { returnDocument: 'before' },
  ).lean();
  if (!taken?.challenge || !taken.challengeExpire || taken.challengeExpire.getTime() < Date.now()) return { verdict: 'none' };
  if (!sameSecret(taken.challenge, captchaDigest(flowId, answer))) return { verdict: 'failed' };
  return { verdict: 'passed', record: asResetRecord(taken) };
}

/** A reset passed its captcha: whom it is for (accountId none for an unknown identifier). The same write either way. */
export async function recordResetTarget(flowId: string, target: { accountId?: string; identifiers: string[] }): Promise<void> {
  await FlowRecord.updateOne({ _id: flowId }, { $set: { passedCaptcha: true, accountId: target.accountId, identifiers: target.identifiers } });
}

/** A passed captcha the flow did not take after all (the update failed): the record goes back to the captcha. */
export async function undoResetTarget(flowId: string): Promise<void> {
  await FlowRecord.updateOne({ _id: flowId }, { $unset: { passedCaptcha: 1, accountId: 1, identifiers: 1 } });
}

/** A reset's guess moved it to new_password (the flow's own answer said so). */
export async function recordAtNewPassword(flowId: string): Promise<void> {
  await FlowRecord.updateOne({ _id: flowId }, { $set: { atNewPassword: true } });
}

/** A reset asked support for help: whom it is for is decided by a person, so the API asks the flow from here on. */
export async function recordViaSupport(flowId: string): Promise<void> {
  await FlowRecord.updateOne({ _id: flowId }, { $set: { viaSupport: true } });
}

/** The flow was cancelled or superseded (no record is written for a flow that has none). */
export async function recordEnded(flowId: string): Promise<void> {
  await FlowRecord.updateOne({ _id: flowId }, { $set: { ended: true } });
}
