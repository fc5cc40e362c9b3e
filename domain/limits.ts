/**
 * Every limit that stands between an attacker and an account, in one place. Each one holds when its
 * requests arrive all at once: an attempt is counted (one atomic `$inc` of one document found by its
 * `_id`) before it is judged, so of 30 simultaneous wrong passwords only the first 10 counted are
 * checked at all; an attempt that turns out not to be a wrong guess gives its count back.
 *
 * Windows are fixed (the key carries the window's index): "20 per hour" is 20 per clock hour, and the
 * document expires with its window.
 *
 * | limit | key | budget | over it |
 * |---|---|---|---|
 * | sign-in lockout | each identifier tried (an unknown one locks too) | 10 per 15 min | 423 `account_locked` for 15 min, doubling per lock up to 24 h; a completed reset unlocks |
 * | recovery guesses | the identifier the flow started with, and its account | 20 wrong codes or answers per hour on each | 429 `too_many_attempts` for the rest of the hour, right guesses included |
 * | taken answers | the change flow, and its account | 3 per flow, 10 per account per 24 h | 429 `rate_limited` |
 * | one password per flow | the flow | 1 in progress or done | 409 `step_mismatch` |
 * | sign-up messages | the destination; all sign-ups | 5 per destination per 24 h; `SIGNUP_MESSAGE_BUDGET` per hour | nothing sent; captcha before the code |
 */
import { Counter } from '../db/models';
import { config } from '../lib/config';
import { log } from '../lib/log';
import { parseIdentifier } from '../lib/identifiers';
import { sha256 } from '../lib/secrets';
import { problem } from './problems';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const LOCKOUT_THRESHOLD = 10;
export const LOCKOUT_WINDOW_MS = 15 * MINUTE;
export const LOCKOUT_BASE_MS = 15 * MINUTE;
export const LOCKOUT_MAX_MS = DAY;
export const GUESS_LIMIT = 20;
export const GUESS_WINDOW_MS = HOUR;
export const TAKEN_PER_FLOW = 3;
export const TAKEN_PER_ACCOUNT = 10;
export const SIGNUP_MESSAGES_PER_DESTINATION = 5;

/** Lockout after LOCKOUT_THRESHOLD failures within the window: 15 min, doubling each time, at most 24 h. */
export function lockDuration(lockCount: number): number {
  return Math.min(LOCKOUT_BASE_MS * 2 ** lockCount, LOCKOUT_MAX_MS);
}

interface Window {
  id: string;
  endsAt: number;
}

function windowOf(key: string, windowMs: number, now = Date.now()): Window {
  const index = Math.floor(now / windowMs);
  return { id: `${key}@${index}`, endsAt: (index + 1) * windowMs };
}

/** Counts one more in `key`'s current window; returns the count including this one. */
async function count(key: string, windowMs: number, now = Date.now()): Promise<{ n: number; window: Window }> {
  const window = windowOf(key, windowMs, now);
  const doc = await Counter.findOneAndUpdate(
    { _id: window.id },
    { $inc: { n: 1 }, $setOnInsert: { expire: new Date(window.endsAt) } },
    { upsert: true, returnDocument: 'after' },
  ).lean();
  return { n: doc?.n ?? 1, window };
}

/** Gives one count back to each window, in one round trip (each an update by _id). */
async function giveBack(...windows: Window[]): Promise<void> {
  await Counter.bulkWrite(
    windows.map((w) => ({ updateOne: { filter: { _id: w.id }, update: { $inc: { n: -1 } } } })),
    { ordered: false },
  );
}

async function current(key: string, windowMs: number, now = Date.now()): Promise<number> {
  return (await Counter.findById(windowOf(key, windowMs, now).id, { n: 1 }).lean())?.n ?? 0;
}

const retryAfter = (untilMs: number) => Math.max(1, Math.ceil((untilMs - Date.now()) / 1000));

// ---------------------------------------------------------------------------------------------------
// Sign-in lockout, per identifier

/** The lockout key of an identifier as typed (normalised when it parses, so `A@x.com` and `a@x.com` are one). */
export function identifierKey(identifier: string): string {
  const parsed = parseIdentifier(identifier);
  return sha256(parsed ? `${parsed.kind}:${parsed.value}` : `raw:${identifier.trim().toLowerCase()}`);
}

/** The keys of every identifier of an account (its id, email and phone). */
export function accountIdentifierKeys(account: { _id: string; email?: string | null; phone?: string | null }): [string, ...string[]] {
  const others = [account.email, account.phone].filter((x): x is string => !!x).map(identifierKey);
  return [identifierKey(account._id), ...others]; // the account id's first: it judges (beginPasswordAttempt)
}

const lockId = (key: string) => `signin-lock:${key}`;
const attemptsKey = (key: string) => `signin:${key}`;

export interface PasswordAttempt {
  /** Call with the verdict once the password was checked: a failure may lock, a success clears the count. */
  settle(ok: boolean): Promise<void>;
}

/**
 * Counts a password attempt against each of `keys` before the password is checked. Throws 423
 * `account_locked` when one of them is locked, or when this attempt is past the budget of the window of
 * the first key, which judges (simultaneous attempts beyond it are never checked). The other keys are
 * counted too, so that sign-ins by those identifiers see the failures; when the first key's budget is
 * used up by a failure, every key is locked. (Judging by each key would let attempts interleave: one
 * attempt tenth on one key and eleventh on another is refused, and no key ever locks.)
 */
export async function beginPasswordAttempt(keys: [string, ...string[]]): Promise<PasswordAttempt> {
  const now = Date.now();
  // by _id one at a time: FerretDB 1.x narrows a query in SQL only for a lone _id
  const locks = (await Promise.all(keys.map((k) => Counter.findById(lockId(k), { lockedUntil: 1 }).lean()))).filter((l) => l !== null);
  const lockedUntil = Math.max(0, ...locks.map((l) => l.lockedUntil?.getTime() ?? 0));
  if (lockedUntil > now) throw locked(lockedUntil);
  const counted = await Promise.all(keys.map(async (key) => ({ key, ...(await count(attemptsKey(key), LOCKOUT_WINDOW_MS, now)) })));
  const judge = counted[0]!;
  if (judge.n > LOCKOUT_THRESHOLD) throw locked(judge.window.endsAt);
  return {
    async settle(ok: boolean) {
      if (ok) {
        await Promise.all(counted.map((c) => Counter.deleteOne({ _id: c.window.id })));
        return;
      }
      // The attempt that used up the budget locks; the others were judged before it.
      if (judge.n !== LOCKOUT_THRESHOLD) return;
      for (const c of counted) {
        const lock = await Counter.findOneAndUpdate({ _id: lockId(c.key) }, { $inc: { lockCount: 1 }, $setOnInsert: { n: 0 } }, { upsert: true, returnDocument: 'after' }).lean();
        const until = Date.now() + lockDuration((lock?.lockCount ?? 1) - 1);
        // The lock document remembers its count for a day after the lock ends (the next lock doubles).
        await Counter.updateOne({ _id: lockId(c.key) }, { $set: { lockedUntil: new Date(until), expire: new Date(until + DAY) } });
        // The window's count stays: an attempt that read no lock a moment ago and counts only now must find
        // it spent (deleting it here let an 11th of 30 simultaneous wrong passwords be judged). The lock
        // outlasts the window, so the next one starts fresh.
      }
    },
  };
}

function locked(untilMs: number) {
  const until = new Date(untilMs).toISOString();
  return problem('account_locked', `Try again after ${until}, or reset your password.`, { lockedUntil: until }, { 'Retry-After': String(retryAfter(untilMs)) });
}

/** A completed reset unlocks: every lock and count of the account's identifiers goes. */
export async function unlockIdentifiers(keys: string[]): Promise<void> {
  const now = Date.now();
  const ids = keys.flatMap((k) => [lockId(k), windowOf(attemptsKey(k), LOCKOUT_WINDOW_MS, now).id]);
  // one round trip for all of them (each still a delete by _id, the one filter the embedded database finds by index)
  await Counter.bulkWrite(
    ids.map((id) => ({ deleteOne: { filter: { _id: id } } })),
    { ordered: false },
  );
}

// ---------------------------------------------------------------------------------------------------
// Recovery guesses (codes, security answers), per account across its flows

/**
 * Whose guesses a flow spends: the identifier it was started with (a reset, a sign-up), and its account
 * when it has one. Both must be under the budget, so guesses spent through a sign-up for an identifier
 * block a reset for it whether or not it has an account, and a new flow by another identifier of the
 * same account buys nothing either.
 */
export function guessKeys(subject: { subjectAccountId?: string; identifiers: string[]; identifier?: string }): string[] {
  const keys: string[] = [];
  const identifier = subject.identifier ?? (subject.subjectAccountId ? undefined : subject.identifiers[0]);
  if (identifier !== undefined) keys.push(`identifier:${identifierKey(identifier)}`);
  if (subject.subjectAccountId) keys.push(`account:${subject.subjectAccountId}`);
  return keys;
}

/** An attempt counted before it is judged. */
export interface Counted {
  /** The attempt did not count after all (e.g. a right guess, or one never judged): its count goes back. */
  refund(): Promise<void>;
}

/**
 * Runs `attempt` under a count taken before it, and gives the count back unless `keeps` says the attempt
 * counted: `keeps(error)` when it failed, `keeps(undefined)` when it went through. `then`: what the caller does
 * with a result that went through, at the same time as the count goes back.
 *
 * An attempt that went through is answered without waiting for its count to go back (a write less before the
 * answer to a right code): a count given back late, or never (the database away), only keeps the limit
 * stricter meanwhile. A failure is logged. `then` is waited for: the client's next request reads what it wrote.
 */
export async function counting<T>(counted: Counted, attempt: () => Promise<T>, keeps: (error?: unknown) => boolean, then?: (result: T) => Promise<unknown>): Promise<T> {
  let result: T;
  try {
    result = await attempt();
  } catch (err) {
    if (!keeps(err)) await counted.refund();
    throw err;
  }
  if (!keeps(undefined)) counted.refund().catch((err: unknown) => log.warn({ err }, 'a count could not be given back (it stays taken)'));
  await then?.(result);
  return result;
}

/** Counts a guess against each key before it is judged; past GUESS_LIMIT in the hour on any, 429 too_many_attempts (right guesses too). */
export async function beginGuess(keys: string[]): Promise<Counted> {
  const now = Date.now();
  const counted = await Promise.all(keys.map((key) => count(`guesses:${key}`, GUESS_WINDOW_MS, now)));
  const refund = () => giveBack(...counted.map((c) => c.window));
  const over = counted.filter((c) => c.n > GUESS_LIMIT);
  if (over.length) {
    await refund(); // not judged: it must not push the count on (a later hour starts from the real failures)
    const seconds = retryAfter(Math.max(...over.map((c) => c.window.endsAt)));
    throw problem('too_many_attempts', `Too many wrong codes or answers; try again in ${seconds} s.`, { retryAfterSeconds: seconds }, { 'Retry-After': String(seconds) });
  }
  return { refund };
}

// ---------------------------------------------------------------------------------------------------
// "That phone/email belongs to another account" answers in change flows

/** Counts a new-contact probe against the flow and the account; past either budget, 429 rate_limited. */
export async function beginTakenProbe(flowId: string, accountId: string): Promise<Counted> {
  const perFlow = await count(`taken-flow:${flowId}`, DAY);
  if (perFlow.n > TAKEN_PER_FLOW) throw rateLimited(perFlow.window.endsAt, 'this flow');
  const perAccount = await count(`taken-account:${accountId}`, DAY);
  if (perAccount.n > TAKEN_PER_ACCOUNT) {
    await giveBack(perFlow.window);
    throw rateLimited(perAccount.window.endsAt, 'this account');
  }
  return { refund: () => giveBack(perFlow.window, perAccount.window) };
}

function rateLimited(untilMs: number, what: string) {
  const seconds = retryAfter(untilMs);
  return problem(
    'rate_limited',
    `Too many addresses that belong to other accounts were tried in ${what}; try again in ${seconds} s.`,
    { retryAfterSeconds: seconds },
    { 'Retry-After': String(seconds) },
  );
}

// ---------------------------------------------------------------------------------------------------
// One new password per flow

/**
 * Claims the flow's one password submission: a second one while the first is being processed (or once it
 * went through) is refused (409). A claim left by a process that died mid-request lapses after
 * PASSWORD_CLAIM_MS, so a retry can take it over (the flow itself also accepts only one password).
 */
export async function claimPasswordStep(flowId: string): Promise<Counted> {
  const id = `password:${flowId}`;
  const now = Date.now();
  const expire = new Date(now + PASSWORD_CLAIM_MS);
  const before = await Counter.findOneAndUpdate({ _id: id }, { $setOnInsert: { n: 1, expire } }, { upsert: true, returnDocument: 'before' }).lean();
  const mine = !before || (before.expire.getTime() < now && (await Counter.updateOne({ _id: id, expire: before.expire }, { $set: { expire } })).modifiedCount === 1);
  if (!mine) throw problem('step_mismatch', 'A password for this flow is already being set.');
  return {
    // the password did not go through: the next request may try (a done one keeps the claim until it lapses; the flow refuses it then)
    refund: async () => void (await Counter.deleteOne({ _id: id, expire })),
  };
}
const PASSWORD_CLAIM_MS = 30_000;

// ---------------------------------------------------------------------------------------------------
// Sign-up messages (SMS pumping)

/** Counts a sign-up message to `destination`; false when the destination had its 5 of the day (then nothing is sent). */
export async function takeSignUpMessage(destination: string): Promise<boolean> {
  const { n } = await count(`signup-to:${sha256(destination.toLowerCase())}`, DAY);
  if (n > SIGNUP_MESSAGES_PER_DESTINATION) return false;
  await count('signup-messages', HOUR);
  return true;
}

/** Whether this hour's sign-up messages reached SIGNUP_MESSAGE_BUDGET: new sign-ups then show the captcha first. */
export async function signUpBudgetSpent(): Promise<boolean> {
  const budget = config().SIGNUP_MESSAGE_BUDGET;
  return budget === 0 || (await current('signup-messages', HOUR)) >= budget;
}
