/**
 * Many requests at one flow at once, as an impatient user (or a fuzzer) sends them: wrong codes, a
 * resend, a cancel, an action this kind of flow does not take, reads. Every answer must be a defined
 * one (no 5xx; the flow exists for its owner, so never 404), and every history those races wrote must
 * replay against the current code: the SDK once recorded histories it could not replay when an update
 * arrived while another update's handler waited on a local activity (workflows/activities-proxy.ts),
 * which broke queries on the ended flow and would have stuck an open one after a worker restart.
 */
import { startHarness, makeAccount, type Harness } from './support/harness';
import { bundleWorkflows, replayHistories } from '../ops/replay';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('concurrent');
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

const FLOWS = 24;

test(`${FLOWS} change-email flows, each hit by 8 requests at once, answer sensibly and replay`, async () => {
  const acc = await makeAccount();
  const signIn = await h.api.post('/v1/sessions', { identifier: acc.email, password: acc.password });
  expect(signIn.status).toBe(201);
  const auth = { authorization: `Bearer ${signIn.body.token}` };
  const consent = { accept: true, syncEnabled: false, versions: { 'privacy-policy': '1', 'user-agreement': '1' } };

  const flowIds: string[] = [];
  const statuses: Record<string, number[]> = {};
  for (let i = 0; i < FLOWS; i++) {
    const start = await h.api.post('/v1/flows/change-email', undefined, auth);
    expect(start.status).toBe(201);
    const id: string = start.body.flowId;
    flowIds.push(id);
    const requests: [string, Promise<{ status: number }>][] = [
      ['code', h.api.post(`/v1/flows/${id}/code`, { code: '000000' }, auth)],
      ['code', h.api.post(`/v1/flows/${id}/code`, { code: '000001' }, auth)],
      ['code', h.api.post(`/v1/flows/${id}/code`, { code: '000002' }, auth)],
      ['resend', h.api.post(`/v1/flows/${id}/resend`, undefined, auth)],
      ['consent', h.api.post(`/v1/flows/${id}/consent`, consent, auth)],
      ['get', h.api.get(`/v1/flows/${id}`, auth)],
      ['get', h.api.get(`/v1/flows/${id}`, auth)],
    ];
    if (i % 2 === 0) requests.push(['cancel', h.api.call('DELETE', `/v1/flows/${id}`, undefined, auth)]);
    for (const [what, reply] of requests) (statuses[what] ??= []).push((await reply).status);
    // read it once more after the dust settles: a query on a flow that has ended replays its history
    expect((await h.api.get(`/v1/flows/${id}`, auth)).status).toBe(200);
  }
  const all = Object.values(statuses).flat();
  expect(all.filter((s) => s >= 500 || s === 404)).toEqual([]);
  expect(new Set(statuses.consent)).toEqual(new Set([409])); // a change of email takes no consent
  expect(new Set(statuses.cancel)).toEqual(new Set([200]));
  expect(statuses.get.every((s) => s === 200)).toBe(true);

  const { temporalClient, dataConverter } = await import('../lib/temporal');
  const { workflowIdOf } = await import('../workflows/messages');
  const client = await temporalClient();
  const inputs = await Promise.all(
    flowIds.map(async (id) => ({ workflowId: workflowIdOf(id)!, history: await client.workflow.getHandle(workflowIdOf(id)!).fetchHistory(), source: id })),
  );
  const outcomes = await replayHistories(inputs, { bundle: await bundleWorkflows(), dataConverter: dataConverter() });
  expect(outcomes.filter((o) => !o.ok).map((o) => `${o.source}: ${o.summary}`)).toEqual([]);
  expect(outcomes).toHaveLength(FLOWS);

  // Who may read an ended change flow comes from its memo (no replay), and the memo is encrypted like the input.
  const desc = await client.workflow.getHandle(workflowIdOf(flowIds[0])!).describe();
  expect(desc.memo).toEqual({ ownerAccountId: acc.accountId });
  const rawOwner = desc.raw.workflowExecutionInfo?.memo?.fields?.ownerAccountId;
  expect(Buffer.from(rawOwner?.metadata?.encoding ?? []).toString()).toBe('binary/encrypted');
  expect(Buffer.from(rawOwner?.data ?? []).toString()).not.toContain(acc.accountId);
}, 240_000);

test('a refused update is told by its failure type: wrong step, an action this kind of flow never takes, an ended flow, a flow that is gone', async () => {
  const acc = await makeAccount();
  const flow = await h.api.resetToCode(acc.email);
  const id: string = flow.flowId;
  const detail = (r: { status: number; body: { code?: string; detail?: string } }) => `${r.status} ${r.body.code}: ${r.body.detail}`;

  // the flow's validator refuses (stepMismatch(), type step_mismatch)
  expect(detail(await h.api.post(`/v1/flows/${id}/password`, { password: 'Another-long-passphrase-9', confirmation: 'Another-long-passphrase-9' }))).toBe(
    '409 step_mismatch: The flow is not at a step that accepts this.',
  );
  // a reset has no handler for consent: the SDK's refusal, the one without a type
  const consent = { accept: true, syncEnabled: false, versions: { 'privacy-policy': '1', 'user-agreement': '1' } };
  expect(detail(await h.api.post(`/v1/flows/${id}/consent`, consent))).toBe('409 step_mismatch: This kind of flow does not take this action.');

  expect((await h.api.call('DELETE', `/v1/flows/${id}`)).status).toBe(200);
  // ended: the server answers NOT_FOUND for an update to a closed workflow; the flow still exists
  expect(detail(await h.api.post(`/v1/flows/${id}/resend`))).toBe('409 step_mismatch: The flow has ended.');

  // one that never ran (or that retention removed), with its secret: the same NOT_FOUND from the server, and no such flow
  const { newFlowId, flowSecretOf } = await import('../lib/secrets');
  const never = newFlowId('password_reset');
  expect(detail(await h.api.post(`/v1/flows/${never}/resend`, undefined, { 'flow-secret': flowSecretOf(never) }))).toMatch(/^404 flow_not_found/);
}, 60_000);
