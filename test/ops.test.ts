/**
 * The ops CLI (ops/cli.ts) as an operator runs it: a child process with the service's environment,
 * against the real API, worker, Temporal dev server and FerretDB. Mail goes through a test SMTP relay
 * (test/support/smtp-relay.ts) that refuses one domain, so a delivery can fail for real.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { startHarness, makeAccount, type Harness } from './support/harness';
import { startSmtpRelay, type SmtpRelay } from './support/smtp-relay';
import { OPS_TOKEN, ops as opsAuth, contactEmail, randomImei, resetToSupport, setPassword, sleep, submitSupport, waitForFlow } from './support/scenarios';

const ROOT = path.resolve(__dirname, '..');
const REFUSED = 'refused.example';

let h: Harness;
let relay: SmtpRelay;
beforeAll(async () => {
  relay = await startSmtpRelay([REFUSED]);
  // A 30 s code: its delivery retries (1 s, 2 s, 4 s, 8 s, 15 s …) for 30 s, then gives up.
  h = await startHarness('ops', { OPS_TOKEN, SMTP_URL: relay.url, RESET_CODE_TTL: '30s', SUPPORT_REVIEW_TTL: '120s' });
}, 120_000);
afterAll(async () => {
  await h?.stop();
  await relay?.close();
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

/** Runs the CLI like `npm run ops -- …` (or the `recovery-ops` bin shim), with this test's environment. */
function cli(args: string[], opts: { bin?: boolean } = {}): Promise<Run> {
  const [cmd, pre] = opts.bin ? [process.execPath, ['ops/bin.js']] : [path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['ops/cli.ts']];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...pre, ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      let json: unknown;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, stdout, stderr, json });
    });
  });
}

async function describe_(flowId: string) {
  const { describeFlow } = await import('../ops/flows');
  const { temporalClient } = await import('../lib/temporal');
  return describeFlow(await temporalClient(), flowId);
}

test('flows stuck: finds the flow parked at code (and the API agrees); the table says how long', async () => {
  const acc = await makeAccount();
  const parked = await h.api.resetToCode(acc.email);
  const atCaptcha = (await h.api.post('/v1/flows/password-reset', { identifier: `x-${crypto.randomBytes(3).toString('hex')}@example.com` })).body.flowId;
  await sleep(2_500);

  const found = await cli(['flows', 'stuck', '--step', 'code', '--older-than', '2s', '--json']);
  expect(found.code).toBe(0);
  const rows = found.json as { flowId: string; kind: string; step: string; stepSince: string }[];
  const row = rows.find((r) => r.flowId === parked.flowId);
  expect(row).toMatchObject({ kind: 'password_reset', step: 'code', workflowId: `password-reset/${parked.flowId}` });
  expect(Date.now() - Date.parse(row!.stepSince)).toBeGreaterThanOrEqual(2_000);
  expect(rows.map((r) => r.flowId)).not.toContain(atCaptcha);
  // oldest step first
  expect([...rows].sort((a, b) => a.stepSince.localeCompare(b.stepSince))).toEqual(rows);

  const api = await h.api.get('/v1/ops/flows?kind=password_reset&step=code&stuckFor=2s', opsAuth);
  expect(api.status).toBe(200);
  expect(api.body.map((r: { flowId: string }) => r.flowId)).toContain(parked.flowId);

  expect((await cli(['flows', 'stuck', '--older-than', '1h', '--json'])).json.map((r: { flowId: string }) => r.flowId)).not.toContain(parked.flowId);
  const captcha = await cli(['--json', 'flows', 'stuck', '--kind', 'password_reset', '--step', 'captcha']);
  expect(captcha.json.map((r: { flowId: string }) => r.flowId)).toContain(atCaptcha);

  const text = await cli(['flows', 'stuck', '--step', 'code']);
  expect(text.code).toBe(0);
  expect(text.stdout).toMatch(/^FLOW\s+KIND\s+STEP\s+UNCHANGED FOR/);
  expect(text.stdout).toMatch(new RegExp(`${parked.flowId}\\s+password_reset\\s+code\\s+\\d+s`));
}, 90_000);

test('flows show / reset: a code delivery the relay keeps refusing is fixed, and a reset to the last workflow task delivers it', async () => {
  const acc = await makeAccount({ email: `stuck-${crypto.randomBytes(3).toString('hex')}@${REFUSED}` });
  const flow = await h.api.resetToCode(acc.email);
  expect(flow.channel).toBe('email');

  // deliverCode keeps failing: attempt after attempt, the relay's 550 as the last failure
  let pending;
  for (let i = 0; ; i++) {
    pending = (await describe_(flow.flowId)).pendingActivities.find((a) => a.activityType === 'deliverCode');
    if (pending && pending.attempt >= 4) break;
    if (i > 120) throw new Error(`deliverCode did not keep failing: ${JSON.stringify(pending)}`);
    await sleep(250);
  }
  expect(pending.lastFailure?.message).toMatch(/550 5\.7\.1/);

  const shown = await cli(['--json', 'flows', 'show', flow.flowId]);
  expect(shown.code).toBe(0);
  expect(shown.json).toMatchObject({
    workflowId: `password-reset/${flow.flowId}`,
    workflowType: 'passwordReset',
    executionStatus: 'RUNNING',
    flow: { step: 'code', status: 'active' },
  });
  const act = shown.json.pendingActivities.find((a: { activityType: string }) => a.activityType === 'deliverCode');
  expect(act.attempt).toBeGreaterThanOrEqual(4);
  expect(act.lastFailure.message).toMatch(/Relay access denied/);
  const table = await cli(['flows', 'show', `password-reset/${flow.flowId}`]);
  expect(table.stdout).toMatch(/pending activities\nACTIVITY\s+STATE\s+ATTEMPT/);
  expect(table.stdout).toMatch(/deliverCode\s+\w+\s+\d+/);
  expect((await h.api.get(`/v1/dev/outbox?to=${encodeURIComponent(acc.email)}`)).body).toEqual([]);

  // The operator fixes the relay and resets to the last workflow task: the new run schedules the delivery
  // afresh (attempt 1 now, instead of a retry that would come too late: the next one is past the deadline).
  relay.refused.delete(REFUSED);
  const reset = await cli(['--json', 'flows', 'reset', flow.flowId, '--to', 'last-task', '--reason', 'smtp relay now accepts refused.example']);
  expect(reset.code).toBe(0);
  expect(reset.json).toMatchObject({ workflowId: `password-reset/${flow.flowId}`, resetToEventType: 'WORKFLOW_TASK_COMPLETED' });
  expect(reset.json.runId).not.toBe(reset.json.previousRunId);
  const resetAt = Date.now();
  const { code } = await h.api.codeFor(acc.email);
  expect(Date.now() - resetAt).toBeLessThan(15_000); // the old run is gone (new runId): this delivery is the new run's
  expect(relay.log.filter((l) => l.to === acc.email).map((l) => l.accepted)).toEqual(expect.arrayContaining([false, true]));

  // The flow carries on in its new run, through the same API.
  expect((await h.api.post(`/v1/flows/${flow.flowId}/code`, { code })).body.step).toBe('new_password');
  expect((await setPassword(h.api, flow.flowId, 'back to life after a reset')).body.status).toBe('completed');
  for (let i = 0; (await describe_(flow.flowId)).executionStatus === 'RUNNING' && i < 50; i++) await sleep(200);
  const after = await describe_(flow.flowId);
  expect(after.runId).toBe(reset.json.runId);
  expect(after.executionStatus).toBe('COMPLETED');
}, 120_000);

test('flows reset: needs a reason; refuses an event that does not end a workflow task', async () => {
  const acc = await makeAccount();
  const flow = await h.api.resetToCode(acc.email);
  expect((await cli(['flows', 'reset', flow.flowId])).code).toBe(2);
  const bad = await cli(['flows', 'reset', flow.flowId, '--to', 'event', '1', '--reason', 'x']);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toMatch(/event 1 is not the end of a workflow task; nearby ones: \d+/);
  const first = await cli(['--json', 'flows', 'reset', flow.flowId, '--to', 'first-task', '--reason', 'start over']);
  expect(first.code).toBe(0);
  expect(first.json.resetToEventId).toBe(4); // started, task scheduled, started, completed
  expect(first.json.runId).not.toBe(first.json.previousRunId);
  // A new run starts over from its first task; the captcha answers given after that point are reapplied
  // (updates after the reset point are), so it arrives at code again, with a code of its own.
  expect((await waitForFlow(h.api, flow.flowId, (f) => f.step === 'code')).status).toBe('active');
  const { temporalClient } = await import('../lib/temporal');
  const desc = await (await temporalClient()).workflow.getHandle(`password-reset/${flow.flowId}`).describe();
  expect(desc.runId).toBe(first.json.runId);
  expect(desc.status.name).toBe('RUNNING');
}, 90_000);

test('flows replay: a good history replays; against a changed workflow it fails and names the event', async () => {
  const acc = await makeAccount();
  const flow = await h.api.resetToCode(acc.email);
  const { code } = await h.api.codeFor(acc.email);
  await h.api.post(`/v1/flows/${flow.flowId}/code`, { code });
  await setPassword(h.api, flow.flowId, 'replayed and deterministic');

  const good = await cli(['--json', 'flows', 'replay', flow.flowId]);
  expect(good.code).toBe(0);
  expect(good.json).toMatchObject({ replayed: 1, failed: 0, results: [{ workflowId: `password-reset/${flow.flowId}`, ok: true }] });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'changed-workflows-'));
  try {
    const wf = (f: string) => JSON.stringify(path.join(ROOT, 'workflows', f).split(path.sep).join('/'));
    fs.writeFileSync(
      path.join(dir, 'index.ts'),
      [
        `import { proxyActivities } from '@temporalio/workflow';`,
        `import { passwordReset as current, type PasswordResetInput } from ${wf('password-reset')};`,
        `export { supportReview } from ${wf('support-review')};`,
        `const { findRecoveryTarget } = proxyActivities<{ findRecoveryTarget(x: unknown): Promise<unknown> }>({ startToCloseTimeout: '5s' });`,
        `// the change: look the identifier up once more before anything else`,
        `export async function passwordReset(input: PasswordResetInput) {`,
        `  await findRecoveryTarget({ flowId: input.flowId, identifier: input.identifier });`,
        `  return current(input);`,
        `}`,
      ].join('\n'),
    );
    const bad = await cli(['--json', 'flows', 'replay', flow.flowId, '--workflows', path.join(dir, 'index.ts')]);
    expect(bad.code).toBe(1);
    const [r] = bad.json.results;
    expect(r).toMatchObject({ ok: false, errorKind: 'nondeterminism' });
    expect(r.summary).toMatch(/Nondeterminism/);
    // the first command event of the history: the flow publishes its step before its first activity
    const history = await (await (await import('../lib/temporal')).temporalClient()).workflow.getHandle(`password-reset/${flow.flowId}`).fetchHistory();
    const firstCommand = history.events!.find((e) => ![1, 5, 6, 7].includes(Number(e.eventType)))!; // not started / task events
    expect(r.divergesAt).toMatchObject({ eventId: Number(firstCommand.eventId) });
    const table = await cli(['flows', 'replay', flow.flowId, '--workflows', path.join(dir, 'index.ts')]);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(new RegExp(`NONDETERMINISM\\s+event ${Number(firstCommand.eventId)} \\(`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  // many at once: every execution on this test's task queue
  const many = await cli(['--json', 'flows', 'replay', '--query', `TaskQueue = '${process.env.TEMPORAL_TASK_QUEUE}'`, '--limit', '5']);
  expect(many.code).toBe(0);
  expect(many.json.replayed).toBeGreaterThanOrEqual(2);
  expect(many.json.failed).toBe(0);
}, 120_000);

test('flows cancel: the flow ends cancelled, as the user’s DELETE would', async () => {
  const acc = await makeAccount();
  const flow = await h.api.resetToCode(acc.phone);
  const r = await cli(['--json', 'flows', 'cancel', flow.flowId], { bin: true }); // through the recovery-ops bin shim
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(r.json).toMatchObject({ how: 'flow', flow: { status: 'cancelled' } });
  expect((await h.api.get(`/v1/flows/${flow.flowId}`)).body.status).toBe('cancelled');
}, 60_000);

test('flows cancel: a flow whose first task never ran (search attributes from its start) gets a Temporal cancellation after 15 s', async () => {
  const { temporalClient } = await import('../lib/temporal');
  const { passwordReset } = await import('../workflows/password-reset');
  const { KIND_PREFIX, KIND_SLUG, flowAttributes } = await import('../workflows/messages');
  const client = await temporalClient();
  const flowId = `${KIND_PREFIX.password_reset}${crypto.randomBytes(16).toString('base64url')}`;
  // as the API starts it, but on a queue no worker polls: it never takes an update
  await client.workflow.start(passwordReset, {
    workflowId: `${KIND_SLUG.password_reset}/${flowId}`,
    taskQueue: `nobody-polls-${crypto.randomBytes(3).toString('hex')}`,
    args: [{ flowId, identifier: 'stuck@example.com', settings: (await import('../lib/temporal')).flowSettings(), expiresAt: Date.now() + 60_000 }],
    typedSearchAttributes: flowAttributes('password_reset', 'captcha', 'active', new Date()),
  });
  const r = await cli(['--json', 'flows', 'cancel', flowId]);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  expect(r.json).toMatchObject({ how: 'temporal' });
  // the cancellation is requested (a worker that picks the flow up ends it)
  const handle = client.workflow.getHandle(`${KIND_SLUG.password_reset}/${flowId}`);
  const { temporal } = await import('@temporalio/proto');
  const types = ((await handle.fetchHistory()).events ?? []).map((e) => e.eventType);
  expect(types).toContain(temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED);
  await handle.terminate('test over');
}, 60_000);

test('cases list / approve / reject from the CLI; a decided case is refused (exit 1)', async () => {
  const a = await makeAccount();
  const b = await makeAccount();
  const flowA = await resetToSupport(h.api, a.email);
  const flowB = await resetToSupport(h.api, b.email);
  const contactA = contactEmail('cli-a');
  const { caseId: caseA } = await submitSupport(h.api, flowA, { accountId: a.accountId, imei: randomImei(), contactEmail: contactA });
  const { caseId: caseB } = await submitSupport(h.api, flowB, { accountId: b.accountId, imei: randomImei(), contactEmail: contactEmail('cli-b') });

  const list = await cli(['cases', 'list', '--status', 'pending', '--json']);
  expect(list.code).toBe(0);
  expect(list.json.map((c: { caseId: string }) => c.caseId)).toEqual(expect.arrayContaining([caseA, caseB]));
  const text = await cli(['cases', 'list', '--status', 'pending']);
  expect(text.stdout).toMatch(new RegExp(`${caseA}\\s+pending\\s+${a.accountId}`));

  const approved = await cli(['--json', 'cases', 'approve', caseA, '--reviewer', 'ops-cli', '--note', 'device checked by phone']);
  expect(approved.code).toBe(0);
  expect(approved.json).toMatchObject({ caseId: caseA, status: 'approved', decision: { reviewer: 'ops-cli', note: 'device checked by phone' } });
  await waitForFlow(h.api, flowA, (f) => f.step === 'code');
  await h.api.codeFor(contactA);

  const again = await cli(['--json', 'cases', 'reject', caseA, '--reviewer', 'ops-cli', '--note', 'changed my mind']);
  expect(again.code).toBe(1);
  expect(again.json).toMatchObject({ caseId: caseA, error: 'case_decided' });

  expect((await cli(['cases', 'reject', caseB])).code).toBe(2); // a rejection needs --note (the user is told it)
  const rejected = await cli(['cases', 'reject', caseB, '--reviewer', 'ops-cli', '--note', 'IMEI unknown']);
  expect({ code: rejected.code, stderr: rejected.stderr }).toEqual({ code: 0, stderr: '' });
  expect(rejected.stdout).toContain(`${caseB}: rejected by ops-cli`);
  expect((await waitForFlow(h.api, flowB, (f) => f.status !== 'active')).status).toBe('rejected');
}, 120_000);

test('exit status: 2 for bad usage, 1 for a flow that does not exist', async () => {
  expect((await cli(['flows', 'stuck', '--older-than', 'soon'])).code).toBe(2);
  expect((await cli(['flows', 'replay'])).code).toBe(2);
  expect((await cli(['flows', 'frobnicate'])).code).toBe(2);
  const missing = await cli(['flows', 'show', 'rst_AAAAAAAAAAAAAAAAAAAAAA']);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toMatch(/no such workflow/);
  expect((await cli(['flows', 'show', 'not-an-id'])).code).toBe(1);
}, 60_000);
