/**
 * The captcha, judged here rather than in the flow: a picture never touches the workflow (it is one write
 * here), a wrong answer never reaches it, and only a passed captcha is sent to the flow as an update.
 *
 * Text-in-picture challenges drawn by svg-captcha; the text comes from node:crypto (the library's own picks
 * are not cryptographic). With CAPTCHA_PROVIDER=test every answer is CAPTCHA_TEST_ANSWER. A flow has at most
 * one challenge (a new picture voids the one before) and each takes one answer: taking it is one atomic
 * delete, so of simultaneous answers to one picture at most one can pass (test/db-atomicity.test.ts proves
 * the delete on the embedded database).
 */
import crypto from 'node:crypto';
import svgCaptcha from 'svg-captcha';
import { Challenge } from '../db/models';
import { config } from '../lib/config';
import { captchaDigest, sameSecret } from '../lib/secrets';

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789';
const draw = svgCaptcha as unknown as (text: string, options?: svgCaptcha.ConfigObject) => string;
/** How long a picture can be answered. */
const CHALLENGE_TTL_MS = 10 * 60_000;

export function makeCaptcha(): { svg: string; answer: string } {
  const cfg = config();
  const answer =
    cfg.CAPTCHA_PROVIDER === 'test' ? cfg.CAPTCHA_TEST_ANSWER : Array.from({ length: 5 }, () => ALPHABET[crypto.randomInt(ALPHABET.length)]).join('');
  return { svg: draw(answer, { noise: 3, color: true, background: '#f4f4f4', width: 160, height: 60, fontSize: 56 }), answer };
}

/** A fresh picture for `flowId` (kept with it: the identifier a reset was started for); the one before it is void. Returns the SVG. */
export async function newChallenge(flowId: string, identifier?: string): Promise<string> {
  const { svg, answer } = makeCaptcha();
  await Challenge.replaceOne({ _id: flowId }, { digest: captchaDigest(flowId, answer), identifier, expire: new Date(Date.now() + CHALLENGE_TTL_MS) }, { upsert: true });
  return svg;
}

/**
 * Takes the flow's picture and judges `answer` (in constant time): 'passed' (with what the picture was kept
 * with), 'failed', or 'none' when the flow has no picture to answer (never asked for, answered, or expired).
 */
export async function answerChallenge(flowId: string, answer: string): Promise<{ verdict: 'passed' | 'failed' | 'none'; identifier?: string }> {
  const taken = await Challenge.findOneAndDelete({ _id: flowId }).lean();
  if (!taken || taken.expire.getTime() < Date.now()) return { verdict: 'none' };
  if (!sameSecret(taken.digest, captchaDigest(flowId, answer))) return { verdict: 'failed' };
  return { verdict: 'passed', identifier: taken.identifier ?? undefined };
}
