/** argon2id with OWASP's parameters (19 MiB, 2 iterations, 1 lane) and NIST SP 800-63B checks for new passwords. */
import argon2 from 'argon2';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import { config } from './config';

export function argon2Params() {
  return { type: argon2.argon2id, memoryCost: config().ARGON2_MEMORY_KIB, timeCost: config().ARGON2_ITERATIONS, parallelism: 1 } as const;
}

export const hashSecret = (secret: string) => argon2.hash(secret, argon2Params());

export async function verifySecret(hash: string | undefined, secret: string): Promise<boolean> {
  if (!hash) {
    // Spend the same time as a real check, so "no such account" is not faster than "wrong password".
    await argon2.hash(secret, argon2Params());
    return false;
  }
  try {
    return await argon2.verify(hash, secret);
  } catch {
    return false;
  }
}

// zxcvbn runs on the API's event loop, and its time grows with the length and the l33t substitutions
// it tries: 128 weak characters took 70-110 ms with the default (100), 20 ms with 20. With 5 and the first
// 48 characters (ZXCVBN_MAX_CHARS) the worst password we found takes 4 ms; l33t spellings of common
// passwords ("p@ssw0rd") still score 0, and 48 characters are as strong as any password needs to be.
const zxcvbn = new ZxcvbnFactory({ dictionary: { ...common.dictionary }, graphs: common.adjacencyGraphs, l33tMaxSubstitutions: 5 });

export const ZXCVBN_MAX_CHARS = 48;

/** Reasons a new password is refused (empty: acceptable). `others` are the account's identifiers and the like. */
export function passwordProblems(password: string, others: string[] = []): string[] {
  const problems: string[] = [];
  const length = [...password].length;
  if (length < 8) problems.push('too_short');
  if (length > 128) problems.push('too_long');
  const lower = password.trim().toLowerCase();
  if (others.some((o) => o && o.trim().toLowerCase() === lower)) problems.push('same_as_identifier');
  if (length >= 8 && length <= 128) {
    const { score } = zxcvbn.check([...password].slice(0, ZXCVBN_MAX_CHARS).join(''), others.filter(Boolean));
    if (score < 2) problems.push('too_common');
  }
  return problems;
}
