/**
 * Sign up, the workflow alone (test/support/workflow-env.ts): code → captcha → consent → password → account,
 * with the activities faked. test/sign-up.test.ts walks the same flow through HTTP and the real database.
 */
import crypto from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { QUICK, workflowEnv, type WorkflowEnv } from '../test/support/workflow-env';
import { waitFor } from '../scripts/stack/wait';
import { signUp, type SignUpInput } from './sign-up';
import { KIND_PREFIX, consentUpdate, firstStepUpdate, setPasswordUpdate, submitCaptchaUpdate, submitCodeUpdate, type FlowResult } from './messages';

const digest = (code: string) => crypto.createHash('sha256').update(code).digest('hex');
const DOCUMENTS = [
  { id: 'privacy-policy', version: '2026-01' },
  { id: 'user-agreement', version: '2026-01' },
];
const VERSIONS = { 'privacy-policy': '2026-01', 'user-agreement': '2026-01' };

let w: WorkflowEnv;
let created: { accountId: string } | { taken: 'phone' | 'email' } = { accountId: '5000000001' };

beforeAll(async () => {
  w = await workflowEnv({
    issueCode: async () => ({ hmac: digest('123456') }),
    deliverCode: async () => undefined,
    createSignUpAccount: async () => created,
  });
}, 60_000);
afterAll(async () => {
  await w?.stop();
});
beforeEach(() => {
  w.calls.length = 0;
  created = { accountId: '5000000001' };
});

async function start(extra: Partial<SignUpInput> = {}): Promise<WorkflowHandle> {
  const flowId = `${KIND_PREFIX.sign_up}${crypto.randomBytes(16).toString('base64url')}`;
  const input: SignUpInput = {
    flowId,
    contact: { kind: 'phone', value: '+16505550100' },
    destinationHint: '+1 ••• ••• 0100',
    settings: QUICK,
    documents: DOCUMENTS,
    expiresAt: Date.now() + 600_000,
    ...extra,
  };
  return w.start(signUp, input);
}

const outcome = (r: FlowResult) => (r.ok ? `ok ${r.flow.step}` : r.error);
const passCaptcha = (h: WorkflowHandle) => h.executeUpdate(submitCaptchaUpdate, { args: [{ answerDigest: digest('captcha'), passed: true }] });

test('code, captcha, consent at the versions shown, password: the account is created and the flow names it', async () => {
  const h = await start();
  expect(outcome(await h.executeUpdate(firstStepUpdate))).toBe('ok code');
  expect(w.callsTo('issueCode')).toMatchObject([{ purpose: 'sign_up', channel: 'sms', to: '+16505550100' }]);
  expect(outcome(await h.executeUpdate(submitCodeUpdate, { args: [{ codeDigest: digest('123456') }] }))).toBe('ok captcha');
  expect(outcome(await passCaptcha(h))).toBe('ok consent');
  expect(outcome(await h.executeUpdate(consentUpdate, { args: [{ accept: false, syncEnabled: true, versions: VERSIONS }] }))).toBe('consent_required');
  const outdated = { ...VERSIONS, 'user-agreement': '2025-06' };
  expect(outcome(await h.executeUpdate(consentUpdate, { args: [{ accept: true, syncEnabled: true, versions: outdated }] }))).toBe('document_outdated');
  expect(outcome(await h.executeUpdate(consentUpdate, { args: [{ accept: true, syncEnabled: false, versions: VERSIONS }] }))).toBe('ok password');
  expect(await h.executeUpdate(setPasswordUpdate, { args: [{ passwordHash: '$argon2id$new' }] })).toMatchObject({
    ok: true,
    flow: { status: 'completed', accountId: '5000000001' },
  });
  expect(w.callsTo('createSignUpAccount')).toMatchObject([
    { contact: { kind: 'phone', value: '+16505550100' }, passwordHash: '$argon2id$new', consent: { privacyPolicy: '2026-01', userAgreement: '2026-01', syncEnabled: false } },
  ]);
});

test('while the message budget is spent, the captcha comes first and nothing is sent before it is passed', async () => {
  const h = await start({ captchaFirst: true });
  expect(outcome(await h.executeUpdate(firstStepUpdate))).toBe('ok captcha');
  await new Promise((r) => setTimeout(r, 100));
  expect(w.callsTo('issueCode')).toEqual([]);
  expect(outcome(await passCaptcha(h))).toBe('ok code'); // the step shows at once; the code is issued meanwhile
  await waitFor('the code delivered', () => w.callsTo('deliverCode').length > 0, { timeoutMs: 2_000, intervalMs: 20 });
  expect(w.callsTo('issueCode')).toHaveLength(1);
  expect(outcome(await h.executeUpdate(submitCodeUpdate, { args: [{ codeDigest: digest('123456') }] }))).toBe('ok consent'); // no second captcha
});

test('a phone taken by another sign-up meanwhile: the password step answers phone_taken and the flow ends', async () => {
  created = { taken: 'phone' };
  const h = await start();
  await h.executeUpdate(firstStepUpdate);
  await h.executeUpdate(submitCodeUpdate, { args: [{ codeDigest: digest('123456') }] });
  await passCaptcha(h);
  await h.executeUpdate(consentUpdate, { args: [{ accept: true, syncEnabled: true, versions: VERSIONS }] });
  expect(outcome(await h.executeUpdate(setPasswordUpdate, { args: [{ passwordHash: '$argon2id$late' }] }))).toBe('phone_taken');
  expect(await h.result()).toMatchObject({ status: 'cancelled', reason: 'phone_taken' });
});
