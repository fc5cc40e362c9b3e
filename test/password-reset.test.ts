/**
 * Forgot password over HTTP, against the real API, worker, Temporal dev server, FerretDB and SMTP
 * capture. Durations are seconds (see FAST in the harness), passed into the workflow as input.
 */
import crypto from 'node:crypto';
import { startHarness, makeAccount, type Harness } from './support/harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('reset');
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function signIn(identifier: string, password: string) {
  return h.api.post('/v1/sessions', { identifier, password });
}

async function finishWithPassword(flowId: string, password = 'a brand new passphrase 7') {
  return h.api.post(`/v1/flows/${flowId}/password`, { password, confirmation: password });
}

describe('the happy path', () => {
  test('by email: captcha, code from the mailbox, new password; sessions revoked, owner told', async () => {
    const acc = await makeAccount();
    const before = await signIn(acc.email, acc.password);
    expect(before.status).toBe(201);

    const start = await h.api.post('/v1/flows/password-reset', { identifier: acc.email.toUpperCase() });
    expect(start.status).toBe(201);
    expect(start.body).toMatchObject({ kind: 'password_reset', status: 'active', step: 'captcha' });
    expect(start.body.flowId).toMatch(/^rst_[A-Za-z0-9_-]{22}$/);
    const id = start.body.flowId;

    const svg = await h.api.get(`/v1/flows/${id}/captcha`);
    expect(svg.status).toBe(200);
    expect(svg.headers.get('content-type')).toContain('image/svg+xml');
    const atCode = await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'TEST' });
    expect(atCode.body).toMatchObject({ step: 'code', channel: 'email', attemptsLeft: 3, resendsLeft: 2 });
    expect(atCode.body.destinationHint).toBe(`${acc.email[0]}***@example.com`);

    const { code } = await h.api.codeFor(acc.email);
    const atPassword = await h.api.post(`/v1/flows/${id}/code`, { code });
    expect(atPassword.status).toBe(200);
    expect(atPassword.body.step).toBe('new_password');

    const done = await finishWithPassword(id);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'completed', step: 'done' });

    expect((await signIn(acc.email, acc.password)).status).toBe(401);
    expect((await signIn(acc.email, 'a brand new passphrase 7')).status).toBe(201);
    expect((await h.api.get('/v1/me', { authorization: `Bearer ${before.body.token}` })).status).toBe(401);
    const notice = await h.api.waitForMessage(acc.email, { match: /password of your account was changed/ });
    expect(notice.text).not.toMatch(/\d{6}/);
    await h.api.waitForMessage(acc.phone, { match: /password of your account was changed/ });
    expect((await h.api.get(`/v1/flows/${id}`)).body.status).toBe('completed');
  });

  test('by phone: the code goes by SMS', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.phone);
    expect(flow).toMatchObject({ channel: 'sms', destinationHint: `+1 *** *** ${acc.phone.slice(-4)}` });
    const { code } = await h.api.codeFor(acc.phone);
    expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code })).body.step).toBe('new_password');
    expect((await finishWithPassword(flow.flowId)).body.status).toBe('completed');
  });

  test('by account id: the code goes to the phone on file', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.accountId);
    expect(flow.channel).toBe('sms');
    const { code } = await h.api.codeFor(acc.phone);
    expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code })).body.step).toBe('new_password');
  });

  test('a locked account can still be reset, and the reset unlocks it', async () => {
    const acc = await makeAccount();
    for (let i = 0; i < 10; i++) await signIn(acc.email, 'wrong password guess');
    expect((await signIn(acc.email, acc.password)).status).toBe(423);
    const flow = await h.api.resetToCode(acc.email);
    const { code } = await h.api.codeFor(acc.email);
    await h.api.post(`/v1/flows/${flow.flowId}/code`, { code });
    expect((await finishWithPassword(flow.flowId, 'unlocked at last, finally')).body.status).toBe('completed');
    expect((await signIn(acc.email, 'unlocked at last, finally')).status).toBe(201);
  });
});

describe('codes', () => {
  test('wrong codes until the code is burned; a resend gives a new one that works', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.email);
    const first = await h.api.codeFor(acc.email);
    const wrong = first.code === '000000' ? '111111' : '000000';
    const r1 = await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: wrong });
    expect(r1.status).toBe(422);
    expect(r1.headers.get('content-type')).toContain('application/problem+json');
    expect(r1.body).toMatchObject({ code: 'code_invalid', attemptsLeft: 2, status: 422 });
    expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: wrong })).body).toMatchObject({ code: 'code_invalid', attemptsLeft: 1 });
    expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: wrong })).body).toMatchObject({ code: 'code_exhausted' });
    // Burned: even the right code is refused now.
    expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: first.code })).body.code).toBe('code_exhausted');

    await sleep(2_100);
    const resent = await h.api.post(`/v1/flows/${flow.flowId}/resend`);
    expect(resent.status).toBe(200);
    expect(resent.body).toMatchObject({ step: 'code', attemptsLeft: 3, resendsLeft: 1 });
    const second = await h.api.codeFor(acc.email, first.sentAt);
    expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: second.code })).body.step).toBe('new_password');
  });

  test('resend: cooldown with Retry-After, then a new code (the old one void), then the limit', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.email);
    const first = await h.api.codeFor(acc.email);
    const tooSoon = await h.api.post(`/v1/flows/${flow.flowId}/resend`);
    expect(tooSoon.status).toBe(429);
    expect(tooSoon.body.code).toBe('resend_too_soon');
    expect(Number(tooSoon.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    await sleep(2_100);
    expect((await h.api.post(`/v1/flows/${flow.flowId}/resend`)).status).toBe(200);
    const second = await h.api.codeFor(acc.email, first.sentAt);
    await sleep(2_100);
    expect((await h.api.post(`/v1/flows/${flow.flowId}/resend`)).body.resendsLeft).toBe(0);
    const third = await h.api.codeFor(acc.email, second.sentAt);
    await sleep(2_100);
    const limit = await h.api.post(`/v1/flows/${flow.flowId}/resend`);
    expect(limit.status).toBe(429);
    expect(limit.body.code).toBe('resend_limit');

    if (first.code !== third.code) expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: first.code })).body.code).toBe('code_invalid');
    expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: third.code })).body.step).toBe('new_password');
  });

  test('each issued code is delivered exactly once', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.email);
    await h.api.codeFor(acc.email);
    await sleep(500);
    const { body } = await h.api.get(`/v1/dev/outbox?to=${encodeURIComponent(acc.email)}`);
    expect(body.filter((m: { flowId: string }) => m.flowId === flow.flowId)).toHaveLength(1);
  });
});

describe('"Not working?"', () => {
  test('security questions right: the reset is held, every channel can veto, then it applies', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.email);
    const q = await h.api.post(`/v1/flows/${flow.flowId}/not-working`);
    expect(q.body).toMatchObject({ step: 'security_questions', attemptsLeft: 2 });
    expect(q.body.questions.map((x: { id: string }) => x.id).sort()).toEqual(['q-birth-city', 'q-first-pet', 'q-first-school']);
    const ok = await h.api.post(`/v1/flows/${flow.flowId}/security-answers`, { answers: acc.answers });
    expect(ok.status).toBe(200);
    expect(ok.body.step).toBe('new_password');
    const held = await finishWithPassword(flow.flowId, 'held but then applied ok');
    expect(held.body).toMatchObject({ status: 'active', step: 'hold' });
    expect(Date.parse(held.body.holdUntil)).toBeGreaterThan(Date.now());
    const notice = await h.api.waitForMessage(acc.phone, { match: /takes effect/ });
    expect(notice.text).toMatch(/token=/);
    await h.api.waitForMessage(acc.email, { match: /takes effect/ });
    // During the hold the old password still works.
    expect((await signIn(acc.email, acc.password)).status).toBe(201);
    await sleep(4_000);
    expect((await h.api.get(`/v1/flows/${flow.flowId}`)).body.status).toBe('completed');
    expect((await signIn(acc.email, 'held but then applied ok')).status).toBe(201);
  });

  test('a veto with the token from the notice cancels the held reset and changes nothing', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.phone);
    await h.api.post(`/v1/flows/${flow.flowId}/not-working`);
    await h.api.post(`/v1/flows/${flow.flowId}/security-answers`, { answers: acc.answers });
    await finishWithPassword(flow.flowId, 'attacker chosen passphrase');
    const notice = await h.api.waitForMessage(acc.email, { match: /takes effect/ });
    const token = /token=([A-Za-z0-9_-]+)/.exec(notice.text)![1];
    expect((await h.api.post(`/v1/flows/${flow.flowId}/veto`, { token: 'not-the-token' })).body.code).toBe('token_invalid');
    const vetoed = await h.api.post(`/v1/flows/${flow.flowId}/veto`, { token });
    expect(vetoed.body).toMatchObject({ status: 'cancelled' });
    await sleep(3_500);
    expect((await signIn(acc.email, acc.password)).status).toBe(201);
    expect((await signIn(acc.email, 'attacker chosen passphrase')).status).toBe(401);
  });

  test('wrong answers until used up move the flow to support, which accepts the form', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.email);
    await h.api.post(`/v1/flows/${flow.flowId}/not-working`);
    const wrong = acc.answers.map((a) => ({ ...a, answer: 'red' }));
    const w1 = await h.api.post(`/v1/flows/${flow.flowId}/security-answers`, { answers: wrong });
    expect(w1.body).toMatchObject({ code: 'answers_invalid', attemptsLeft: 1 });
    const w2 = await h.api.post(`/v1/flows/${flow.flowId}/security-answers`, { answers: wrong });
    expect(w2.body).toMatchObject({ code: 'answers_invalid', attemptsLeft: 0 });
    expect(w2.body.flow.step).toBe('support');
    expect((await h.api.get(`/v1/flows/${flow.flowId}`)).body.step).toBe('support');
    const bad = await h.api.post(`/v1/flows/${flow.flowId}/support`, { accountId: acc.accountId, imei: '12', contactEmail: 'x' });
    expect(bad.status).toBe(422);
    expect(bad.body.code).toBe('validation_failed');
    const form = await h.api.post(`/v1/flows/${flow.flowId}/support`, { accountId: acc.accountId, imei: '490154203237518', contactEmail: 'me@elsewhere.example' });
    expect(form.status).toBe(200);
    expect(form.body.step).toBe('support_review');
    expect(form.body.supportCaseId).toMatch(/^case_/);
  });

  test('"not working" twice goes from code straight to support', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.email);
    await h.api.post(`/v1/flows/${flow.flowId}/not-working`);
    const s = await h.api.post(`/v1/flows/${flow.flowId}/not-working`);
    expect(s.body.step).toBe('support');
    expect((await h.api.post(`/v1/flows/${flow.flowId}/not-working`)).body.code).toBe('step_mismatch');
  });
});

describe('flow control', () => {
  test('out-of-order calls answer 409 step_mismatch and change nothing', async () => {
    const start = await h.api.post('/v1/flows/password-reset', { identifier: 'nobody-here@example.com' });
    const id = start.body.flowId;
    for (const [path, body] of [
      ['code', { code: '123456' }],
      ['resend', undefined],
      ['not-working', undefined],
      ['password', { password: 'whatever it is now', confirmation: 'whatever it is now' }],
      ['security-answers', { answers: [{ questionId: 'q-first-pet', answer: 'x' }] }],
    ] as const) {
      const r = await h.api.post(`/v1/flows/${id}/${path}`, body);
      expect([path, r.status, r.body.code]).toEqual([path, 409, 'step_mismatch']);
    }
    // v1.1: a veto token is checked before the flow is looked up, so a wrong one is token_invalid on any flow
    expect((await h.api.post(`/v1/flows/${id}/veto`, { token: 'abc' })).body.code).toBe('token_invalid');
    expect((await h.api.get(`/v1/flows/${id}`)).body.step).toBe('captcha');
  });

  test('a wrong captcha voids the challenge: the same answer is refused until a new picture', async () => {
    const start = await h.api.post('/v1/flows/password-reset', { identifier: 'captcha-user@example.com' });
    const id = start.body.flowId;
    await h.api.get(`/v1/flows/${id}/captcha`);
    expect((await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'nope' })).body.code).toBe('captcha_invalid');
    expect((await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'test' })).body.code).toBe('captcha_invalid');
    await h.api.get(`/v1/flows/${id}/captcha`);
    expect((await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'test' })).body.step).toBe('code');
  });

  test('pictures and wrong answers never reach the flow: its history takes one update, the passed captcha', async () => {
    const start = await h.api.post('/v1/flows/password-reset', { identifier: 'captcha-history@example.com' });
    const id = start.body.flowId;
    for (let i = 0; i < 3; i++) {
      await h.api.get(`/v1/flows/${id}/captcha`);
      expect((await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'wrong' })).body.code).toBe('captcha_invalid');
    }
    await h.api.get(`/v1/flows/${id}/captcha`);
    expect((await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'test' })).body.step).toBe('code');
    const { temporalClient } = await import('../lib/temporal');
    const history = await (await temporalClient()).workflow.getHandle(`password-reset/${id}`).fetchHistory();
    const updates = history
      .events!.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)
      .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes!.acceptedRequest!.input!.name);
    expect(updates).toEqual(['submitCaptcha']);
  });

  test('30 right answers to one picture at once: one passes, the others find the picture taken', async () => {
    const start = await h.api.post('/v1/flows/password-reset', { identifier: 'captcha-burst@example.com' });
    const id = start.body.flowId;
    await h.api.get(`/v1/flows/${id}/captcha`);
    const answers = await Promise.all(Array.from({ length: 30 }, () => h.api.post(`/v1/flows/${id}/captcha`, { answer: 'test' })));
    const tally: Record<string, number> = {};
    for (const r of answers) tally[`${r.status} ${r.body.code ?? r.body.step}`] = (tally[`${r.status} ${r.body.code ?? r.body.step}`] ?? 0) + 1;
    // a second pass of the captcha is refused by the flow (409), or finds no picture (422): either way never a second 200
    expect(tally['200 code']).toBe(1);
    expect(answers.filter((r) => r.status !== 200).every((r) => r.status === 422 || r.status === 409)).toBe(true);
  });

  test('30 pictures asked at once, for an account and an unknown identifier: each 200, one answer passes, one code is stored; past the captcha 30 at once are all refused and none is kept', async () => {
    const { Code, FlowRecord } = await import('../db/models');
    const acc = await makeAccount();
    for (const identifier of [acc.email, `nobody-${crypto.randomBytes(3).toString('hex')}@example.com`]) {
      const id = (await h.api.post('/v1/flows/password-reset', { identifier })).body.flowId;
      const pictures = await Promise.all(Array.from({ length: 30 }, () => h.api.get(`/v1/flows/${id}/captcha`)));
      expect(pictures.map((r) => r.status)).toEqual(Array(30).fill(200));
      const answers = await Promise.all(Array.from({ length: 30 }, () => h.api.post(`/v1/flows/${id}/captcha`, { answer: 'test' })));
      expect(answers.filter((r) => r.status === 200)).toHaveLength(1);
      expect(await Code.countDocuments({ flowId: id })).toBe(1);
      const late = await Promise.all(Array.from({ length: 30 }, () => h.api.get(`/v1/flows/${id}/captcha`)));
      expect(late.map((r) => r.body.code)).toEqual(Array(30).fill('step_mismatch'));
      expect(await FlowRecord.findById(id).lean()).not.toHaveProperty('challenge');
    }
  });

  test('30 right codes at once: the flow opens the new password step once, and every one gives its count back', async () => {
    const { Counter } = await import('../db/models');
    const { GUESS_WINDOW_MS, identifierKey } = await import('../domain/limits');
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.email);
    const { code } = await h.api.codeFor(acc.email);
    const window = Math.floor(Date.now() / GUESS_WINDOW_MS);
    const ids = [`guesses:identifier:${identifierKey(acc.email)}@${window}`, `guesses:account:${acc.accountId}@${window}`];
    const answers = await Promise.all(Array.from({ length: 30 }, () => h.api.post(`/v1/flows/${flow.flowId}/code`, { code })));
    // those the flow took in the same task all see the step they opened; the later ones find it over (409); those
    // counted past the budget while the first 20 were in flight are refused unjudged (429)
    expect(answers.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(1);
    const other = answers.filter((r) => !((r.status === 200 && r.body.step === 'new_password') || r.status === 409 || r.body.code === 'too_many_attempts'));
    expect(other.map((r) => [r.status, r.body])).toEqual([]);
    // (a right guess is answered before its count is back: every count is back soon after)
    const counts = async () => Promise.all(ids.map(async (_id) => (await Counter.findById(_id).lean())?.n ?? 0));
    for (let waited = 0; waited < 5_000 && (await counts()).some((n) => n !== 0); waited += 100) await new Promise((r) => setTimeout(r, 100));
    expect(await counts()).toEqual([0, 0]);
  });

  test('a picture is only drawn at the captcha step, and an answer without one is refused', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.email);
    expect((await h.api.get(`/v1/flows/${flow.flowId}/captcha`)).body.code).toBe('step_mismatch');
    expect((await h.api.post(`/v1/flows/${flow.flowId}/captcha`, { answer: 'test' })).body.code).toBe('step_mismatch');
    const { FlowRecord } = await import('../db/models');
    expect(await FlowRecord.findById(flow.flowId).lean()).not.toHaveProperty('challenge'); // the refused picture was not kept
    const fresh = await h.api.post('/v1/flows/password-reset', { identifier: 'captcha-none@example.com' });
    expect((await h.api.post(`/v1/flows/${fresh.body.flowId}/captcha`, { answer: 'test' })).body.code).toBe('captcha_invalid');
  });

  test('a start retried right after the flow moved on answers where the flow stands, not its first step', async () => {
    const acc = await makeAccount();
    const key = `reset-${crypto.randomBytes(8).toString('hex')}`;
    const first = await h.api.post('/v1/flows/password-reset', { identifier: acc.email }, { 'idempotency-key': key });
    expect(first.body.step).toBe('captcha');
    const id: string = first.body.flowId;
    await h.api.get(`/v1/flows/${id}/captcha`);
    expect((await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'test' })).body.step).toBe('code');
    const again = await h.api.post('/v1/flows/password-reset', { identifier: acc.email }, { 'idempotency-key': key });
    expect(again.status).toBe(201);
    expect({ flowId: again.body.flowId, step: again.body.step, flowSecret: again.body.flowSecret }).toEqual({ flowId: id, step: 'code', flowSecret: first.body.flowSecret });
  });

  test('30 starts at once with one Idempotency-Key: one flow, one secret, for an account and an unknown identifier alike; a stranger with the key gets another flow', async () => {
    const acc = await makeAccount();
    for (const identifier of [acc.email, `nobody-${crypto.randomBytes(4).toString('hex')}@example.com`]) {
      const key = `burst-${crypto.randomBytes(8).toString('hex')}`;
      const replies = await Promise.all([...Array(30)].map(() => h.api.post('/v1/flows/password-reset', { identifier }, { 'idempotency-key': key })));
      expect(new Set(replies.map((r) => r.status))).toEqual(new Set([201]));
      expect(new Set(replies.map((r) => `${r.body.flowId} ${r.body.flowSecret} ${r.body.step}`)).size).toBe(1);
      expect(replies[0]!.body.step).toBe('captcha');
      const { temporalClient } = await import('../lib/temporal');
      const { workflowIdOf } = await import('../workflows/messages');
      const runs = await (await temporalClient()).workflow.count(`WorkflowId = '${workflowIdOf(replies[0]!.body.flowId)}'`);
      expect(runs.count).toBe(1);
      // the same key for another identifier (a stranger who learned it) names another flow
      const stranger = await h.api.post('/v1/flows/password-reset', { identifier: `other-${crypto.randomBytes(4).toString('hex')}@example.com` }, { 'idempotency-key': key });
      expect(stranger.status).toBe(201);
      expect(stranger.body.flowId).not.toBe(replies[0]!.body.flowId);
    }
  });

  test('DELETE cancels; a cancelled flow accepts nothing', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.email);
    const del = await h.api.call('DELETE', `/v1/flows/${flow.flowId}`);
    expect(del.body).toMatchObject({ status: 'cancelled' });
    const { code } = await h.api.codeFor(acc.email);
    expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code })).status).toBe(409);
    expect((await h.api.call('DELETE', `/v1/flows/${flow.flowId}`)).status).toBe(409);
  });

  test('a second start for the same identifier supersedes the first once it passes its captcha; another identifier of the account does not', async () => {
    const acc = await makeAccount();
    const first = await h.api.resetToCode(acc.email);
    // by the phone: superseding across identifiers would tell that the two belong to one account
    const byPhone = await h.api.resetToCode(acc.phone);
    const second = await h.api.post('/v1/flows/password-reset', { identifier: acc.email });
    expect(second.status).toBe(201);
    await sleep(500);
    expect((await h.api.get(`/v1/flows/${first.flowId}`)).body.status).toBe('active'); // not before its captcha
    await h.api.get(`/v1/flows/${second.body.flowId}/captcha`);
    await h.api.post(`/v1/flows/${second.body.flowId}/captcha`, { answer: 'test' });
    for (let i = 0; i < 50 && (await h.api.get(`/v1/flows/${first.flowId}`)).body.status === 'active'; i++) await sleep(100);
    const old = await h.api.get(`/v1/flows/${first.flowId}`);
    expect(old.body.status).toBe('cancelled');
    expect(old.body.reason).toBe('superseded');
    expect((await h.api.get(`/v1/flows/${byPhone.flowId}`)).body.status).toBe('active');
  });

  test('unknown flow ids are 404 flow_not_found', async () => {
    expect((await h.api.get('/v1/flows/rst_AAAAAAAAAAAAAAAAAAAAAA')).body.code).toBe('flow_not_found');
    expect((await h.api.get('/v1/flows/nonsense')).body.code).toBe('flow_not_found');
  });

  test('password rules: mismatch, weak, equal to the identifier; the current one is not told apart', async () => {
    const acc = await makeAccount();
    const flow = await h.api.resetToCode(acc.email);
    const { code } = await h.api.codeFor(acc.email);
    await h.api.post(`/v1/flows/${flow.flowId}/code`, { code });
    const p = (password: string, confirmation = password) => h.api.post(`/v1/flows/${flow.flowId}/password`, { password, confirmation });
    expect((await p('one long passphrase', 'another long one')).body.code).toBe('password_mismatch');
    expect((await p('short')).body.reasons).toContain('too_short');
    expect((await p('password123')).body.reasons).toContain('too_common');
    expect((await p(acc.email)).body.reasons).toContain('same_as_identifier');
    expect((await p('x'.repeat(129))).body.reasons).toContain('too_long');
    // v1.1: nothing on this step may tell anything about the current password
    expect((await h.api.get(`/v1/flows/${flow.flowId}`)).body.step).toBe('new_password');
    const current = await p(acc.password);
    expect(JSON.stringify(current.body)).not.toContain('same_as_current');
    expect([current.status, current.body.status]).toEqual([200, 'completed']);
  });
});

describe('no account enumeration', () => {
  /** Every Flow a client sees, with ids, times and the masked destination replaced by their shape. */
  function shape(flow: Record<string, unknown>) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(flow)) {
      if (['flowId', 'flowSecret', 'expiresAt', 'codeExpiresAt', 'resendAvailableAt', 'destinationHint'].includes(k)) out[k] = typeof v;
      else if (k === 'questions') out[k] = (v as unknown[]).length;
      else if (k === 'flow') out[k] = shape(v as Record<string, unknown>);
      else out[k] = v;
    }
    return out;
  }

  async function walk(identifier: string) {
    const seen: unknown[] = [];
    const start = await h.api.post('/v1/flows/password-reset', { identifier });
    seen.push([start.status, shape(start.body)]);
    const id = start.body.flowId;
    await h.api.get(`/v1/flows/${id}/captcha`);
    const steps: [string, unknown][] = [
      ['captcha', { answer: 'test' }],
      ['code', { code: '999999' }],
      ['not-working', undefined],
      ['security-answers', { answers: [{ questionId: 'q-first-pet', answer: 'blue' }] }],
      ['not-working', undefined],
    ];
    for (const [path, body] of steps) {
      const r = await h.api.post(`/v1/flows/${id}/${path}`, body);
      seen.push([path, r.status, shape(r.body)]);
    }
    seen.push(['get', shape((await h.api.get(`/v1/flows/${id}`)).body)]);
    return { seen, questions: (await h.api.get(`/v1/flows/${id}`)).body };
  }

  test('an unknown identifier walks the same steps with the same answers, field for field', async () => {
    const acc = await makeAccount();
    const known = await walk(acc.email);
    const unknown = await walk('nobody-at-all@example.com');
    expect(unknown.seen).toEqual(known.seen);
    const phoneKnown = await walk(acc.phone);
    const phoneUnknown = await walk('+14155557777');
    expect(phoneUnknown.seen).toEqual(phoneKnown.seen);
    // an account id with no account "sends" to a destination of a shape real accounts have: a phone, or for about
    // one in five an email (accounts without a phone); it is compared with a real account of that shape
    const idUnknown = await walk('9999999999');
    const viaEmail = (idUnknown.seen[1] as [string, number, { channel?: string }])[2].channel === 'email';
    const idKnown = await walk((viaEmail ? await makeAccount({ phone: '' }) : acc).accountId);
    expect(idUnknown.seen).toEqual(idKnown.seen);
  });

  test('the questions offered for an unknown identifier are the same on every try', async () => {
    const ask = async () => {
      const flow = await h.api.resetToCode('ghost-user@example.com');
      return (await h.api.post(`/v1/flows/${flow.flowId}/not-working`)).body.questions;
    };
    const a = await ask();
    expect(a).toHaveLength(3);
    expect(await ask()).toEqual(a);
  });

  test('nothing is ever sent for an unknown identifier, and its code record keeps neither a code nor the address typed', async () => {
    const { Code } = await import('../db/models');
    const flow = await h.api.resetToCode('never-registered@example.com');
    await sleep(1_000);
    expect((await h.api.get('/v1/dev/outbox?to=never-registered%40example.com')).body).toEqual([]);
    const records = await Code.find({ flowId: flow.flowId }).lean();
    expect(records).toHaveLength(1);
    expect(records[0]).not.toHaveProperty('to');
    expect(records[0]).not.toHaveProperty('hmac');
    expect(records[0]).not.toHaveProperty('sealed');
  });

  test('a code stored while the look-up ran is removed again when the claim fails (nobody takes it)', async () => {
    const { Code, Counter } = await import('../db/models');
    const { findClaimAndIssueCode } = await import('../domain/recovery');
    const acc = await makeAccount();
    const codeId = crypto.randomUUID();
    const spy = jest.spyOn(Counter, 'findOneAndUpdate').mockImplementationOnce(() => {
      throw new Error('the database went away');
    });
    try {
      await expect(findClaimAndIssueCode({ flowId: 'rst_claim_fails', identifier: acc.email, codeId, ttlMs: 60_000 })).rejects.toThrow('the database went away');
    } finally {
      spy.mockRestore();
    }
    await sleep(500);
    expect(await Code.findById(codeId).lean()).toBeNull();
  });

  test('the code for an email or a phone, stored while the account is looked up, goes to that account', async () => {
    const { Code } = await import('../db/models');
    const acc = await makeAccount();
    let after: string | undefined;
    for (const [identifier, to, channel] of [
      [` ${acc.email.toUpperCase()}`, acc.email, 'email'],
      [acc.phone, acc.phone, 'sms'],
      [acc.accountId, acc.phone, 'sms'],
    ] as const) {
      const flow = await h.api.resetToCode(identifier);
      const sent = await h.api.codeFor(to, after);
      after = sent.sentAt;
      expect(await Code.find({ flowId: flow.flowId }, { _id: 0, to: 1, channel: 1 }).lean()).toEqual([{ to, channel }]);
      expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code: sent.code })).body.step).toBe('new_password');
    }
  });
});
