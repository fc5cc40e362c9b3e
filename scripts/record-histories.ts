/**
 * Records workflow histories for the determinism guard (test/replay.test.ts replays every file in
 * test/histories/ against the current workflow code; a change that breaks replay fails `npm test`).
 *
 *   npx tsx scripts/record-histories.ts                  record the scenarios that have no file yet
 *   npx tsx scripts/record-histories.ts sign-up          … only those whose name starts with "sign-up"
 *   npx tsx scripts/record-histories.ts --force NAME…    re-record NAME (overwrites its file)
 *   npx tsx scripts/record-histories.ts --list           list the scenarios and whether they are recorded
 *
 * It starts an isolated stack (Temporal dev server, FerretDB, maildev on free ports, like `npm test`),
 * runs the real API and worker in-process with the fixture payload key (see test/histories/index.ts),
 * drives each scenario over HTTP, waits for its workflows to close and writes each history to
 * test/histories/<name>.json. Commit the new files with the change that added the workflow or path.
 *
 * Adding a flow kind or path: append a Scenario to SCENARIOS below (name `<workflow-id prefix>.<case>`,
 * e.g. `sign-up.happy`), run the script with that name, commit the JSON. Existing files are kept unless
 * --force names them: they are histories the *old* code wrote, and replaying them against new code is
 * the whole point. Re-record one only when its change is deliberate and guarded by patched() for the
 * runs already in flight (or when no run of the old code can still be open).
 *
 * Scenarios run concurrently; durations are seconds (see ENV). Keep each one short and self-contained:
 * its own accounts, its own flows.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Client } from '@temporalio/client';
import { historyToJson } from '../ops/history-json';
import { ensureTools } from './tools';
import { startServices, type Stack } from './stack';
import { FIXTURE_PAYLOAD_KEY, HISTORIES_DIR, type HistoryFixture } from '../test/histories';
import type { Api, Harness } from '../test/support/harness';
import { OPS_TOKEN, bindDevice, contactEmail, decide, randomImei, resetToSupport, setPassword, sleep, submitSupport, waitForFlow } from '../test/support/scenarios';
import { runMain } from './run-main';

/** What the recorder's service runs with: short deadlines so every path ends within seconds. */
const ENV: Record<string, string> = {
  PAYLOAD_ENCRYPTION_KEY: FIXTURE_PAYLOAD_KEY,
  OPS_TOKEN,
  NODE_ENV: 'test',
  CAPTCHA_PROVIDER: 'test',
  FLOW_TTL: '15s',
  SUPPORT_REVIEW_TTL: '6s',
  RECOVERY_HOLD: '2s',
};

export interface ScenarioContext {
  api: Api;
  client: Client;
  /** makeAccount from the test harness: a fresh account (email, phone, password, 3 answers "blue"). */
  makeAccount: typeof import('../test/support/harness').makeAccount;
}

export interface Scenario {
  /** `<workflow kind>.<case>`: the file name of its main history. */
  name: string;
  description: string;
  /**
   * Drives the flow; resolves with the histories to record: file name → workflow id. The main flow's
   * name is the scenario's; a child workflow gets its own (e.g. `support-review.approved`).
   */
  run(ctx: ScenarioContext): Promise<Record<string, string>>;
}

const resetId = (flowId: string) => `password-reset/${flowId}`;
const reviewId = (caseId: string) => `support-review/${caseId}`;

async function codeFromMailbox(api: Api, to: string): Promise<string> {
  return (await api.codeFor(to)).code;
}

/** Signed in: a code to the current phone (email) → a new one → OK → a code to the new one → completed. */
function changeContactScenario(what: 'phone' | 'email'): Scenario {
  const name = `change-${what}.happy`;
  return {
    name,
    description: `signed in: code to the current ${what} → new ${what} → OK → code to the new ${what} → completed`,
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const current = what === 'phone' ? acc.phone : acc.email;
      const signIn = await api.post('/v1/sessions', { identifier: what === 'phone' ? acc.email : acc.phone, password: acc.password });
      const auth = { authorization: `Bearer ${signIn.body.token}` };
      const id: string = (await api.post(`/v1/flows/change-${what}`, undefined, auth)).body.flowId;
      await api.post(`/v1/flows/${id}/code`, { code: await codeFromMailbox(api, current) }, auth);
      const next = what === 'phone' ? `+1650555${crypto.randomInt(1000, 10_000)}` : `new-${crypto.randomBytes(4).toString('hex')}@example.com`;
      await api.post(`/v1/flows/${id}/new-${what}`, { [what]: next }, auth);
      await api.post(`/v1/flows/${id}/confirm`, undefined, auth);
      await api.post(`/v1/flows/${id}/code`, { code: await codeFromMailbox(api, next) }, auth);
      return { [name]: `change-${what}/${id}` };
    },
  };
}

/** The scenarios, one per path through each workflow. Append new kinds here. */
export const SCENARIOS: Scenario[] = [
  {
    name: 'password-reset.happy',
    description: 'captcha → code by email → new password → completed',
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const flow = await api.resetToCode(acc.email);
      await api.post(`/v1/flows/${flow.flowId}/code`, { code: await codeFromMailbox(api, acc.email) });
      await setPassword(api, flow.flowId, 'a brand new passphrase 7');
      return { 'password-reset.happy': resetId(flow.flowId) };
    },
  },
  {
    name: 'password-reset.questions-hold',
    description: 'code (one wrong, a resend) → not working → questions (one wrong, then right) → new password → hold → completed',
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const flow = await api.resetToCode(acc.phone);
      const first = await api.codeFor(acc.phone);
      await api.post(`/v1/flows/${flow.flowId}/code`, { code: first.code === '000000' ? '111111' : '000000' });
      await sleep(2_100); // the resend cooldown
      await api.post(`/v1/flows/${flow.flowId}/resend`);
      await api.post(`/v1/flows/${flow.flowId}/not-working`);
      await api.post(`/v1/flows/${flow.flowId}/security-answers`, { answers: acc.answers.map((a) => ({ ...a, answer: 'red' })) });
      await api.post(`/v1/flows/${flow.flowId}/security-answers`, { answers: acc.answers });
      await setPassword(api, flow.flowId, 'held and then applied 4');
      return { 'password-reset.questions-hold': resetId(flow.flowId) };
    },
  },
  {
    name: 'password-reset.veto',
    description: 'questions → new password → hold → vetoed from the notice → cancelled',
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const flow = await api.resetToCode(acc.email);
      await api.post(`/v1/flows/${flow.flowId}/not-working`);
      await api.post(`/v1/flows/${flow.flowId}/security-answers`, { answers: acc.answers });
      await setPassword(api, flow.flowId, 'an attacker passphrase 3');
      const notice = await api.waitForMessage(acc.email, { match: /takes effect/ });
      const token = /token=([A-Za-z0-9_-]+)/.exec(notice.text)![1];
      await api.post(`/v1/flows/${flow.flowId}/veto`, { token });
      return { 'password-reset.veto': resetId(flow.flowId) };
    },
  },
  {
    name: 'password-reset.support-approved',
    description: 'not working ×2 → support form (bound IMEI) → approved → code to the contact email → new password → hold → completed',
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const imei = await bindDevice(api, acc);
      const contact = contactEmail('approved');
      const flowId = await resetToSupport(api, acc.email);
      const { caseId } = await submitSupport(api, flowId, { accountId: acc.accountId, imei, contactEmail: contact, message: 'lost my SIM' });
      await decide(api, caseId, 'approve', 'recorder', 'IMEI matches');
      await waitForFlow(api, flowId, (f) => f.step === 'code');
      await api.post(`/v1/flows/${flowId}/code`, { code: await codeFromMailbox(api, contact) });
      await setPassword(api, flowId, 'recovered by support 5');
      return { 'password-reset.support-approved': resetId(flowId), 'support-review.approved': reviewId(caseId) };
    },
  },
  {
    name: 'password-reset.support-approved-other-account',
    description: 'reset for one account → support form naming another account (its bound IMEI) → approved → that account recovered; the marker claimed on the first released',
    async run({ api, makeAccount }) {
      const typed = await makeAccount();
      const named = await makeAccount();
      const imei = await bindDevice(api, named);
      const contact = contactEmail('other-account');
      const flowId = await resetToSupport(api, typed.email);
      const { caseId } = await submitSupport(api, flowId, { accountId: named.accountId, imei, contactEmail: contact });
      await decide(api, caseId, 'approve', 'recorder', 'IMEI matches the named account');
      await waitForFlow(api, flowId, (f) => f.step === 'code');
      await api.post(`/v1/flows/${flowId}/code`, { code: await codeFromMailbox(api, contact) });
      await setPassword(api, flowId, 'recovered the named account 5');
      return { 'password-reset.support-approved-other-account': resetId(flowId) };
    },
  },
  {
    name: 'password-reset.support-rejected',
    description: 'support form (unknown IMEI) → rejected → flow rejected, contact told',
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const flowId = await resetToSupport(api, acc.phone);
      const { caseId } = await submitSupport(api, flowId, { accountId: acc.accountId, imei: randomImei(), contactEmail: contactEmail('rejected') });
      await decide(api, caseId, 'reject', 'recorder', 'IMEI is not bound to the account');
      return { 'password-reset.support-rejected': resetId(flowId), 'support-review.rejected': reviewId(caseId) };
    },
  },
  {
    name: 'password-reset.support-expired',
    description: 'support form → nobody reviews within SUPPORT_REVIEW_TTL → case and flow expired, contact told',
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const flowId = await resetToSupport(api, acc.email);
      const { caseId } = await submitSupport(api, flowId, { accountId: acc.accountId, imei: randomImei(), contactEmail: contactEmail('expired') });
      return { 'password-reset.support-expired': resetId(flowId), 'support-review.expired': reviewId(caseId) };
    },
  },
  {
    name: 'password-reset.cancelled',
    description: 'captcha → code → DELETE → cancelled',
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const flow = await api.resetToCode(acc.email);
      await api.codeFor(acc.email);
      await api.call('DELETE', `/v1/flows/${flow.flowId}`);
      return { 'password-reset.cancelled': resetId(flow.flowId) };
    },
  },
  {
    name: 'password-reset.superseded',
    description: 'a second reset for the same account supersedes the first (recorded: the first), the second is cancelled',
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const first = await api.resetToCode(acc.email);
      const second = await api.post('/v1/flows/password-reset', { identifier: acc.phone });
      await waitForFlow(api, first.flowId, (f) => f.status !== 'active');
      await api.call('DELETE', `/v1/flows/${second.body.flowId}`);
      return { 'password-reset.superseded': resetId(first.flowId) };
    },
  },
  {
    name: 'password-reset.expired',
    description: 'captcha → code → nothing until FLOW_TTL → expired',
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const flow = await api.resetToCode(acc.email);
      return { 'password-reset.expired': resetId(flow.flowId) };
    },
  },
  {
    name: 'password-reset.unknown-identifier',
    description: 'an identifier with no account walks captcha → code → questions → support → cancelled, nothing sent',
    async run({ api }) {
      const flow = await api.resetToCode(`nobody-${crypto.randomBytes(4).toString('hex')}@example.com`);
      await api.post(`/v1/flows/${flow.flowId}/code`, { code: '123456' });
      await api.post(`/v1/flows/${flow.flowId}/not-working`);
      const q = await api.get(`/v1/flows/${flow.flowId}`);
      await api.post(`/v1/flows/${flow.flowId}/security-answers`, { answers: q.body.questions.map((x: { id: string }) => ({ questionId: x.id, answer: 'blue' })) });
      await api.post(`/v1/flows/${flow.flowId}/not-working`);
      await api.call('DELETE', `/v1/flows/${flow.flowId}`);
      return { 'password-reset.unknown-identifier': resetId(flow.flowId) };
    },
  },
  {
    name: 'sign-up.happy',
    description: 'code by SMS → captcha → consent → password → completed (account created)',
    async run({ api }) {
      const phone = `+1650555${crypto.randomInt(1000, 10_000)}`;
      const start = await api.post('/v1/flows/sign-up', { phone });
      const id: string = start.body.flowId;
      await api.post(`/v1/flows/${id}/code`, { code: await codeFromMailbox(api, phone) });
      await api.get(`/v1/flows/${id}/captcha`);
      await api.post(`/v1/flows/${id}/captcha`, { answer: 'test' });
      await api.post(`/v1/flows/${id}/consent`, { accept: true, syncEnabled: true, versions: { 'privacy-policy': '2026-01', 'user-agreement': '2026-01' } });
      await setPassword(api, id, 'my first passphrase 42');
      return { 'sign-up.happy': `sign-up/${id}` };
    },
  },
  changeContactScenario('phone'),
  changeContactScenario('email'),
  heldChangeScenario('phone', 'completed'),
  heldChangeScenario('email', 'vetoed'),
  {
    name: 'sign-up.captcha-first',
    description: "the hour's sign-up message budget spent: captcha → code → consent → password → completed",
    async run({ api, client }) {
      // Started as the API starts it while SIGNUP_MESSAGE_BUDGET is spent (spending it here would turn the
      // other sign-up scenarios, which run at the same time, captcha-first too).
      const { signUp } = await import('../workflows/sign-up');
      const { flowSettings } = await import('../lib/temporal');
      const { LEGAL_DOCUMENTS } = await import('../lib/documents');
      const { newFlowId, flowSecretOf } = await import('../lib/secrets');
      const { maskPhone } = await import('../lib/identifiers');
      const phone = `+1650555${crypto.randomInt(1000, 10_000)}`;
      const id = newFlowId('sign_up');
      await client.workflow.start(signUp, {
        workflowId: `sign-up/${id}`,
        taskQueue: process.env.TEMPORAL_TASK_QUEUE!,
        args: [
          {
            flowId: id,
            contact: { kind: 'phone', value: phone },
            destinationHint: maskPhone(phone),
            settings: flowSettings(),
            documents: [...LEGAL_DOCUMENTS],
            expiresAt: Date.now() + 15_000,
            captchaFirst: true,
          },
        ],
      });
      api.secrets.set(id, flowSecretOf(id));
      await waitForFlow(api, id, (f) => f.step === 'captcha');
      await api.get(`/v1/flows/${id}/captcha`);
      await api.post(`/v1/flows/${id}/captcha`, { answer: 'test' });
      await api.post(`/v1/flows/${id}/code`, { code: await codeFromMailbox(api, phone) });
      await api.post(`/v1/flows/${id}/consent`, { accept: true, syncEnabled: false, versions: { 'privacy-policy': '2026-01', 'user-agreement': '2026-01' } });
      await setPassword(api, id, 'my first passphrase 43');
      return { 'sign-up.captcha-first': `sign-up/${id}` };
    },
  },
];

/** Signed in, the current contact unreachable: questions → new contact → code → hold (every channel told) → completed, or vetoed. */
function heldChangeScenario(what: 'phone' | 'email', end: 'completed' | 'vetoed'): Scenario {
  const name = `change-${what}.questions-hold${end === 'vetoed' ? '-veto' : ''}`;
  return {
    name,
    description: `signed in: not working → security questions → new ${what} → OK → code to it → hold → ${end}`,
    async run({ api, makeAccount }) {
      const acc = await makeAccount();
      const signIn = await api.post('/v1/sessions', { identifier: acc.email, password: acc.password });
      const auth = { authorization: `Bearer ${signIn.body.token}` };
      const id: string = (await api.post(`/v1/flows/change-${what}`, undefined, auth)).body.flowId;
      await api.post(`/v1/flows/${id}/not-working`, undefined, auth);
      await api.post(`/v1/flows/${id}/security-answers`, { answers: acc.answers }, auth);
      const next = what === 'phone' ? `+1650555${crypto.randomInt(1000, 10_000)}` : `new-${crypto.randomBytes(4).toString('hex')}@example.com`;
      await api.post(`/v1/flows/${id}/new-${what}`, { [what]: next }, auth);
      await api.post(`/v1/flows/${id}/confirm`, undefined, auth);
      await api.post(`/v1/flows/${id}/code`, { code: await codeFromMailbox(api, next) }, auth);
      if (end === 'vetoed') {
        const notice = await api.waitForMessage(acc.email, { match: /cancel it now/ });
        const token = new URL(/https?:\/\/\S+/.exec(notice.text)![0]).searchParams.get('token')!;
        await api.post(`/v1/flows/${id}/veto`, { token });
      }
      return { [name]: `change-${what}/${id}` };
    },
  };
}

async function waitClosed(client: Client, workflowId: string, timeoutMs: number): Promise<void> {
  const handle = client.workflow.getHandle(workflowId);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const desc = await handle.describe();
    if (desc.status.name !== 'RUNNING') return;
    if (Date.now() > deadline) throw new Error(`${workflowId} still running after ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

export async function recordScenario(scenario: Scenario, ctx: ScenarioContext, outDir = HISTORIES_DIR): Promise<string[]> {
  const targets = await scenario.run(ctx);
  const written: string[] = [];
  for (const [name, workflowId] of Object.entries(targets)) {
    await waitClosed(ctx.client, workflowId, 60_000);
    const handle = ctx.client.workflow.getHandle(workflowId);
    const [history, desc] = await Promise.all([handle.fetchHistory(), handle.describe()]);
    const fixture: HistoryFixture = {
      name,
      description: scenario.description,
      workflowId,
      workflowType: desc.type,
      recordedAt: new Date().toISOString(),
      payloadKeyId: FIXTURE_PAYLOAD_KEY.split(':')[0]!,
      history: historyToJson(history),
    };
    const file = path.join(outDir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(fixture, null, 1) + '\n');
    written.push(file);
  }
  return written;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const force = args.includes('--force');
  const names = args.filter((a) => !a.startsWith('--'));
  const recorded = (s: Scenario) => fs.existsSync(path.join(HISTORIES_DIR, `${s.name}.json`));
  if (args.includes('--list')) {
    for (const s of SCENARIOS) process.stdout.write(`${recorded(s) ? 'recorded' : 'missing '}  ${s.name}  ${s.description}\n`);
    return 0;
  }
  const picked = SCENARIOS.filter((s) => (names.length === 0 || names.some((n) => s.name.startsWith(n))) && (force ? names.length > 0 : !recorded(s)));
  if (force && names.length === 0) {
    process.stderr.write('record-histories: --force needs the scenario names to re-record\n');
    return 2;
  }
  if (picked.length === 0) {
    process.stdout.write('record-histories: nothing to record (every scenario has its file; --list shows them)\n');
    return 0;
  }

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'record-histories-'));
  let stack: Stack | undefined;
  let h: Harness | undefined;
  try {
    const tools = await ensureTools(['temporal', 'ferretdb']);
    stack = await startServices({ dataDir: tmp, persistent: false, headless: true, bin: tools, mongoDbName: 'record_histories' });
    Object.assign(process.env, ENV, { ...stack.env, DATA_DIR: path.join(tmp, 'app') });
    const { startHarness, makeAccount } = await import('../test/support/harness');
    h = await startHarness('record', ENV);
    const { temporalClient } = await import('../lib/temporal');
    const ctx: ScenarioContext = { api: h.api, client: await temporalClient(), makeAccount };
    process.stdout.write(`record-histories: recording ${picked.map((s) => s.name).join(', ')}\n`);
    const results = await Promise.allSettled(picked.map((s) => recordScenario(s, ctx)));
    let failed = 0;
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') for (const f of r.value) process.stdout.write(`  wrote ${path.relative(process.cwd(), f)}\n`);
      else {
        failed++;
        process.stderr.write(`  ${picked[i]!.name} FAILED: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}\n`);
      }
    });
    return failed ? 1 : 0;
  } finally {
    await h?.stop().catch(() => undefined);
    await stack?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) runMain('record-histories', main);
