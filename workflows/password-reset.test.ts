/**
 * Forgot password, the workflow alone (test/support/workflow-env.ts): each rule of the flow in a few tens of
 * milliseconds, with the activities faked and the updates sent as the API sends them. test/password-reset.test.ts
 * walks the same flow through HTTP and the real database.
 */
import crypto from 'node:crypto';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { QUICK, workflowEnv, type WorkflowEnv } from '../test/support/workflow-env';
import { waitFor } from '../scripts/stack/wait';
import { passwordReset } from './password-reset';
import { KIND_PREFIX, STEP_MISMATCH, flowAttributes, supersededSignal, type Flow, type FlowResult, type FlowSettings } from './messages';
import { notWorkingUpdate, resendCodeUpdate, setPasswordUpdate, submitAnswersUpdate, submitCaptchaUpdate, submitCodeUpdate } from './messages';

const digest = (code: string) => crypto.createHash('sha256').update(code).digest('hex');
const IDENTIFIER = 'owner@example.com';
const QUESTIONS = [1, 2, 3].map((n) => ({ id: `q${n}`, text: `Question ${n}?` }));
const ACCOUNT = { accountId: '4000000001', channel: 'email' as const, destinationHint: 'o***r@example.com', questions: QUESTIONS, identifiers: [IDENTIFIER] };

let w: WorkflowEnv;
/** What the next issueCode / verifySecurityAnswers fakes answer. */
let nextHmac = digest('654321');
let answersRight = false;

beforeAll(async () => {
  w = await workflowEnv({
    deliverCode: async () => undefined,
    issueCode: async () => ({ hmac: nextHmac }),
    recordFailedAttempt: async () => ({}),
    verifySecurityAnswers: async () => ({ ok: answersRight }),
    applyPasswordReset: async () => undefined,
    releaseRecoveryClaim: async () => undefined,
    startRecoveryHold: async () => ({ tokenDigest: digest('veto') }),
  });
}, 60_000);
afterAll(async () => {
  await w?.stop();
});
beforeEach(() => {
  w.calls.length = 0;
  answersRight = false;
});

/**
 * Starts a reset and passes its captcha as the API does: with the look-up, the claim and the first code. `asApi`:
 * started with its first search attributes, as the API starts it; else as an older API started it.
 */
async function atCode(
  opts: { settings?: Partial<FlowSettings>; ttlMs?: number; account?: boolean; asApi?: boolean } = {},
): Promise<{ handle: WorkflowHandle; flowId: string; flow: Flow }> {
  const flowId = `${KIND_PREFIX.password_reset}${crypto.randomBytes(16).toString('base64url')}`;
  const handle = await w.start(
    passwordReset,
    { flowId, identifier: IDENTIFIER, settings: { ...QUICK, ...opts.settings }, expiresAt: Date.now() + (opts.ttlMs ?? 600_000) },
    opts.asApi ? { typedSearchAttributes: flowAttributes('password_reset', 'captcha', 'active', new Date()) } : undefined,
  );
  const found =
    opts.account === false
      ? { channel: 'email' as const, destinationHint: 'o***r@example.com', questions: QUESTIONS, identifiers: [IDENTIFIER], codeId: 'code-none' }
      : { ...ACCOUNT, hmac: digest('123456'), codeId: `code-${flowId}` };
  const r = await handle.executeUpdate(submitCaptchaUpdate, { args: [{ answerDigest: digest('captcha'), passed: true, found }] });
  expect(r).toMatchObject({ ok: true, flow: { step: 'code' } });
  return { handle, flowId, flow: (r as { flow: Flow }).flow };
}

const submit = (handle: WorkflowHandle, code: string) => handle.executeUpdate(submitCodeUpdate, { args: [{ codeDigest: digest(code) }] });
const outcome = (r: FlowResult) => (r.ok ? `ok ${r.flow.step}` : `${r.error}${r.attemptsLeft !== undefined ? ` ${r.attemptsLeft}` : ''}`);

/** The type of the failure an update was refused with (its validator's), 'ended' for a flow that has ended, or 'accepted'. */
async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) return String(err.cause.type);
    if (err instanceof WorkflowNotFoundError) return 'ended'; // the server's answer to an update for a closed workflow
    throw err;
  }
}

/** Waits (5 s at most) for what the faked activities saw. */
const until = (what: string, check: () => boolean) => waitFor(what, check, { timeoutMs: 5_000, intervalMs: 20 });

test('the right code opens the new password step; one password, applied with the claim released; the flow completes', async () => {
  const { handle, flowId } = await atCode();
  await until('the code delivered', () => w.callsTo('deliverCode').length === 1);
  expect(w.callsTo('deliverCode')).toEqual([{ codeId: `code-${flowId}` }]);
  expect(outcome(await submit(handle, '123456'))).toBe('ok new_password');

  // proven by a channel on file: no hold, the password applies before the answer returns
  expect(outcome(await handle.executeUpdate(setPasswordUpdate, { args: [{ passwordHash: '$argon2id$first' }] }))).toBe('ok done');
  expect(await refusal(handle.executeUpdate(setPasswordUpdate, { args: [{ passwordHash: '$argon2id$second' }] }))).toBe('ended');
  expect(await handle.result()).toMatchObject({ status: 'completed' });
  expect(w.callsTo('applyPasswordReset')).toEqual([{ flowId, accountId: ACCOUNT.accountId, passwordHash: '$argon2id$first', releaseClaimOf: IDENTIFIER }]);
  expect(w.callsTo('releaseRecoveryClaim')).toEqual([]); // released with the password, not by an activity of its own
});

test('a new flow asks one patch for all the settled ones; started with its first search attributes, it writes them no second time', async () => {
  const { EVENT_TYPE_MARKER_RECORDED: MARKER, EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: UPSERT } = temporal.api.enums.v1.EventType;
  const events = async (handle: WorkflowHandle) => ((await handle.fetchHistory()).events ?? []).map((e) => e.eventType);
  const markers = (types: unknown[]) => types.filter((t) => t === MARKER).length;
  const upserts = (types: unknown[]) => types.filter((t) => t === UPSERT).length;
  // the same walk to the code step (FEWER_TASKS_PATCH and the one timer on the way), started as the API does and without
  const withAttributes = await atCode({ asApi: true });
  const without = await atCode();
  const [a, b] = [await events(withAttributes.handle), await events(without.handle)];
  expect(markers(a)).toBe(1);
  expect(markers(b)).toBe(1);
  expect(upserts(a)).toBe(upserts(b) - 1);
  await Promise.all([withAttributes.handle.terminate('test over'), without.handle.terminate('test over')]);
});

test('two passed captchas at once (two pictures answered): the flow takes one, and refuses the others with their codes', async () => {
  const flowId = `${KIND_PREFIX.password_reset}${crypto.randomBytes(16).toString('base64url')}`;
  const handle = await w.start(passwordReset, { flowId, identifier: IDENTIFIER, settings: QUICK, expiresAt: Date.now() + 600_000 });
  const answer = (n: number) =>
    refusal(
      handle.executeUpdate(submitCaptchaUpdate, {
        args: [{ answerDigest: digest(`captcha-${n}`), passed: true, found: { ...ACCOUNT, hmac: digest(`12345${n}`), codeId: `code-${n}` } }],
      }),
    );
  const outcomes = await Promise.all([1, 2, 3, 4, 5].map(answer));
  expect(outcomes.filter((o) => o === 'accepted')).toHaveLength(1);
  expect(outcomes.filter((o) => o === STEP_MISMATCH)).toHaveLength(4);
  const taken = outcomes.indexOf('accepted') + 1;
  await until('the code delivered', () => w.callsTo('deliverCode').length === 1);
  expect(w.callsTo('deliverCode')).toEqual([{ codeId: `code-${taken}` }]); // the refused ones' codes are never sent
  expect(outcome(await submit(handle, `12345${taken}`))).toBe('ok new_password');
});

test('wrong codes count down and the last burns the code: then even the right one is refused', async () => {
  const { handle } = await atCode();
  const answers = [];
  for (const code of ['000001', '000002', '000003', '123456']) answers.push(outcome(await submit(handle, code)));
  expect(answers).toEqual(['code_invalid 2', 'code_invalid 1', 'code_exhausted 0', 'code_exhausted 0']);
  // guesses across flows are counted by the API before the flow sees them (domain/limits.ts), not by the flow
  expect(w.callsTo('recordFailedAttempt')).toEqual([]);
});

test('a code past its time is refused as expired: the submission reads the clock (a parked flow fires no code timer)', async () => {
  const { handle } = await atCode({ settings: { codeTtlMs: 300 } });
  await new Promise((r) => setTimeout(r, 400));
  expect(outcome(await submit(handle, '123456'))).toBe('code_expired');
  const { events } = await handle.fetchHistory();
  expect(events?.filter((e) => e.timerStartedEventAttributes).length).toBe(1); // the flow's deadline alone
});

test('resend waits out its cooldown, voids the old code for a new one, and stops at its limit', async () => {
  const { handle } = await atCode({ settings: { resendCooldownMs: 250, maxResends: 1 } });
  const early = await handle.executeUpdate(resendCodeUpdate);
  expect(outcome(early)).toBe('resend_too_soon');
  expect(!early.ok && early.retryAfterMs! > 0 && early.retryAfterMs! <= 250).toBe(true);
  await new Promise((r) => setTimeout(r, 300));
  nextHmac = digest('654321');
  expect(outcome(await handle.executeUpdate(resendCodeUpdate))).toBe('ok code');
  await until('the new code delivered', () => w.callsTo('deliverCode').length === 2);
  await new Promise((r) => setTimeout(r, 300));
  expect(outcome(await handle.executeUpdate(resendCodeUpdate))).toBe('resend_limit');
  expect(outcome(await submit(handle, '123456'))).toBe('code_invalid 2');
  expect(outcome(await submit(handle, '654321'))).toBe('ok new_password');
});

test('an identifier with no account walks the same step: nothing is delivered, no code matches, nothing is counted', async () => {
  const { handle, flow } = await atCode({ account: false });
  expect(flow).toMatchObject({ step: 'code', channel: 'email', attemptsLeft: QUICK.maxCodeAttempts });
  expect(outcome(await submit(handle, '123456'))).toBe('code_invalid 2');
  await new Promise((r) => setTimeout(r, 100));
  expect(w.callsTo('deliverCode')).toEqual([]);
  expect(w.callsTo('recordFailedAttempt')).toEqual([]);
});

test('the flow ends as expired at its deadline and gives the identifier its claim back', async () => {
  const { handle, flowId } = await atCode({ ttlMs: 1_000 });
  expect(await handle.result()).toMatchObject({ status: 'expired' });
  expect(w.callsTo('releaseRecoveryClaim')).toEqual([{ identifier: IDENTIFIER, flowId }]);
  expect(await refusal(submit(handle, '123456'))).toBe('ended');
}, 15_000);

test('a newer reset for the identifier supersedes this one, whose end names no other flow', async () => {
  const { handle } = await atCode();
  await handle.signal(supersededSignal, { byFlowId: 'rst_the_newer_one' });
  const ended = await handle.result();
  expect(ended).toMatchObject({ status: 'cancelled', reason: 'superseded' });
  expect(JSON.stringify(ended)).not.toContain('rst_the_newer_one');
});

test('"not working?" offers the security questions; each wrong submission takes an attempt, and used up the flow goes to support', async () => {
  const { handle } = await atCode();
  expect(await handle.executeUpdate(notWorkingUpdate)).toMatchObject({ ok: true, flow: { step: 'security_questions', questions: QUESTIONS } });
  const sealedAnswers = 'sealed-by-the-api';
  expect(outcome(await handle.executeUpdate(submitAnswersUpdate, { args: [{ sealedAnswers }] }))).toBe('answers_invalid 1');
  expect(outcome(await handle.executeUpdate(submitAnswersUpdate, { args: [{ sealedAnswers }] }))).toBe('answers_invalid 0');
  expect((await handle.query('flow')) as Flow).toMatchObject({ step: 'support' });
  expect(await refusal(handle.executeUpdate(submitAnswersUpdate, { args: [{ sealedAnswers }] }))).toBe(STEP_MISMATCH);
  expect(w.callsTo('verifySecurityAnswers')).toHaveLength(2);
});

test('right answers prove the owner without a channel on file: the new password is held first, and the screen says so', async () => {
  const { handle } = await atCode({ settings: { recoveryHoldMs: 60_000 } });
  await handle.executeUpdate(notWorkingUpdate);
  answersRight = true;
  const r = await handle.executeUpdate(submitAnswersUpdate, { args: [{ sealedAnswers: 'sealed' }] });
  expect(r).toMatchObject({ ok: true, flow: { step: 'new_password', holdSeconds: 60 } });
  await handle.executeUpdate(setPasswordUpdate, { args: [{ passwordHash: '$argon2id$held' }] });
  await until('the hold started', () => w.callsTo('startRecoveryHold').length === 1);
  expect((await handle.query('flow')) as Flow).toMatchObject({ step: 'hold' });
  expect(w.callsTo('applyPasswordReset')).toEqual([]);
  await handle.terminate('test over');
});
