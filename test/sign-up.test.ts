/**
 * Sign up over HTTP (seed 002: phone → code → captcha → privacy policy and user agreement → signed
 * in), against the real API, worker, Temporal dev server, FerretDB and SMTP capture.
 */
import crypto from 'node:crypto';
import { startHarness, makeAccount, type Harness } from './support/harness';

const PUBLIC_URL = 'https://account.example.test';
let h: Harness;
beforeAll(async () => {
  h = await startHarness('signup', { PUBLIC_URL });
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const VERSIONS = { 'privacy-policy': '2026-01', 'user-agreement': '2026-01' };
const PASSWORD = 'my first passphrase 42';

/** Phone numbers no other test in this file uses (makeAccount draws from +1415555….). */
let seq = crypto.randomInt(0, 8000);
const newPhone = () => `+1650555${String(1000 + (seq++ % 9000))}`;
const newEmail = () => `new-${crypto.randomBytes(4).toString('hex')}@example.com`;

/** The code a flow sent to `to` (several flows may send to one address). */
async function codeOf(to: string, flowId: string): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const { body } = await h.api.get(`/v1/dev/outbox?to=${encodeURIComponent(to)}`);
    const hit = (body as { text: string; flowId?: string }[]).find((m) => m.flowId === flowId && /verification code is \d{6}/.test(m.text));
    if (hit) return /\d{6}/.exec(hit.text)![0];
    await sleep(150);
  }
  throw new Error(`no code for ${flowId} to ${to}`);
}

/** Starts a sign-up and walks it to the password step. */
async function toPassword(contact: { phone: string } | { email: string }, opts: { syncEnabled?: boolean } = {}) {
  const start = await h.api.post('/v1/flows/sign-up', contact);
  expect(start.status).toBe(201);
  const id: string = start.body.flowId;
  const to = 'phone' in contact ? contact.phone : contact.email;
  expect((await h.api.post(`/v1/flows/${id}/code`, { code: await codeOf(to, id) })).body.step).toBe('captcha');
  await h.api.get(`/v1/flows/${id}/captcha`);
  expect((await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'test' })).body.step).toBe('consent');
  const atPassword = await h.api.post(`/v1/flows/${id}/consent`, { accept: true, syncEnabled: opts.syncEnabled ?? true, versions: VERSIONS });
  expect(atPassword.body.step).toBe('password');
  return id;
}

const setPassword = (id: string, password = PASSWORD) => h.api.post(`/v1/flows/${id}/password`, { password, confirmation: password });

describe('the happy path', () => {
  test('by phone: code by SMS → captcha → consent → password → done, signed in; the new password signs in', async () => {
    const phone = newPhone();
    const start = await h.api.post('/v1/flows/sign-up', { phone });
    expect(start.status).toBe(201);
    expect(start.body).toMatchObject({ kind: 'sign_up', status: 'active', step: 'code', channel: 'sms', attemptsLeft: 3, resendsLeft: 2 });
    expect(start.body.flowId).toMatch(/^sgn_[A-Za-z0-9_-]{22}$/);
    expect(start.body.destinationHint).toBe(`+1 *** *** ${phone.slice(-4)}`);
    for (const k of ['expiresAt', 'codeExpiresAt', 'resendAvailableAt']) expect(Date.parse(start.body[k])).toBeGreaterThan(Date.now());
    const id = start.body.flowId;

    const sms = await h.api.waitForMessage(phone, { match: /verification code is \d{6}/ });
    expect(sms.text).toMatch(/to create your account/);
    const code = /\d{6}/.exec(sms.text)![0];
    const atCaptcha = await h.api.post(`/v1/flows/${id}/code`, { code });
    expect(atCaptcha.body).toEqual({ flowId: id, kind: 'sign_up', status: 'active', step: 'captcha', expiresAt: start.body.expiresAt });

    const svg = await h.api.get(`/v1/flows/${id}/captcha`);
    expect(svg.headers.get('content-type')).toContain('image/svg+xml');
    const atConsent = await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'test' });
    expect(atConsent.body).toMatchObject({
      step: 'consent',
      documents: [
        { id: 'privacy-policy', version: '2026-01' },
        { id: 'user-agreement', version: '2026-01' },
      ],
    });

    const atPassword = await h.api.post(`/v1/flows/${id}/consent`, { accept: true, syncEnabled: false, versions: VERSIONS });
    expect(atPassword.status).toBe(200);
    expect(atPassword.body.step).toBe('password');
    expect(atPassword.body.documents).toBeUndefined();

    expect((await h.api.post(`/v1/flows/${id}/password`, { password: PASSWORD, confirmation: 'something else' })).body.code).toBe('password_mismatch');
    expect((await setPassword(id, phone)).body.reasons).toContain('same_as_identifier');
    const done = await setPassword(id);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ kind: 'sign_up', status: 'completed', step: 'done' });
    expect(done.body.accountId).toMatch(/^[1-9]\d{9}$/);
    expect(done.body.session.token.length).toBeGreaterThanOrEqual(43);
    expect(Date.parse(done.body.session.expiresAt)).toBeGreaterThan(Date.now() + 86_400_000);

    // Signed in with the session from the answer; the consent is on record.
    const me = await h.api.get('/v1/me', bearer(done.body.session.token));
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ accountId: done.body.accountId, phone: `+1 *** *** ${phone.slice(-4)}`, hasSecurityQuestions: false });
    expect(me.body.email).toBeUndefined();
    expect(me.body.consent).toMatchObject({ privacyPolicy: '2026-01', userAgreement: '2026-01', syncEnabled: false });
    expect(Date.now() - Date.parse(me.body.consent.acceptedAt)).toBeLessThan(60_000);

    // The session is in that one answer only; the flow shows the account.
    const later = await h.api.get(`/v1/flows/${id}`);
    expect(later.body).toMatchObject({ status: 'completed', step: 'done', accountId: done.body.accountId });
    expect(later.body.session).toBeUndefined();

    const signIn = await h.api.post('/v1/sessions', { identifier: phone, password: PASSWORD });
    expect(signIn.status).toBe(201);
    expect(signIn.body.accountId).toBe(done.body.accountId);
    expect((await h.api.post('/v1/sessions', { identifier: done.body.accountId, password: PASSWORD })).status).toBe(201);
  });

  test('by email: the code goes by email; sync on is recorded', async () => {
    const email = newEmail();
    const id = await toPassword({ email: email.toUpperCase() }, { syncEnabled: true });
    const flow = await h.api.get(`/v1/flows/${id}`);
    expect(flow.body.step).toBe('password');
    const done = await setPassword(id);
    expect(done.body.status).toBe('completed');
    const me = await h.api.get('/v1/me', bearer(done.body.session.token));
    expect(me.body).toMatchObject({ email: `${email[0]}***@example.com`, consent: { syncEnabled: true } });
    expect((await h.api.post('/v1/sessions', { identifier: email, password: PASSWORD })).body.accountId).toBe(done.body.accountId);
  });
});

describe('consent', () => {
  test('accept:false is 422 consent_required and outdated versions 409 document_outdated; neither changes anything', async () => {
    const phone = newPhone();
    const start = await h.api.post('/v1/flows/sign-up', { phone });
    const id = start.body.flowId;
    await h.api.post(`/v1/flows/${id}/code`, { code: await codeOf(phone, id) });
    await h.api.get(`/v1/flows/${id}/captcha`);
    const atConsent = (await h.api.post(`/v1/flows/${id}/captcha`, { answer: 'test' })).body;

    const refused = await h.api.post(`/v1/flows/${id}/consent`, { accept: false, syncEnabled: true, versions: VERSIONS });
    expect(refused.status).toBe(422);
    expect(refused.body.code).toBe('consent_required');
    expect(refused.body.flow).toEqual(atConsent);
    const outdated = await h.api.post(`/v1/flows/${id}/consent`, { accept: true, syncEnabled: true, versions: { ...VERSIONS, 'user-agreement': '2025-06' } });
    expect(outdated.status).toBe(409);
    expect(outdated.body.code).toBe('document_outdated');
    expect((await h.api.post(`/v1/flows/${id}/consent`, { accept: true, syncEnabled: true, versions: { 'privacy-policy': '2026-01' } })).status).toBe(422);
    expect((await h.api.get(`/v1/flows/${id}`)).body).toEqual(atConsent);

    expect((await h.api.post(`/v1/flows/${id}/consent`, { accept: true, syncEnabled: true, versions: VERSIONS })).body.step).toBe('password');
    // Consent is given once: at password, another consent is out of order.
    expect((await h.api.post(`/v1/flows/${id}/consent`, { accept: true, syncEnabled: false, versions: VERSIONS })).body.code).toBe('step_mismatch');
  });
});

describe('no account enumeration', () => {
  /** A Flow with ids, times and the masked destination replaced by their type. */
  function shape(flow: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(flow)) {
      if (['flowId', 'flowSecret', 'expiresAt', 'codeExpiresAt', 'resendAvailableAt', 'destinationHint', 'retryAfterSeconds'].includes(k)) out[k] = typeof v;
      else if (k === 'flow') out[k] = shape(v as Record<string, unknown>);
      else out[k] = v;
    }
    return out;
  }

  /** Everything an outsider can do with a sign-up they cannot receive the code of, and every answer, in shape. */
  async function walk(contact: { phone: string } | { email: string }, wrongCode: string) {
    const seen: unknown[] = [];
    const start = await h.api.post('/v1/flows/sign-up', contact);
    seen.push(['start', start.status, shape(start.body)]);
    const id = start.body.flowId;
    const steps: [string, string, unknown][] = [
      ['post', 'code', { code: wrongCode }],
      ['post', 'resend', undefined],
      ['post', 'not-working', undefined],
      ['get', 'captcha', undefined],
      ['post', 'consent', { accept: true, syncEnabled: true, versions: VERSIONS }],
      ['post', 'password', { password: PASSWORD, confirmation: PASSWORD }],
      ['post', 'veto', { token: 'abc' }],
      ['get', '', undefined],
      ['sleep', '', undefined],
      ['post', 'resend', undefined],
      ['post', 'code', { code: wrongCode }],
      ['get', '', undefined],
    ];
    for (const [method, path, body] of steps) {
      if (method === 'sleep') {
        await sleep(2_100);
        continue;
      }
      const url = `/v1/flows/${id}${path ? `/${path}` : ''}`;
      const r = method === 'get' ? await h.api.get(url) : await h.api.post(url, body);
      seen.push([method, path, r.status, typeof r.body === 'object' ? shape(r.body) : typeof r.body]);
    }
    return { id, seen };
  }

  test('a phone or email that has an account: the same answers field for field; its owner gets a notice, never a code', async () => {
    const owner = await makeAccount();
    for (const [known, unknown] of [
      [{ phone: owner.phone }, { phone: newPhone() }],
      [{ email: owner.email }, { email: newEmail() }],
    ] as const) {
      const [a, b] = await Promise.all([walk(known, '000000'), walk(unknown, '000000')]);
      expect(a.seen).toEqual(b.seen);
      expect(a.seen[1]).toEqual(['post', 'code', 422, expect.objectContaining({ code: 'code_invalid', attemptsLeft: 2 })]);

      // The new address got its codes; the owner got one notice, with a link to PUBLIC_URL, and no code.
      const to = (c: { phone: string } | { email: string }) => ('phone' in c ? c.phone : c.email);
      // Delivery is asynchronous (an activity after the update answered): wait for the resent code.
      const codesTo = async () =>
        ((await h.api.get(`/v1/dev/outbox?to=${encodeURIComponent(to(unknown))}`)).body as { text: string; flowId: string }[]).filter(
          (m) => m.flowId === b.id && /verification code is \d{6}/.test(m.text),
        );
      for (let i = 0; i < 100 && (await codesTo()).length < 2; i++) await sleep(100);
      expect(await codesTo()).toHaveLength(2);
      const notice = await h.api.waitForMessage(to(known), { match: /Someone tried to create a new account/ });
      expect(notice.flowId).toBe(a.id);
      expect(notice.text).toContain(PUBLIC_URL);
      expect(notice.text).not.toMatch(/\d{6}/);
      const owners = (await h.api.get(`/v1/dev/outbox?to=${encodeURIComponent(to(known))}`)).body as { text: string; flowId: string }[];
      expect(owners.filter((m) => m.flowId === a.id)).toHaveLength(1);

      // No code was ever issued for the owner's address, so none can be accepted.
      const { Code } = await import('../db/models');
      const issued = await Code.find({ flowId: a.id }).lean();
      expect(issued).toHaveLength(2);
      expect(issued.every((c) => !c.hmac)).toBe(true);
    }
  });
});

describe('two sign-ups racing for one phone', () => {
  test('exactly one account; the other flow ends cancelled (phone_taken) and its password call answers 409', async () => {
    const phone = newPhone();
    const [a, b] = await Promise.all([toPassword({ phone }), toPassword({ phone })]);
    const answers = await Promise.all([setPassword(a, 'the first racer passphrase'), setPassword(b, 'the second racer passphrase')]);
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409]);
    const won = answers.find((r) => r.status === 200)!;
    const lost = answers.find((r) => r.status === 409)!;
    expect(won.body).toMatchObject({ status: 'completed', step: 'done' });
    expect(lost.body).toMatchObject({ code: 'phone_taken', flow: { status: 'cancelled', reason: 'phone_taken' } });
    expect(lost.body.flow.session).toBeUndefined();
    const lostId = lost.body.flow.flowId;
    expect((await h.api.get(`/v1/flows/${lostId}`)).body).toMatchObject({ status: 'cancelled', reason: 'phone_taken' });
    expect((await setPassword(lostId)).status).toBe(409);

    const { Account, Contact } = await import('../db/models');
    expect(await Account.countDocuments({ phone })).toBe(1);
    expect((await Contact.findById(`phone:${phone}`).lean())?.accountId).toBe(won.body.accountId);
  });
});

describe('flow control', () => {
  test('start: exactly one of phone and email, each valid', async () => {
    for (const body of [{}, { phone: '+16505550100', email: 'a@example.com' }, { phone: '12345' }, { email: 'not an email' }, { phone: '+16505550100', extra: 1 }]) {
      const r = await h.api.post('/v1/flows/sign-up', body);
      expect([JSON.stringify(body), r.status, r.body.code]).toEqual([JSON.stringify(body), 422, 'validation_failed']);
    }
  });

  test('actions a sign-up never takes, or not yet, are 409 step_mismatch; DELETE cancels', async () => {
    const phone = newPhone();
    const id = (await h.api.post('/v1/flows/sign-up', { phone })).body.flowId;
    for (const [path, body] of [
      ['captcha', { answer: 'test' }],
      ['consent', { accept: true, syncEnabled: true, versions: VERSIONS }],
      ['password', { password: PASSWORD, confirmation: PASSWORD }],
      ['not-working', undefined],
      ['security-answers', { answers: [{ questionId: 'q-first-pet', answer: 'x' }] }],
      ['support', { accountId: '1234567890', imei: '490154203237518', contactEmail: 'a@example.com' }],
      ['new-phone', { phone: newPhone() }],
      ['new-email', { email: newEmail() }],
      ['confirm', undefined],
    ] as const) {
      const r = await h.api.post(`/v1/flows/${id}/${path}`, body);
      expect([path, r.status, r.body.code]).toEqual([path, 409, 'step_mismatch']);
    }
    // v1.1: a veto token is checked before the flow is looked up, so a wrong one is token_invalid on any flow
    expect((await h.api.post(`/v1/flows/${id}/veto`, { token: 'abc' })).body.code).toBe('token_invalid');
    expect((await h.api.get(`/v1/flows/${id}`)).body.step).toBe('code');
    const cancelled = await h.api.call('DELETE', `/v1/flows/${id}`);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', reason: 'cancelled_by_user' });
    expect((await h.api.post(`/v1/flows/${id}/code`, { code: await codeOf(phone, id) })).status).toBe(409);
  });

  test('a retried start with the same Idempotency-Key answers the same flow', async () => {
    const phone = newPhone();
    const key = `signup-${crypto.randomBytes(6).toString('hex')}`;
    const first = await h.api.post('/v1/flows/sign-up', { phone }, { 'idempotency-key': key });
    const again = await h.api.post('/v1/flows/sign-up', { phone }, { 'idempotency-key': key });
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
  });
});
