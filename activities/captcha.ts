/**
 * Text-in-picture challenges drawn by svg-captcha. The text comes from node:crypto (the library's
 * own picks are not cryptographic). With CAPTCHA_PROVIDER=test every answer is CAPTCHA_TEST_ANSWER.
 */
import crypto from 'node:crypto';
import svgCaptcha from 'svg-captcha';
import { config } from '../lib/config';

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789';
const draw = svgCaptcha as unknown as (text: string, options?: svgCaptcha.ConfigObject) => string;

export function makeCaptcha(): { svg: string; answer: string } {
  const cfg = config();
  const answer =
    cfg.CAPTCHA_PROVIDER === 'test' ? cfg.CAPTCHA_TEST_ANSWER : Array.from({ length: 5 }, () => ALPHABET[crypto.randomInt(ALPHABET.length)]).join('');
  return { svg: draw(answer, { noise: 3, color: true, background: '#f4f4f4', width: 160, height: 60, fontSize: 56 }), answer };
}
