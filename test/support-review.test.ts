/**
 * The support case end to end over HTTP (seed 001: "include the Mi account ID and the IMEI"): the
 * form opens a case, a person approves or rejects it through the ops API, or nobody does in time.
 * Real API, worker, Temporal dev server, FerretDB and SMTP capture; the review deadline is seconds.
 */
import { startHarness, makeAccount, type Harness } from './support/harness';
import { OPS_TOKEN, ops, bindDevice, contactEmail, decide, randomImei, resetToSupport, setPassword, sleep, submitSupport, waitForFlow } from './support/scenarios';

const REVIEW_TTL_S = 8;
let h: Harness;
beforeAll(async () => {
  h = await startHarness('support', { OPS_TOKEN, SUPPORT_REVIEW_TTL: `${REVIEW_TTL_S}s` });
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

async function caseOf(caseId: string) {
  const all = await h.api.get('/v1/ops/support-cases', ops);
  expect(all.status).toBe(200);
  return (all.body as any[]).find((c) => c.caseId === caseId);
}

test('approve: a code to the contact email, a new password, the hold told to the old channels; then it applies', async () => {
  const acc = await makeAccount();
  const imei = await bindDevice(h.api, acc);
  const contact = contactEmail();
  const flowId = await resetToSupport(h.api, acc.email);
  const { caseId, flow } = await submitSupport(h.api, flowId, { accountId: acc.accountId, imei, contactEmail: contact, message: 'lost my SIM' });
  expect(caseId).toMatch(/^case_/);
  expect(Date.parse(flow.expiresAt)).toBeGreaterThan(Date.now() + (REVIEW_TTL_S - 2) * 1000);
  await h.api.waitForMessage(contact, { match: new RegExp(`received your account recovery request ${caseId}`) });

  // Pending for a person, even when the device matches: nothing is decided automatically.
  const pending = await h.api.get('/v1/ops/support-cases?status=pending', ops);
  const c = (pending.body as any[]).find((x) => x.caseId === caseId);
  expect(c).toMatchObject({
    caseId,
    flowId,
    accountId: acc.accountId,
    accountExists: true,
    deviceVerified: true,
    imeiLast4: imei.slice(-4),
    contactEmail: contact,
    status: 'pending',
  });
  expect(JSON.stringify(c)).not.toContain(imei);
  expect((await h.api.get(`/v1/flows/${flowId}`)).body.step).toBe('support_review');

  const before = Date.now();
  const approved = await decide(h.api, caseId, 'approve', 'alice', 'IMEI matches the bound device');
  expect(approved.status).toBe(200);
  expect(approved.body).toMatchObject({ caseId, status: 'approved', decision: { reviewer: 'alice', note: 'IMEI matches the bound device' } });
  expect(Date.parse(approved.body.decision.decidedAt)).toBeGreaterThanOrEqual(before - 1000);

  // Decided once: neither verdict can follow.
  for (const verdict of ['approve', 'reject'] as const) {
    const again = await decide(h.api, caseId, verdict, 'bob', 'second opinion');
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('case_decided');
  }
  expect((await caseOf(caseId)).decision.reviewer).toBe('alice');

  const atCode = await waitForFlow(h.api, flowId, (f) => f.step === 'code');
  expect(atCode).toMatchObject({ channel: 'email', destinationHint: `${contact[0]}***@elsewhere.example` });
  const { code } = await h.api.codeFor(contact);
  expect((await h.api.post(`/v1/flows/${flowId}/code`, { code })).body.step).toBe('new_password');
  const held = await setPassword(h.api, flowId, 'recovered through support 9');
  expect(held.body).toMatchObject({ status: 'active', step: 'hold' });

  // The old channels are told and can veto; the contact address gets no veto link.
  await h.api.waitForMessage(acc.email, { match: /takes effect/ });
  await h.api.waitForMessage(acc.phone, { match: /takes effect/ });
  await waitForFlow(h.api, flowId, (f) => f.status === 'completed');
  expect((await h.api.post('/v1/sessions', { identifier: acc.email, password: 'recovered through support 9' })).status).toBe(201);
  expect((await caseOf(caseId)).status).toBe('approved');
});

test('an approved case naming another account: that account is recovered, and the account the reset began with is free again', async () => {
  const { Account, Counter } = await import('../db/models');
  const { identifierKey } = await import('../domain/limits');
  const typed = await makeAccount(); // the identifier the user typed at the start
  const owner = await makeAccount(); // the account the form names, with its bound device
  const imei = await bindDevice(h.api, owner);
  const contact = contactEmail();
  const flowId = await resetToSupport(h.api, typed.email);
  // the one active reset of the identifier typed (since 'one-lookup-after-the-captcha'; before it, of the account)
  const claim = async (identifier: string) => (await Counter.findById(`active-reset:${identifierKey(identifier)}`).lean())?.flowId ?? undefined;
  const marker = async (accountId: string) => ((await Account.findById(accountId, { activeFlows: 1 }).lean())?.activeFlows as Record<string, string> | undefined)?.password_reset;
  expect(await claim(typed.email)).toBe(flowId);
  const { caseId } = await submitSupport(h.api, flowId, { accountId: owner.accountId, imei, contactEmail: contact });
  expect((await decide(h.api, caseId, 'approve', 'alice', 'IMEI matches the named account')).status).toBe(200);
  await waitForFlow(h.api, flowId, (f) => f.step === 'code');
  const { code } = await h.api.codeFor(contact);
  expect((await h.api.post(`/v1/flows/${flowId}/code`, { code })).body.step).toBe('new_password');
  expect((await setPassword(h.api, flowId, 'recovered the named account 7')).body.step).toBe('hold');
  await waitForFlow(h.api, flowId, (f) => f.status === 'completed');
  expect((await h.api.post('/v1/sessions', { identifier: owner.email, password: 'recovered the named account 7' })).status).toBe(201);
  expect((await h.api.post('/v1/sessions', { identifier: typed.email, password: typed.password })).status).toBe(201);
  // The claim the flow made is gone (an older release once left it pointing at the ended flow), and no account marker is left.
  for (let i = 0; i < 50 && (await claim(typed.email)) !== undefined; i++) await sleep(100);
  expect(await claim(typed.email)).toBeUndefined();
  expect(await marker(typed.accountId)).toBeUndefined();
  expect(await marker(owner.accountId)).toBeUndefined();
});

test('reject: the flow ends rejected, the contact email is told why, the password is unchanged', async () => {
  const acc = await makeAccount();
  await bindDevice(h.api, acc);
  const contact = contactEmail();
  const flowId = await resetToSupport(h.api, acc.phone);
  const { caseId } = await submitSupport(h.api, flowId, { accountId: acc.accountId, imei: randomImei(), contactEmail: contact });

  const rejected = await decide(h.api, caseId, 'reject', 'carol', 'The IMEI is not one of the account devices');
  expect(rejected.status).toBe(200);
  expect(rejected.body).toMatchObject({ status: 'rejected', decision: { reviewer: 'carol', note: 'The IMEI is not one of the account devices' } });
  expect((await decide(h.api, caseId, 'approve', 'dave', 'overrule')).body.code).toBe('case_decided');

  const ended = await waitForFlow(h.api, flowId, (f) => f.status !== 'active');
  expect(ended).toMatchObject({ status: 'rejected', reason: 'support_rejected' });
  const told = await h.api.waitForMessage(contact, { match: /was declined|could not confirm/ });
  expect(told.text).toContain('The IMEI is not one of the account devices');
  expect(told.text).toContain(caseId);
  expect((await h.api.post('/v1/sessions', { identifier: acc.email, password: acc.password })).status).toBe(201);
  expect((await h.api.get('/v1/ops/support-cases?status=rejected', ops)).body.map((c: any) => c.caseId)).toContain(caseId);
});

test('an IMEI that is not the account’s device is kept for the reviewer (deviceVerified false), not decided', async () => {
  const acc = await makeAccount();
  await bindDevice(h.api, acc);
  const other = await makeAccount();
  const othersImei = await bindDevice(h.api, other);
  const flowId = await resetToSupport(h.api, acc.email);
  // A valid IMEI bound to another account, and one bound to nobody: neither verifies, neither is decided.
  const { caseId } = await submitSupport(h.api, flowId, { accountId: acc.accountId, imei: othersImei, contactEmail: contactEmail() });
  await sleep(1_000);
  const c = await caseOf(caseId);
  expect(c).toMatchObject({ status: 'pending', accountExists: true, deviceVerified: false });
  expect((await h.api.get(`/v1/flows/${flowId}`)).body).toMatchObject({ status: 'active', step: 'support_review', supportCaseId: caseId });

  // A Luhn-invalid IMEI (a typo) is refused at the form with 422, and the flow stays at support.
  const flow2 = await resetToSupport(h.api, other.email);
  const bad = othersImei.slice(0, 14) + String((Number(othersImei[14]) + 1) % 10);
  const typo = await h.api.post(`/v1/flows/${flow2}/support`, { accountId: other.accountId, imei: bad, contactEmail: contactEmail() });
  expect(typo.status).toBe(422);
  expect(typo.body.code).toBe('validation_failed');
  expect((await h.api.get(`/v1/flows/${flow2}`)).body.step).toBe('support');

  // A reviewer may still approve a mismatch (they may know more), which is why it is kept.
  expect((await decide(h.api, caseId, 'approve', 'erin', 'confirmed by phone call')).status).toBe(200);
  await waitForFlow(h.api, flowId, (f) => f.step === 'code');
});

test('a case for an account id that does not exist can only be rejected', async () => {
  const acc = await makeAccount();
  const flowId = await resetToSupport(h.api, acc.email);
  const { caseId } = await submitSupport(h.api, flowId, { accountId: '9999999999', imei: randomImei(), contactEmail: contactEmail() });
  expect(await caseOf(caseId)).toMatchObject({ accountExists: false, deviceVerified: false });
  expect((await decide(h.api, caseId, 'approve', 'frank', 'looks fine')).body.code).toBe('case_unverifiable');
  expect((await decide(h.api, caseId, 'reject', 'frank', 'no such account')).status).toBe(200);
  expect((await waitForFlow(h.api, flowId, (f) => f.status !== 'active')).status).toBe('rejected');
});

test('no decision within SUPPORT_REVIEW_TTL: the case and the flow end expired and the user is told', async () => {
  const acc = await makeAccount();
  const contact = contactEmail();
  const flowId = await resetToSupport(h.api, acc.email);
  const { caseId } = await submitSupport(h.api, flowId, { accountId: acc.accountId, imei: randomImei(), contactEmail: contact });
  const ended = await waitForFlow(h.api, flowId, (f) => f.status !== 'active', (REVIEW_TTL_S + 10) * 1000);
  expect(ended.status).toBe('expired');
  expect(ended.reason).toBe('support_review_timeout');
  const told = await h.api.waitForMessage(contact, { match: /lapsed/ });
  expect(told.text).toContain(caseId);
  expect(await caseOf(caseId)).toMatchObject({ status: 'expired' });
  // Too late now.
  expect((await decide(h.api, caseId, 'approve', 'grace', 'sorry, late')).body.code).toBe('case_decided');
});

test('a case whose flow was cancelled cannot be approved: 409, and the case is closed', async () => {
  const acc = await makeAccount();
  const flowId = await resetToSupport(h.api, acc.email);
  const { caseId } = await submitSupport(h.api, flowId, { accountId: acc.accountId, imei: randomImei(), contactEmail: contactEmail() });
  expect((await h.api.call('DELETE', `/v1/flows/${flowId}`)).body.status).toBe('cancelled');
  const late = await decide(h.api, caseId, 'approve', 'heidi', 'approved after the user gave up');
  expect(late.status).toBe(409);
  expect(late.body).toMatchObject({ code: 'case_decided' });
  expect(late.body.detail).toMatch(/ended/);
  expect(await caseOf(caseId)).toMatchObject({ status: 'expired' });
  expect((await caseOf(caseId)).decision).toBeUndefined();
});

test('ops endpoints need the ops token; unknown cases are 404', async () => {
  expect((await h.api.get('/v1/ops/support-cases')).status).toBe(401);
  expect((await h.api.get('/v1/ops/support-cases', { authorization: 'Bearer wrong-token-123' })).status).toBe(401);
  expect((await h.api.post('/v1/ops/support-cases/case_nope/approve', { reviewer: 'x', note: '' })).status).toBe(401);
  expect((await decide(h.api, 'case_AAAAAAAAAAAAAAAA', 'approve', 'x', '')).body.code).toBe('case_not_found');
  expect((await h.api.post('/v1/ops/support-cases/case_AAAAAAAAAAAAAAAA/reject', { note: 'no reviewer' }, ops)).status).toBe(422);
  expect((await h.api.get('/v1/ops/support-cases?status=bogus', ops)).status).toBe(422);
});
