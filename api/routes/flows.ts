/** The flow endpoints of ../shared/API.md: start a flow, then drive it step by step. */
import { Router, type Request, type Response } from 'express';
import type { z } from 'zod';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import { route } from '../registry';
import { problem, type ProblemCode } from '../problem';
import * as S from '../schemas';
import { consume } from '../rate-limit';
import { countedRecord, flowRoute, drive, guess, queryFlow, subjectAt, update } from '../flows-client';
import { createSession } from '../../domain/sessions';
import { config } from '../../lib/config';
import { flowSettings, temporalClient } from '../../lib/temporal';
import { parseIdentifier } from '../../lib/identifiers';
import { captchaDigest, codeDigest, drivenBySecret, flowSecretOf, idempotentFlowId, newFlowId, sameSecret, seal, sha256, vetoTokenOf } from '../../lib/secrets';
import { hashSecret, passwordProblems } from '../../lib/passwords';
import { claimPasswordStep, counting } from '../../domain/limits';
import {
  answerChallenge,
  newChallenge,
  recordEnded,
  recordResetStart,
  recordResetTarget,
  recordViaSupport,
  resetRecord,
  undoResetTarget,
  type ResetRecord,
} from '../../domain/flow-record';
import { findClaimAndIssueCode } from '../../domain/recovery';
import { randomUUID } from 'node:crypto';
import {
  KIND_SLUG,
  flowAttributes,
  kindOfFlowId,
  cancelUpdate,
  notWorkingUpdate,
  resendCodeUpdate,
  setPasswordUpdate,
  submitAnswersUpdate,
  submitCaptchaUpdate,
  submitCodeUpdate,
  submitSupportUpdate,
  vetoUpdate,
  type Flow,
  type FlowKind,
} from '../../workflows/messages';
import { passwordReset } from '../../workflows/password-reset';

export const flowsRouter = Router();
const tag = 'Flows';
const params = S.flowIdParam;

/**
 * The client's Idempotency-Key, when given: a retried start lands on the same flow, and gets the same
 * secret. Whoever repeats a start with the same identifier and key gets that flow, so the key must be as
 * unguessable as a secret (a UUID): at least 16 characters.
 */
function idempotencyKey(req: Request): string | undefined {
  const key = req.header('idempotency-key');
  if (key === undefined) return undefined;
  if (!/^[A-Za-z0-9_.:-]{16,128}$/.test(key))
    throw problem('validation_failed', 'Idempotency-Key must be 16 to 128 characters of A-Z a-z 0-9 _ . : - (a random value such as a UUID)');
  return key;
}

/** Starts `workflow` for `kind`; with an Idempotency-Key, a repeated start returns the flow the first one started. */
export async function startFlow<I>(
  req: Request,
  kind: FlowKind,
  workflow: (input: I) => Promise<Flow>,
  scope: string,
  makeArgs: (flowId: string, expiresAt: number) => I,
  firstStep: Flow['step'],
  memo?: Record<string, unknown>,
): Promise<Flow> {
  const key = idempotencyKey(req);
  const flowId = key ? idempotentFlowId(kind, scope, key) : newFlowId(kind);
  const expiresAt = Date.now() + config().FLOW_TTL;
  // With a key, the start may find the flow a first try started: this start's mark in the memo tells which it is.
  const startMark = key ? randomUUID() : undefined;
  const client = await temporalClient();
  let handle;
  try {
    // by function reference: its input is type-checked against the workflow's own signature
    handle = await client.workflow.start(workflow, {
      workflowId: `${KIND_SLUG[kind]}/${flowId}`,
      taskQueue: config().TEMPORAL_TASK_QUEUE,
      args: [makeArgs(flowId, expiresAt)],
      memo: startMark ? { ...memo, startMark } : memo, // encrypted by the payload codec, like the input
      // the first step's, so that the flow needs not write them (workflows/flow-state.ts)
      typedSearchAttributes: flowAttributes(kind, firstStep, 'active', new Date()),
      workflowIdConflictPolicy: key ? WorkflowIdConflictPolicy.USE_EXISTING : WorkflowIdConflictPolicy.FAIL,
      // A key names one flow for good: once that flow has ended, a retried start must not run it again.
      workflowIdReusePolicy: key ? WorkflowIdReusePolicy.REJECT_DUPLICATE : undefined,
    });
  } catch (err) {
    // The flow of this key already ended: answer with it, as it ended.
    if (key && err instanceof WorkflowExecutionAlreadyStartedError) return withSecret(await queryFlow(flowId));
    throw err;
  }
  if (startMark) {
    // USE_EXISTING answers with the running flow's run: when another start made it, report where it stands now.
    const { memo: found } = await handle.describe();
    if ((found as { startMark?: unknown } | undefined)?.startMark !== startMark) return withSecret(await queryFlow(flowId));
  }
  return withSecret({ flowId, kind, status: 'active', step: firstStep, expiresAt: new Date(expiresAt).toISOString() });
}

/** A started flow as its start answers: an anonymous flow's secret goes with it, in this answer only (lib/secrets.ts). */
export function withSecret(flow: Flow): Flow & { flowSecret?: string } {
  return drivenBySecret(flow.kind) ? { ...flow, flowSecret: flowSecretOf(flow.flowId) } : flow;
}

route(
  flowsRouter,
  {
    method: 'post',
    path: '/v1/flows/password-reset',
    summary: 'Forgot password: start a reset for an email, a phone (E.164) or an account id',
    tag,
    body: S.StartResetBody,
    ok: { status: 201, description: 'The flow, at captcha (the same whether or not an account matches), with its flowSecret', schema: S.StartedFlowSchema },
  },
  async (req, res, { body }) => {
    const id = parseIdentifier(body.identifier);
    if (!id)
      throw problem('validation_failed', 'identifier: an email, a phone number in E.164 (+8613800138000) or a 10-digit account id', {
        errors: [{ path: 'body.identifier', message: 'not an email, E.164 phone or account id' }],
      });
    await consume('startPerIp', req.ip ?? 'unknown');
    await consume('startPerIdentifier', sha256(`password_reset:${id.value}`)); // per kind: sign-ups cannot use up a reset's starts
    const flow = await startFlow(
      req,
      'password_reset',
      passwordReset,
      id.value,
      (flowId, expiresAt) => ({ flowId, identifier: id.value, settings: flowSettings(), expiresAt }),
      'captcha',
    );
    await recordResetStart(flow.flowId, id.value, Date.parse(flow.expiresAt ?? '') || Date.now());
    res.status(201).json(flow);
  },
);

flowRoute(flowsRouter, { method: 'get', path: '/v1/flows/:flowId', summary: 'The current state of a flow' }, async ({ res, flowId }) => {
  res.json(await queryFlow(flowId));
});

flowRoute(
  flowsRouter,
  {
    method: 'delete',
    path: '/v1/flows/:flowId',
    summary: 'Cancel a flow',
    answers: 'The flow, cancelled',
  },
  async ({ res, flowId }) => {
    const flow = await update(flowId, cancelUpdate);
    await recordEnded(flowId);
    res.json(flow);
  },
);

flowRoute(
  flowsRouter,
  {
    method: 'get',
    path: '/v1/flows/:flowId/captcha',
    summary: 'A fresh captcha picture (the previous one is void)',
    ok: { status: 200, description: 'An SVG text-in-picture challenge', schema: 'svg' },
    errors: ['step_mismatch'],
  },
  async ({ res, flowId }) => {
    // judged here (domain/flow-record.ts): a picture is no update to the flow, and a reset's record, read by the same
    // write that stores the picture, says where it stands; a flow past its captcha gets no picture and keeps none
    const { svg, record, withdraw } = await newChallenge(flowId);
    try {
      await atCaptcha(flowId, record);
    } catch (err) {
      await withdraw();
      throw err;
    }
    res.setHeader('Cache-Control', 'no-store');
    res.type('image/svg+xml').send(svg);
  },
);

flowRoute(
  flowsRouter,
  { method: 'post', path: '/v1/flows/:flowId/captcha', summary: 'Answer the captcha', body: S.CaptchaBody, errors: ['captcha_invalid'] },
  async ({ res, flowId, body }) => {
    // Only a passed captcha reaches the flow. No picture to answer (never fetched, answered, expired): a new one
    // must be fetched, if the flow is at the captcha at all.
    const { verdict, record } = await answerChallenge(flowId, body.answer);
    if (verdict === 'none') await atCaptcha(flowId, await resetRecord(flowId));
    if (verdict !== 'passed') throw problem('captcha_invalid');
    // A picture drawn before the reset ended or passed its captcha takes nothing from its identifier.
    if (record) await atCaptcha(flowId, record);
    // A reset's look-up, claim and code, done here so the flow shows the code step in the task that takes this
    // update (the same work for an unknown identifier: domain/recovery.ts), and whom it is for kept in its record.
    const codeId = randomUUID();
    const afterAnswer: (() => Promise<unknown>)[] = [];
    const found = record
      ? { ...(await findClaimAndIssueCode({ flowId, identifier: record.identifier, codeId, ttlMs: config().RESET_CODE_TTL }, (work) => afterAnswer.push(work))), codeId }
      : undefined;
    // (once the answer has gone, whatever it was, or the client has gone)
    res.on('close', () => afterAnswer.splice(0).forEach((work) => void work()));
    // (the record is written while the flow takes the update: the client's next request comes after both; a flow that
    // does not take it after all leaves the record at the captcha)
    const [taken] = await Promise.allSettled([
      update(flowId, submitCaptchaUpdate, { answerDigest: captchaDigest(flowId, body.answer), passed: true, found }),
      found && recordResetTarget(flowId, found),
    ]);
    if (taken.status === 'rejected') {
      if (found) await undoResetTarget(flowId);
      throw taken.reason;
    }
    if (found?.previousFlowId) await recordEnded(found.previousFlowId); // the flow tells the one it supersedes
    res.json(taken.value);
  },
);

/** Refuses (step_mismatch) unless the flow is at its captcha. */
async function atCaptcha(flowId: string, record: ResetRecord | undefined): Promise<void> {
  // the record answers "yes" on its own; anything else (ended, passed, or a write it missed) the flow confirms
  if (!record || !record.open || record.passedCaptcha) await subjectAt(flowId, 'captcha');
}

/**
 * A guess at a flow's step (a code, the security answers): counted per flow and against the flow's identifier and
 * account before the flow judges it (guess(), domain/limits.ts).
 */
function guessRoute<B extends z.ZodType>(
  action: string,
  summary: string,
  body: B,
  errors: ProblemCode[],
  send: (res: Response, flowId: string, body: z.infer<B>) => Promise<void>,
) {
  flowRoute(flowsRouter, { method: 'post', path: `/v1/flows/:flowId/${action}`, summary, body, errors: [...errors, 'too_many_attempts'] }, ({ res, flowId, body: given }) =>
    send(res, flowId, given as z.infer<B>),
  );
}

guessRoute('code', 'Submit the 6-digit code', S.CodeBody, ['code_invalid', 'code_expired', 'code_exhausted'], (res, flowId, { code }) =>
  guess(res, flowId, submitCodeUpdate, { codeDigest: codeDigest(flowId, code) }),
);

flowRoute(
  flowsRouter,
  {
    method: 'post',
    path: '/v1/flows/:flowId/resend',
    summary: 'Send a new code (the old one is void)',
    errors: ['resend_too_soon', 'resend_limit'],
  },
  async ({ res, flowId }) => {
    await drive(res, flowId, resendCodeUpdate);
  },
);

flowRoute(flowsRouter, { method: 'post', path: '/v1/flows/:flowId/not-working', summary: '"Not working?": code → security questions → support' }, async ({ res, flowId }) => {
  await drive(res, flowId, notWorkingUpdate);
});

guessRoute('security-answers', 'Answer the security questions (all must be right)', S.AnswersBody, ['answers_invalid'], (res, flowId, { answers }) =>
  guess(res, flowId, submitAnswersUpdate, { sealedAnswers: seal(flowId, answers) }),
);

flowRoute(
  flowsRouter,
  {
    method: 'post',
    path: '/v1/flows/:flowId/support',
    summary: 'Ask a person for help: account id, device IMEI and an email to answer to',
    body: S.SupportBody,
    answers: 'The flow, at support_review',
  },
  async ({ res, flowId, body }) => {
    await recordViaSupport(flowId);
    await drive(res, flowId, submitSupportUpdate, { accountId: body.accountId, imei: body.imei, contactEmail: body.contactEmail.toLowerCase(), message: body.message });
  },
);

flowRoute(
  flowsRouter,
  {
    method: 'post',
    path: '/v1/flows/:flowId/password',
    summary: 'Choose the new password (a sign-up: the password of the new account, which is then signed in)',
    body: S.PasswordBody,
    errors: ['password_mismatch', 'password_weak', 'phone_taken', 'email_taken'],
  },
  async ({ res, flowId, body }) => {
    // whose password: a reset's record says (unless a person decided it), else the flow is asked
    // Only at the new password is a password looked at: its checks name the account's identifiers.
    // The record answers only when it says so (a write it missed, e.g. while the database restarted, sends the
    // question to the flow, which is the judge). It is read while the request is counted.
    const record = await countedRecord(flowId);
    const subject = record && !record.viaSupport && record.open && record.atNewPassword ? { identifiers: record.identifiers } : await subjectAt(flowId, 'new_password', 'password');
    if (body.password !== body.confirmation) throw problem('password_mismatch');
    // Nothing here compares with the current password: whoever reaches this step must learn nothing of it.
    const reasons = passwordProblems(body.password, subject.identifiers);
    if (reasons.length) throw problem('password_weak', `Choose another password: ${reasons.join(', ')}.`, { reasons });
    // One password per flow: a second request while the first is being processed (or after) changes nothing.
    // The plain text stops here: the flow only ever sees the argon2id hash.
    const after = await counting(
      await claimPasswordStep(flowId),
      async () => update(flowId, setPasswordUpdate, { passwordHash: await hashSecret(body.password) }),
      (err) => err === undefined,
    );
    if (after.kind === 'sign_up' && after.status === 'completed' && after.accountId) {
      // Signed in: the session is made here, never in the flow's history, and shown in this one answer.
      const { token, expiresAt } = await createSession(after.accountId);
      after.session = { token, expiresAt };
    }
    res.json(after);
  },
);

route(
  flowsRouter,
  {
    method: 'post',
    path: '/v1/flows/:flowId/veto',
    summary: 'Cancel a held reset with the token from the notice',
    tag,
    params,
    body: S.VetoBody,
    ok: { status: 200, description: 'The flow, cancelled', schema: S.FlowSchema },
    errors: ['flow_not_found', 'step_mismatch', 'token_invalid'],
  },
  async (req, res, { body }) => {
    // The token is checked before the flow is looked up: a made-up flow id answers like a wrong token.
    const flowId = String(req.params.flowId);
    if (!kindOfFlowId(flowId) || !sameSecret(vetoTokenOf(flowId), body.token)) throw problem('token_invalid');
    await drive(res, flowId, vetoUpdate, { tokenDigest: sha256(body.token) });
  },
);
