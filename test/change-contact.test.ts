/**
 * Change phone (seed 000) and change email over HTTP, signed in, against the real API, worker,
 * Temporal dev server, FerretDB and SMTP capture. The code to the new phone lives
 * CHANGE_PHONE_CODE_TTL, seconds here, so its lapse can be watched.
 */
import crypto from 'node:crypto';
import { startHarness, makeAccount, type Harness } from './support/harness';

const CONTACT_CODE_TTL_MS = 8_000;
let h: Harness;
beforeAll(async () => {
  h = await startHarness('change', { CHANGE_PHONE_CODE_TTL: `${CONTACT_CODE_TTL_MS / 1000}s` });
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const OPS = { authorization: 'Bearer dev-ops-token' };

/** Phone numbers no other test in this file uses (makeAccount draws from +1415555….). */
let seq = crypto.randomInt(0, 8000);
const newPhone = () => `+1650555${String(1000 + (seq++ % 9000))}`;
const newEmail = () => `new-${crypto.randomBytes(4).toString('hex')}@example.com`;
const phoneHint = (phone: string) => `+1 *** *** ${phone.slice(-4)}`;

/** An API client signed in as one user. */
function as(token: string) {
  return {
    token,
    get: (path: string) => h.api.get(path, bearer(token)),
    post: (path: string, body?: unknown) => h.api.post(path, body, bearer(token)),
    del: (path: string) => h.api.call('DELETE', path, undefined, bearer(token)),
  };
}
type User = ReturnType<typeof as>;

async function signIn(identifier: string, password: string): Promise<User> {
  const r = await h.api.post('/v1/sessions', { identifier, password });
  if (r.status !== 201) throw new Error(`sign-in: ${r.status} ${JSON.stringify(r.body)}`);
  return as(r.body.token);
}

/** The newest code flow `flowId` sent to `to`. */
async function codeOf(to: string, flowId: string, match = /verification code is \d{6}/): Promise<{ code: string; text: string }> {
  for (let i = 0; i < 100; i++) {
    const { body } = await h.api.get(`/v1/dev/outbox?to=${encodeURIComponent(to)}`);
    const hit = (body as { text: string; flowId?: string }[]).find((m) => m.flowId === flowId && match.test(m.text) && /verification code is \d{6}/.test(m.text));
    if (hit) return { code: /\d{6}/.exec(hit.text)![0], text: hit.text };
    await sleep(150);
  }
  throw new Error(`no code for ${flowId} to ${to}`);
}

async function waitForFlow(user: User, flowId: string, until: (flow: any) => boolean): Promise<any> {
  for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
    const { body } = await user.get(`/v1/flows/${flowId}`);
    if (until(body)) return body;
    await sleep(100);
  }
  throw new Error(`flow ${flowId} never got there: ${JSON.stringify((await user.get(`/v1/flows/${flowId}`)).body)}`);
}

/** Starts a change and verifies the identity with the code to the current phone (email): the flow is at new_phone (new_email). */
async function toNew(user: User, what: 'phone' | 'email', current: string): Promise<string> {
  const start = await user.post(`/v1/flows/change-${what}`);
  if (start.status !== 201) throw new Error(`start: ${start.status} ${JSON.stringify(start.body)}`);
  const id: string = start.body.flowId;
  const { code } = await codeOf(current, id);
  const r = await user.post(`/v1/flows/${id}/code`, { code });
  expect(r.body.step).toBe(`new_${what}`);
  return id;
}

/** new-phone (new-email) and the "OK": the code is on its way to the new one. */
async function toNewCode(user: User, id: string, what: 'phone' | 'email', value: string) {
  const chosen = await user.post(`/v1/flows/${id}/new-${what}`, { [what]: value });
  expect(chosen.body.step).toBe(`confirm_new_${what}`);
  const atCode = await user.post(`/v1/flows/${id}/confirm`);
  expect(atCode.body.step).toBe('code');
  return atCode.body;
}

test('the must show: sign up by phone, sign in with the new password, change the phone, sign in by the new phone', async () => {
  // Sign up by phone over HTTP.
  const phone = newPhone();
  const password = 'fresh account passphrase 9';
  const start = await h.api.post('/v1/flows/sign-up', { phone });
  expect(start.status).toBe(201);
  const signUpId = start.body.flowId;
  await h.api.post(`/v1/flows/${signUpId}/code`, { code: (await codeOf(phone, signUpId)).code });
  await h.api.get(`/v1/flows/${signUpId}/captcha`);
  await h.api.post(`/v1/flows/${signUpId}/captcha`, { answer: 'test' });
  await h.api.post(`/v1/flows/${signUpId}/consent`, { accept: true, syncEnabled: true, versions: { 'privacy-policy': '2026-01', 'user-agreement': '2026-01' } });
  const done = await h.api.post(`/v1/flows/${signUpId}/password`, { password, confirmation: password });
  expect(done.body).toMatchObject({ status: 'completed', step: 'done' });
  const accountId = done.body.accountId;

  // Sign in with the new password.
  const user = await signIn(phone, password);
  expect((await user.get('/v1/me')).body.accountId).toBe(accountId);

  // Change the phone: verify with a code to the current one, give the new one, OK, code to the new one.
  const id = await toNew(user, 'phone', phone);
  const phone2 = newPhone();
  await toNewCode(user, id, 'phone', phone2);
  const changed = await user.post(`/v1/flows/${id}/code`, { code: (await codeOf(phone2, id)).code });
  expect(changed.body).toMatchObject({ kind: 'change_phone', status: 'completed', step: 'done' });

  // Sign in by the new phone; the old one no longer signs in.
  const again = await h.api.post('/v1/sessions', { identifier: phone2, password });
  expect(again.status).toBe(201);
  expect(again.body.accountId).toBe(accountId);
  expect((await h.api.post('/v1/sessions', { identifier: phone, password })).status).toBe(401);
});

describe('change phone', () => {
  test('verify → new phone (taken: 409, stays) → OK → code to the new phone → done; other sessions revoked, old phone and email told', async () => {
    const acc = await makeAccount();
    const other = await makeAccount();
    const user = await signIn(acc.email, acc.password);
    const otherDevice = await signIn(acc.phone, acc.password);

    const start = await user.post('/v1/flows/change-phone');
    expect(start.status).toBe(201);
    expect(start.body).toMatchObject({
      kind: 'change_phone',
      status: 'active',
      step: 'code',
      channel: 'sms',
      destinationHint: phoneHint(acc.phone),
      attemptsLeft: 3,
      resendsLeft: 2,
    });
    expect(start.body.flowId).toMatch(/^chp_[A-Za-z0-9_-]{22}$/);
    const id = start.body.flowId;
    const verify = await codeOf(acc.phone, id);
    expect(verify.text).toMatch(/to verify your identity/);
    expect((await user.post(`/v1/flows/${id}/code`, { code: verify.code })).body).toMatchObject({ step: 'new_phone' });

    expect((await user.post(`/v1/flows/${id}/new-phone`, { phone: '12345' })).body.code).toBe('validation_failed');
    const taken = await user.post(`/v1/flows/${id}/new-phone`, { phone: other.phone });
    expect(taken.status).toBe(409);
    expect(taken.body).toMatchObject({ code: 'phone_taken', flow: { step: 'new_phone' } });
    const same = await user.post(`/v1/flows/${id}/new-phone`, { phone: acc.phone });
    expect(same.body).toMatchObject({ status: 422, code: 'validation_failed', reasons: ['same_as_current'] });
    expect((await user.post(`/v1/flows/${id}/confirm`)).body.code).toBe('step_mismatch');
    expect((await user.get(`/v1/flows/${id}`)).body.step).toBe('new_phone');

    // The pop-up shows the number; another number may replace it there; "OK" sends the code.
    const first = newPhone();
    expect((await user.post(`/v1/flows/${id}/new-phone`, { phone: first })).body).toMatchObject({ step: 'confirm_new_phone', newDestinationHint: phoneHint(first) });
    const phone2 = newPhone();
    expect((await user.post(`/v1/flows/${id}/new-phone`, { phone: phone2 })).body).toMatchObject({ step: 'confirm_new_phone', newDestinationHint: phoneHint(phone2) });
    const atCode = await user.post(`/v1/flows/${id}/confirm`);
    expect(atCode.body).toMatchObject({ step: 'code', channel: 'sms', destinationHint: phoneHint(phone2), attemptsLeft: 3 });
    // The code to the new phone lives CHANGE_PHONE_CODE_TTL, and the flow with it.
    expect(Date.parse(atCode.body.codeExpiresAt) - Date.now()).toBeGreaterThan(CONTACT_CODE_TTL_MS - 3_000);
    expect(atCode.body.expiresAt).toBe(atCode.body.codeExpiresAt);
    expect((await user.post(`/v1/flows/${id}/not-working`)).body.code).toBe('step_mismatch');

    const confirm = await codeOf(phone2, id);
    expect(confirm.text).toMatch(/to confirm your new phone number/);
    const done = await user.post(`/v1/flows/${id}/code`, { code: confirm.code });
    expect(done.body).toMatchObject({ status: 'completed', step: 'done' });

    expect((await h.api.post('/v1/sessions', { identifier: phone2, password: acc.password })).body.accountId).toBe(acc.accountId);
    expect((await h.api.post('/v1/sessions', { identifier: acc.phone, password: acc.password })).status).toBe(401);
    expect((await user.get('/v1/me')).body.phone).toBe(phoneHint(phone2));
    expect((await otherDevice.get('/v1/me')).status).toBe(401);
    for (const to of [acc.phone, acc.email]) {
      const told = await h.api.waitForMessage(to, { match: /phone number of your account was changed/ });
      expect(told.text).toContain(phoneHint(phone2));
    }
    // Nothing of first, the number that was replaced in the pop-up.
    expect((await h.api.get(`/v1/dev/outbox?to=${encodeURIComponent(first)}`)).body).toEqual([]);
    const { Contact } = await import('../db/models');
    expect(await Contact.exists({ _id: `phone:${acc.phone}` })).toBeNull();
  });

  test('the one-day code lapsing ends the flow expired; nothing changes', async () => {
    const acc = await makeAccount();
    const user = await signIn(acc.email, acc.password);
    const id = await toNew(user, 'phone', acc.phone);
    const phone2 = newPhone();
    await toNewCode(user, id, 'phone', phone2);
    const { code } = await codeOf(phone2, id);
    const ended = await waitForFlow(user, id, (f) => f.status !== 'active');
    expect(ended).toMatchObject({ status: 'expired', reason: 'code_lapsed', step: 'code' });
    expect((await user.post(`/v1/flows/${id}/code`, { code })).body.code).toBe('step_mismatch');
    expect((await h.api.post('/v1/sessions', { identifier: acc.phone, password: acc.password })).status).toBe(201);
    expect((await h.api.post('/v1/sessions', { identifier: phone2, password: acc.password })).status).toBe(401);
  }, 30_000);

  test('a number somebody takes before the code comes back: the code answers 409 phone_taken, back at new_phone', async () => {
    const acc = await makeAccount();
    const user = await signIn(acc.email, acc.password);
    const id = await toNew(user, 'phone', acc.phone);
    const contested = newPhone();
    await toNewCode(user, id, 'phone', contested);
    const { code } = await codeOf(contested, id);
    const squatter = await makeAccount({ phone: contested });

    const lost = await user.post(`/v1/flows/${id}/code`, { code });
    expect(lost.status).toBe(409);
    expect(lost.body).toMatchObject({ code: 'phone_taken', flow: { status: 'active', step: 'new_phone' } });
    const { Contact } = await import('../db/models');
    expect((await Contact.findById(`phone:${contested}`).lean())?.accountId).toBe(squatter.accountId);
    expect((await user.get('/v1/me')).body.phone).toBe(phoneHint(acc.phone));

    const phone3 = newPhone();
    await toNewCode(user, id, 'phone', phone3);
    expect((await user.post(`/v1/flows/${id}/code`, { code: (await codeOf(phone3, id)).code })).body.status).toBe('completed');
    expect((await user.get('/v1/me')).body.phone).toBe(phoneHint(phone3));
  });
});

describe('change email', () => {
  test('verify by the current email → new_email → confirm_new_email → code to the new email → done', async () => {
    const acc = await makeAccount();
    const user = await signIn(acc.phone, acc.password);
    const start = await user.post('/v1/flows/change-email');
    expect(start.body).toMatchObject({ kind: 'change_email', step: 'code', channel: 'email', destinationHint: `${acc.email[0]}***@example.com` });
    expect(start.body.flowId).toMatch(/^che_/);
    const id = start.body.flowId;
    await user.post(`/v1/flows/${id}/code`, { code: (await codeOf(acc.email, id)).code });
    expect((await user.post(`/v1/flows/${id}/new-phone`, { phone: newPhone() })).body.code).toBe('step_mismatch');
    const email2 = newEmail();
    const shown = await user.post(`/v1/flows/${id}/new-email`, { email: email2.toUpperCase() });
    expect(shown.body).toMatchObject({ step: 'confirm_new_email', newDestinationHint: `${email2[0]}***@example.com` });
    expect((await user.post(`/v1/flows/${id}/confirm`)).body).toMatchObject({ step: 'code', channel: 'email' });
    const done = await user.post(`/v1/flows/${id}/code`, { code: (await codeOf(email2, id)).code });
    expect(done.body.status).toBe('completed');
    expect((await h.api.post('/v1/sessions', { identifier: email2, password: acc.password })).body.accountId).toBe(acc.accountId);
    expect((await h.api.post('/v1/sessions', { identifier: acc.email, password: acc.password })).status).toBe(401);
    for (const to of [acc.email, acc.phone]) await h.api.waitForMessage(to, { match: /email address of your account was changed/ });
  });

  test('an account without an email verifies by phone, and the change gives it one', async () => {
    const { createAccount } = await import('../domain/accounts');
    const { hashSecret } = await import('../lib/passwords');
    const phone = newPhone();
    const accountId = await createAccount({ phone, passwordHash: await hashSecret('phone only account pass') });
    const user = await signIn(phone, 'phone only account pass');
    const start = await user.post('/v1/flows/change-email');
    expect(start.body).toMatchObject({ step: 'code', channel: 'sms', destinationHint: phoneHint(phone) });
    await user.post(`/v1/flows/${start.body.flowId}/code`, { code: (await codeOf(phone, start.body.flowId)).code });
    const email = newEmail();
    await toNewCode(user, start.body.flowId, 'email', email);
    await user.post(`/v1/flows/${start.body.flowId}/code`, { code: (await codeOf(email, start.body.flowId)).code });
    expect((await h.api.post('/v1/sessions', { identifier: email, password: 'phone only account pass' })).body.accountId).toBe(accountId);
  });
});

describe('"Not working?" when the current number is dead', () => {
  test('security questions right: on to new_phone, told that a hold follows; held, then the phone changes', async () => {
    const acc = await makeAccount();
    const user = await signIn(acc.email, acc.password);
    const id = (await user.post('/v1/flows/change-phone')).body.flowId;
    const q = await user.post(`/v1/flows/${id}/not-working`);
    expect(q.body).toMatchObject({ step: 'security_questions', attemptsLeft: 2 });
    expect(q.body.questions.map((x: { id: string }) => x.id).sort()).toEqual(['q-birth-city', 'q-first-pet', 'q-first-school']);
    const ok = await user.post(`/v1/flows/${id}/security-answers`, { answers: acc.answers });
    expect(ok.body).toMatchObject({ step: 'new_phone', holdSeconds: 3 });
    const phone2 = newPhone();
    await toNewCode(user, id, 'phone', phone2);
    // v1.1: proven by answers, not by a code to a channel on file: held, and every channel on file can veto
    const held = await user.post(`/v1/flows/${id}/code`, { code: (await codeOf(phone2, id)).code });
    expect(held.body).toMatchObject({ status: 'active', step: 'hold' });
    await h.api.waitForMessage(acc.phone, { match: /cancel it now/ });
    await h.api.waitForMessage(acc.email, { match: /cancel it now/ });
    expect(await waitForFlow(user, id, (f) => f.status !== 'active')).toMatchObject({ status: 'completed' });
    expect((await h.api.post('/v1/sessions', { identifier: phone2, password: acc.password })).status).toBe(201);
  });

  test('not working twice → support → approved: a code to the contact email → new_phone', async () => {
    const acc = await makeAccount();
    const user = await signIn(acc.email, acc.password);
    const id = (await user.post('/v1/flows/change-phone')).body.flowId;
    await user.post(`/v1/flows/${id}/not-working`);
    expect((await user.post(`/v1/flows/${id}/not-working`)).body.step).toBe('support');
    expect((await user.post(`/v1/flows/${id}/not-working`)).body.code).toBe('step_mismatch');
    const contactEmail = `help-${crypto.randomBytes(3).toString('hex')}@elsewhere.example`;
    const form = await user.post(`/v1/flows/${id}/support`, { accountId: acc.accountId, imei: '490154203237518', contactEmail });
    expect(form.body).toMatchObject({ step: 'support_review' });
    const approve = await h.api.post(`/v1/ops/support-cases/${form.body.supportCaseId}/approve`, { reviewer: 'ops', note: 'IMEI matches' }, OPS);
    expect(approve.status).toBe(200);
    const atCode = await waitForFlow(user, id, (f) => f.step === 'code');
    expect(atCode).toMatchObject({ channel: 'email', destinationHint: 'h***@elsewhere.example' });
    expect((await user.post(`/v1/flows/${id}/code`, { code: (await codeOf(contactEmail, id)).code })).body.step).toBe('new_phone');
  });

  test('wrong answers until used up → support → rejected: the flow ends rejected', async () => {
    const acc = await makeAccount();
    const user = await signIn(acc.email, acc.password);
    const id = (await user.post('/v1/flows/change-phone')).body.flowId;
    await user.post(`/v1/flows/${id}/not-working`);
    const wrong = acc.answers.map((a) => ({ ...a, answer: 'red' }));
    expect((await user.post(`/v1/flows/${id}/security-answers`, { answers: wrong })).body).toMatchObject({ code: 'answers_invalid', attemptsLeft: 1 });
    const used = await user.post(`/v1/flows/${id}/security-answers`, { answers: wrong });
    expect(used.body).toMatchObject({ code: 'answers_invalid', attemptsLeft: 0, flow: { step: 'support' } });
    const form = await user.post(`/v1/flows/${id}/support`, { accountId: acc.accountId, imei: '490154203237518', contactEmail: 'me@elsewhere.example' });
    const reject = await h.api.post(`/v1/ops/support-cases/${form.body.supportCaseId}/reject`, { reviewer: 'ops', note: 'no match' }, OPS);
    expect([reject.status, reject.body.status]).toEqual([200, 'rejected']);
    expect(await waitForFlow(user, id, (f) => f.status !== 'active')).toMatchObject({ status: 'rejected', reason: 'support_rejected' });
  });
});

describe('who may change', () => {
  test('signed out: 401; signed in too long ago: 403 reauth_required', async () => {
    const acc = await makeAccount();
    expect((await h.api.post('/v1/flows/change-phone')).status).toBe(401);
    expect((await h.api.post('/v1/flows/change-email', undefined, bearer('not-a-session'))).body.code).toBe('unauthorized');
    const user = await signIn(acc.email, acc.password);
    const out = await user.del('/v1/sessions/current');
    expect(out.status).toBe(204);
    expect((await user.post('/v1/flows/change-phone')).status).toBe(401);

    const stale = await signIn(acc.email, acc.password);
    const { Session } = await import('../db/models');
    const { sha256 } = await import('../lib/secrets');
    await Session.updateOne({ _id: sha256(stale.token) }, { $set: { authenticatedAt: new Date(Date.now() - 2 * 3_600_000) } });
    const r = await stale.post('/v1/flows/change-email');
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('reauth_required');
    expect((await stale.get('/v1/me')).status).toBe(200); // still signed in, just not for this
  });

  test("another account's session cannot see or drive the flow (404), nor can no session", async () => {
    const acc = await makeAccount();
    const intruder = await signIn((await makeAccount()).email, 'old password is long enough');
    const user = await signIn(acc.email, acc.password);
    const id = (await user.post('/v1/flows/change-phone')).body.flowId;
    const { code } = await codeOf(acc.phone, id);
    for (const r of [
      await intruder.get(`/v1/flows/${id}`),
      await intruder.post(`/v1/flows/${id}/code`, { code }),
      await intruder.post(`/v1/flows/${id}/not-working`),
      await intruder.del(`/v1/flows/${id}`),
      await h.api.get(`/v1/flows/${id}`),
      await h.api.post(`/v1/flows/${id}/code`, { code }),
    ]) {
      expect([r.status, r.body.code]).toEqual([404, 'flow_not_found']);
    }
    expect((await user.post(`/v1/flows/${id}/code`, { code })).body.step).toBe('new_phone');
  });

  test("another account's session is refused by the flow's start record, never by asking the worker", async () => {
    // A change flow as the API starts it (its owner in the memo), on a queue no worker polls: a query would wait
    // for a worker; refusing a stranger needs none (a stranger's requests are counted by nothing before this).
    const { temporalClient, flowSettings } = await import('../lib/temporal');
    const { changePhone } = await import('../workflows/change-contact');
    const { KIND_PREFIX, KIND_SLUG, flowAttributes } = await import('../workflows/messages');
    const owner = await makeAccount();
    const intruder = await signIn((await makeAccount()).email, 'old password is long enough');
    const flowId = `${KIND_PREFIX.change_phone}${crypto.randomBytes(16).toString('base64url')}`;
    const handle = await (
      await temporalClient()
    ).workflow.start(changePhone, {
      workflowId: `${KIND_SLUG.change_phone}/${flowId}`,
      taskQueue: `nobody-polls-${crypto.randomBytes(3).toString('hex')}`,
      args: [{ flowId, accountId: owner.accountId, sessionId: 'x', settings: flowSettings(), contactCodeTtlMs: 60_000, expiresAt: Date.now() + 60_000 }],
      memo: { ownerAccountId: owner.accountId },
      typedSearchAttributes: flowAttributes('change_phone', 'code', 'active', new Date()),
    });
    try {
      const t0 = Date.now();
      const r = await intruder.get(`/v1/flows/${flowId}`);
      expect([r.status, r.body.code]).toEqual([404, 'flow_not_found']);
      expect(Date.now() - t0).toBeLessThan(5_000);
    } finally {
      await handle.terminate('test over');
    }
  }, 60_000);
});

describe('a pending change ends', () => {
  test('when its user signs out', async () => {
    const acc = await makeAccount();
    const user = await signIn(acc.email, acc.password);
    const id = await toNew(user, 'phone', acc.phone);
    await toNewCode(user, id, 'phone', newPhone());
    expect((await user.del('/v1/sessions/current')).status).toBe(204);
    const back = await signIn(acc.email, acc.password);
    expect(await waitForFlow(back, id, (f) => f.status !== 'active')).toMatchObject({ status: 'cancelled', reason: 'signed_out' });
    expect((await back.post(`/v1/flows/${id}/confirm`)).body.code).toBe('step_mismatch');
  });

  test('when a password reset completes', async () => {
    const acc = await makeAccount();
    const user = await signIn(acc.email, acc.password);
    const id = (await user.post('/v1/flows/change-email')).body.flowId;
    const reset = await h.api.resetToCode(acc.phone);
    await h.api.post(`/v1/flows/${reset.flowId}/code`, { code: (await h.api.codeFor(acc.phone)).code });
    const password = 'reset while changing email';
    expect((await h.api.post(`/v1/flows/${reset.flowId}/password`, { password, confirmation: password })).body.status).toBe('completed');
    const back = await signIn(acc.email, password);
    expect(await waitForFlow(back, id, (f) => f.status !== 'active')).toMatchObject({ status: 'cancelled', reason: 'password_reset' });
  });

  test('when a newer change of the same kind starts; DELETE cancels', async () => {
    const acc = await makeAccount();
    const user = await signIn(acc.email, acc.password);
    const first = (await user.post('/v1/flows/change-phone')).body.flowId;
    const second = (await user.post('/v1/flows/change-phone')).body.flowId;
    expect((await waitForFlow(user, first, (f) => f.status !== 'active')).reason).toBe('superseded'); // v1.1: names no other flow
    expect((await user.del(`/v1/flows/${second}`)).body).toMatchObject({ status: 'cancelled', reason: 'cancelled_by_user' });
  });
});
