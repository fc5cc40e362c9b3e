/**
 * The determinism guard: every history recorded in test/histories/ (scripts/record-histories.ts)
 * replays against the current workflow code. A change that would break flows already running in
 * production (a new activity before an old one, a removed timer, a renamed child) fails here; make it
 * behind patched() and record the new path as a new history. No services needed: replay is local.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Runtime, DefaultLogger, type WorkflowBundle } from '@temporalio/worker';
import { EncryptionCodec, parseKeys } from '../lib/codec';
import { bundleWorkflows, historyFromJson, replayHistories, type ReplayOutcome } from '../ops/replay';
import { FIXTURE_PAYLOAD_KEY, fixtureFiles, readFixture } from './histories';

/** The histories that must exist: one per path through each workflow. Other kinds add theirs here. */
const REQUIRED = [
  'password-reset.happy',
  'password-reset.questions-hold',
  'password-reset.veto',
  'password-reset.support-approved',
  'password-reset.support-approved-other-account',
  'password-reset.support-rejected',
  'password-reset.support-expired',
  'password-reset.cancelled',
  'password-reset.superseded',
  'password-reset.expired',
  'password-reset.unknown-identifier',
  'support-review.approved',
  'support-review.rejected',
  'support-review.expired',
  'sign-up.happy',
  'sign-up.captcha-first',
  'change-phone.happy',
  'change-email.happy',
  'change-phone.questions-hold',
  'change-email.questions-hold-veto',
  // constructed: a flow the API started with its search attributes, run by a worker before SETTLED_PATCH (rolling deploy)
  'password-reset.v7-happy-started-with-attributes',
];

const dataConverter = { payloadCodecs: [new EncryptionCodec(parseKeys(FIXTURE_PAYLOAD_KEY))] };
const fixtures = fixtureFiles().map(readFixture);
const inputs = () => fixtures.map((f) => ({ workflowId: f.workflowId, history: historyFromJson(f.history), source: f.name }));

let bundle: WorkflowBundle;
let outcomes: Map<string, ReplayOutcome>;

beforeAll(async () => {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } } });
  } catch {
    // installed already in this process
  }
  bundle = await bundleWorkflows();
  outcomes = new Map((await replayHistories(inputs(), { bundle, dataConverter })).map((o) => [o.source!, o]));
}, 180_000);

test('every workflow path has a recorded history', () => {
  const names = fixtures.map((f) => f.name);
  expect(REQUIRED.filter((n) => !names.includes(n))).toEqual([]);
  for (const f of fixtures) expect(f.history.events.length).toBeGreaterThan(3);
});

test.each(fixtures.map((f) => [f.name, f.workflowType]))('%s (%s) replays against the current code', (name) => {
  const o = outcomes.get(name)!;
  expect(o).toBeDefined();
  // on failure, say where: the event and the SDK's reason
  expect({ name, ok: o.ok, divergesAt: o.divergesAt, summary: o.summary }).toEqual({ name, ok: true, divergesAt: undefined, summary: undefined });
});

test('the guard bites: a passwordReset that calls one more activity first diverges at its first command', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'changed-workflows-'));
  try {
    const wf = (f: string) => JSON.stringify(path.resolve(__dirname, '..', 'workflows', f).split(path.sep).join('/'));
    fs.writeFileSync(
      path.join(dir, 'index.ts'),
      [
        `import { proxyActivities } from '@temporalio/workflow';`,
        `import { passwordReset as current, type PasswordResetInput } from ${wf('password-reset')};`,
        `export { supportReview } from ${wf('support-review')};`,
        `const { supportCaseAccount } = proxyActivities<{ supportCaseAccount(x: { caseId: string }): Promise<unknown> }>({ startToCloseTimeout: '5s' });`,
        `export async function passwordReset(input: PasswordResetInput) {`,
        `  await supportCaseAccount({ caseId: 'a change that breaks replay' });`,
        `  return current(input);`,
        `}`,
      ].join('\n'),
    );
    const changed = await bundleWorkflows(path.join(dir, 'index.ts'));
    const happy = inputs().filter((i) => i.source === 'password-reset.happy' || i.source === 'support-review.approved');
    const [reset, review] = await replayHistories(happy, { bundle: changed, dataConverter });
    expect(reset).toMatchObject({ ok: false, errorKind: 'nondeterminism' });
    const first = (readFixture(fixtureFiles().find((f) => f.endsWith('password-reset.happy.json'))!).history.events as { eventId: string; eventType: string }[]).find(
      (e) => !/WORKFLOW_EXECUTION_STARTED|WORKFLOW_TASK_/.test(e.eventType),
    )!;
    expect(reset!.divergesAt).toEqual({ eventId: Number(first.eventId), eventType: first.eventType.replace(/^EVENT_TYPE_/, '') });
    // the unchanged workflow in the same bundle still replays
    expect(review).toMatchObject({ ok: true });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 120_000);
