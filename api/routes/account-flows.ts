/**
 * Sign up and change phone / change email (../shared/API.md): their starts and the steps only they
 * have. The steps every flow shares (code, resend, captcha, not-working, password…) are in flows.ts.
 */
import { Router } from 'express';
import { z } from 'zod';
import { route } from '../registry';
import { Problem, problem } from '../problem';
import * as S from '../schemas';
import { consume } from '../rate-limit';
import { requireRecentSignIn, type SessionInfo } from '../auth';
import { flowRoute, drive, handleOf, queryFlow, update } from '../flows-client';
import { startFlow, withSecret } from './flows';
import { beginTakenProbe, counting, signUpBudgetSpent } from '../../domain/limits';
import { config } from '../../lib/config';
import { LEGAL_DOCUMENTS } from '../../lib/documents';
import { flowSettings } from '../../lib/temporal';
import { maskEmail, maskPhone, normalizeEmail, normalizePhone } from '../../lib/identifiers';
import { sha256 } from '../../lib/secrets';
import type { SignUpContact } from '../../workflows/messages';
import { confirmUpdate, consentUpdate, firstStepUpdate, newEmailUpdate, newPhoneUpdate, type Flow } from '../../workflows/messages';
import { signUp, type SignUpInput } from '../../workflows/sign-up';
import { changeEmail, changePhone, type ChangeContactInput } from '../../workflows/change-contact';

export const accountFlowsRouter = Router();
const tag = 'Flows';

const SignUpBody = z
  .object({
    phone: z.string().max(32).optional().describe('A phone number in E.164 (+8613800138000)'),
    email: z.string().max(254).optional().describe('An email address'),
  })
  .strict()
  .describe('Exactly one of phone and email');
const ConsentBody = z
  .object({
    accept: z.boolean(),
    syncEnabled: z.boolean(),
    versions: z
      .object({ 'privacy-policy': z.string().max(32), 'user-agreement': z.string().max(32) })
      .strict()
      .describe('The versions of the documents the client showed'),
  })
  .strict();
const NewPhoneBody = z.object({ phone: z.string().max(32).describe('E.164') }).strict();
const NewEmailBody = z.object({ email: z.string().max(254) }).strict();

const invalid = (path: string, message: string) => problem('validation_failed', `${path.replace('body.', '')}: ${message}`, { errors: [{ path, message }] });

function phoneOf(text: string): string {
  const phone = normalizePhone(text);
  if (!phone) throw invalid('body.phone', 'a phone number in E.164 (+8613800138000)');
  return phone;
}

function emailOf(text: string): string {
  const email = normalizeEmail(text);
  if (!email) throw invalid('body.email', 'an email address');
  return email;
}

/**
 * A new phone or email: "taken" tells that an address has an account, so those answers are counted
 * (3 per flow, 10 per account a day, domain/limits.ts) before the flow looks the address up.
 */
async function probeNewContact(flowId: string, session: SessionInfo | undefined, send: () => Promise<Flow>): Promise<Flow> {
  // only change flows (driven with a session) take a new contact
  if (!session) throw problem('step_mismatch', 'This kind of flow does not take this action.');
  const taken = (err?: unknown) => err instanceof Problem && (err.code === 'phone_taken' || err.code === 'email_taken');
  return counting(await beginTakenProbe(flowId, session.accountId), send, taken);
}

/** The Flow once it shows its first step, the code sent: what a start answers. */
async function firstStep(flowId: string): Promise<Flow> {
  try {
    return (await (await handleOf(flowId)).executeUpdate(firstStepUpdate)).flow;
  } catch {
    return queryFlow(flowId); // a retried start (Idempotency-Key) of a flow that has ended since
  }
}

route(
  accountFlowsRouter,
  {
    method: 'post',
    path: '/v1/flows/sign-up',
    summary: 'Sign up with a phone (E.164) or an email: a code is sent to it',
    tag,
    body: SignUpBody,
    ok: {
      status: 201,
      description:
        "The flow, at code (the same whether or not the phone or email has an account), with its flowSecret; at captcha while the hour's sign-up message budget is spent",
      schema: S.StartedFlowSchema,
    },
  },
  async (req, res, { body }) => {
    if ((body.phone === undefined) === (body.email === undefined)) throw invalid('body', 'send either phone or email');
    const contact: SignUpContact = body.phone !== undefined ? { kind: 'phone', value: phoneOf(body.phone) } : { kind: 'email', value: emailOf(body.email!) };
    await consume('startPerIp', req.ip ?? 'unknown');
    await consume('startPerIdentifier', sha256(`sign_up:${contact.value}`));
    // Past the hour's message budget (SMS pumping), a human shows up at the captcha before anything is sent.
    const captchaFirst = (await signUpBudgetSpent()) || undefined;
    const { flowId } = await startFlow(
      req,
      'sign_up',
      signUp,
      contact.value,
      (flowId, expiresAt): SignUpInput => ({
        flowId,
        contact,
        destinationHint: contact.kind === 'phone' ? maskPhone(contact.value) : maskEmail(contact.value),
        settings: flowSettings(),
        documents: [...LEGAL_DOCUMENTS],
        expiresAt,
        captchaFirst,
      }),
      captchaFirst ? 'captcha' : 'code',
    );
    res.status(201).json(withSecret(await firstStep(flowId)));
  },
);

for (const what of ['phone', 'email'] as const) {
  const workflow = what === 'phone' ? changePhone : changeEmail;
  route(
    accountFlowsRouter,
    {
      method: 'post',
      path: `/v1/flows/change-${what}`,
      summary: `Change the ${what === 'phone' ? 'phone number' : 'email address'} (signed in recently): first a code to verify your identity`,
      tag,
      auth: 'session',
      ok: { status: 201, description: 'The flow, at code', schema: S.FlowSchema },
      errors: ['reauth_required'],
    },
    async (req, res, { session }) => {
      requireRecentSignIn(session);
      await consume('startPerIdentifier', sha256(`change:${session.accountId}`));
      const { flowId } = await startFlow(
        req,
        what === 'phone' ? 'change_phone' : 'change_email',
        workflow,
        session.accountId,
        (flowId, expiresAt): ChangeContactInput => ({
          flowId,
          accountId: session.accountId,
          sessionId: sha256(session.token),
          settings: flowSettings(),
          contactCodeTtlMs: config().CHANGE_PHONE_CODE_TTL,
          expiresAt,
        }),
        'code',
        { ownerAccountId: session.accountId }, // who may read the flow once it has ended (flows-client.ts)
      );
      res.status(201).json(await firstStep(flowId));
    },
  );
}

flowRoute(
  accountFlowsRouter,
  {
    method: 'post',
    path: '/v1/flows/:flowId/consent',
    summary: 'Accept the privacy policy and the user agreement (at the versions shown), sync on or off',
    body: ConsentBody,
    answers: 'The flow, at password',
    errors: ['consent_required', 'document_outdated'],
  },
  async ({ res, flowId, body }) => {
    await drive(res, flowId, consentUpdate, body);
  },
);

for (const what of ['phone', 'email'] as const) {
  flowRoute(
    accountFlowsRouter,
    {
      method: 'post',
      path: `/v1/flows/:flowId/new-${what}`,
      summary: `The new ${what === 'phone' ? 'phone number' : 'email address'} (shown masked for confirmation)`,
      body: what === 'phone' ? NewPhoneBody : NewEmailBody,
      answers: `The flow, at confirm_new_${what}`,
      errors: [what === 'phone' ? 'phone_taken' : 'email_taken', 'rate_limited'],
    },
    async ({ res, flowId, session, body }) => {
      const chosen = () => ('phone' in body ? update(flowId, newPhoneUpdate, { phone: phoneOf(body.phone) }) : update(flowId, newEmailUpdate, { email: emailOf(body.email) }));
      res.json(await probeNewContact(flowId, session, chosen));
    },
  );
}

flowRoute(
  accountFlowsRouter,
  {
    method: 'post',
    path: '/v1/flows/:flowId/confirm',
    summary: '"OK": send the code to the new phone or email',
    answers: 'The flow, at code',
  },
  async ({ res, flowId }) => {
    await drive(res, flowId, confirmUpdate);
  },
);
