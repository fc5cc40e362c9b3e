/**
 * `npm run bench [-- options]`: speed, scale and cost, reproducible on any machine.
 *
 * Starts an isolated stack (Temporal dev server with a file database, FerretDB, maildev; the worker and
 * the API as separate processes, CAPTCHA_PROVIDER=test, NODE_ENV=development, RATE_LIMITS=off), then:
 *
 *   reset    N virtual users, each doing the whole forgot-password flow over HTTP as a client would:
 *            start, GET captcha, POST captcha, the code read from GET /v1/dev/outbox, POST code,
 *            POST password. Completed flows/s; p50/p95/p99 of every step; CPU and peak RSS per process.
 *   ceiling  The same starts, updates and concurrency against a minimal workflow (bench/ceiling-workflow.ts)
 *            straight through the Temporal client, with a worker in this process: what the engine alone
 *            can do on this machine. Our throughput is reported as a ratio of it.
 *   parked   Many flows started and left at `code` (start + captcha) through a second API whose FLOW_TTL
 *            is short: the worker's memory with them all waiting, the time to park them, and the time until
 *            every one of them has ended `expired` (Temporal visibility).
 *
 * Also the argon2id parameters and their share of the time. Results: a table on stdout, JSON and an SVG
 * chart under bench-results/. The last line printed is `ratio to engine ceiling: 0.NN`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Command } from 'commander';
import { startApp, type App } from '../scripts/stack';
import { ROOT } from '../scripts/tools';
import { startRunStack, type RunStack } from './support/stack';
import { Client, flowSecretHeader, sleep } from './support/http';
import { GroupMonitor } from './support/procstat';
import { Samples, fmt, table } from './support/stats';
import { SEED_PASSWORD, freshPassword, seedAccounts, seedAccountsBulk, type SeededAccount } from './support/seed';
import { perSecond, renderChart } from './support/chart';
import { runMain } from '../scripts/run-main';

interface Options {
  users: number;
  iterations: number;
  duration?: number;
  warmup: number;
  parked: number;
  parkedTtl?: number;
  scenarios: string[];
  channel: 'email' | 'sms';
  logLevel: string;
  cpuProf: boolean;
  dbTiming: boolean;
  keep: boolean;
  out: string;
}

const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

function parseArgs(argv: string[]): Options {
  const p = new Command()
    .name('bench')
    .option('--users <n>', 'concurrent virtual users', '50')
    .option('--iterations <n>', 'flows per user in the reset scenario (the ceiling runs as long as it did)', '6')
    .option('--duration <seconds>', 'run the reset and ceiling scenarios this long each instead')
    .option('--warmup <n>', 'unmeasured flows per user first', '1')
    .option('--parked <n>', 'flows parked at `code` in the parked scenario', '10000')
    .option('--parked-ttl <seconds>', 'FLOW_TTL of the parked flows (default: from the measured start rate)')
    .option('--scenarios <list>', 'which scenarios, comma-separated', 'reset,ceiling,parked')
    .option('--channel <email|sms>', 'where the reset codes go (email goes through SMTP)', 'email')
    .option('--log-level <level>', 'LOG_LEVEL of the API and worker', 'info')
    .option('--cpu-prof', 'write V8 CPU profiles of the API and worker into the results dir')
    .option('--db-timing', 'count and time every MongoDB command of the API and worker (bench/support/mongo-timing.cjs)')
    .option('--keep', 'keep the temp dir (data and logs)')
    .option('--out <dir>', 'results directory', path.join(ROOT, 'bench-results'))
    .parse(argv);
  const o = p.opts();
  const int = (v: string, name: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number`);
    return n;
  };
  return {
    users: Math.max(1, int(o.users, 'users')),
    iterations: Math.max(1, int(o.iterations, 'iterations')),
    duration: o.duration !== undefined ? int(o.duration, 'duration') : undefined,
    warmup: int(o.warmup, 'warmup'),
    parked: int(o.parked, 'parked'),
    parkedTtl: o.parkedTtl !== undefined ? int(o.parkedTtl, 'parked-ttl') : undefined,
    scenarios: String(o.scenarios)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    channel: o.channel === 'sms' ? 'sms' : 'email',
    logLevel: o.logLevel,
    cpuProf: !!o.cpuProf,
    dbTiming: !!o.dbTiming,
    keep: !!o.keep,
    out: path.resolve(o.out),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The forgot-password flow as a client does it

const RESET_STEPS = ['start', 'captcha_get', 'captcha_post', 'code_delivery', 'code_sent', 'code_post', 'password_post', 'flow'] as const;

class Recorder {
  readonly steps = new Map<string, Samples>();
  readonly completions: number[] = [];
  readonly errors = new Map<string, number>();
  completed = 0;
  outboxPolls = 0;
  constructor(readonly t0 = performance.now()) {}
  add(step: string, ms: number): void {
    let s = this.steps.get(step);
    if (!s) this.steps.set(step, (s = new Samples()));
    s.add(ms);
  }
  done(): void {
    this.completed += 1;
    this.completions.push(performance.now() - this.t0);
  }
  error(what: string): void {
    this.errors.set(what, (this.errors.get(what) ?? 0) + 1);
  }
}

class FlowError extends Error {}
function expectStatus(step: string, r: { status: number; body: unknown }, status: number, check?: (b: any) => boolean): void {
  if (r.status !== status || (check && !check(r.body))) throw new FlowError(`${step}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
}

/**
 * Polls the dev outbox for the code sent for `flowId`: every 10 ms for the first 100 ms, as the peer's bench polls
 * Kratos' courier queue (../shared/peers/kratos/bench.mjs, POLL_MS), then doubling to 100 ms between polls.
 */
async function readCode(api: Client, to: string, flowId: string, rec: Recorder, timeoutMs = 60_000): Promise<{ code: string; sentAt: number }> {
  const startedAt = Date.now();
  const deadline = startedAt + timeoutMs;
  let delay = 10;
  for (;;) {
    rec.outboxPolls += 1;
    const r = await api.call<{ text: string; flowId?: string; sentAt: string }[]>('GET', `/v1/dev/outbox?to=${encodeURIComponent(to)}`);
    if (r.status === 200) {
      const hit = r.body.find((m) => m.flowId === flowId && /verification code is (\d{6})/.test(m.text));
      if (hit) return { code: /verification code is (\d{6})/.exec(hit.text)![1]!, sentAt: Date.parse(hit.sentAt) };
    }
    if (Date.now() > deadline) throw new FlowError(`code_delivery: no code for ${flowId} within ${timeoutMs} ms`);
    await sleep(delay);
    if (Date.now() - startedAt >= 100) delay = Math.min(delay * 2, 100);
  }
}

/** One whole reset; answers the new password. */
async function resetFlow(api: Client, identifier: string, rec: Recorder): Promise<string> {
  const t0 = performance.now();
  const start = await api.call('POST', '/v1/flows/password-reset', { identifier });
  expectStatus('start', start, 201, (b) => typeof b.flowSecret === 'string');
  rec.add('start', start.ms);
  const id = start.body.flowId as string;
  const secret = flowSecretHeader(start); // sent on every later request of the flow
  const cap = await api.call('GET', `/v1/flows/${id}/captcha`, undefined, secret);
  expectStatus('captcha_get', cap, 200);
  rec.add('captcha_get', cap.ms);
  const capPost = await api.call('POST', `/v1/flows/${id}/captcha`, { answer: 'test' }, secret);
  expectStatus('captcha_post', capPost, 200, (b) => b.step === 'code');
  rec.add('captcha_post', capPost.ms);
  const tc = performance.now();
  const answeredAt = Date.now();
  const { code, sentAt } = await readCode(api, identifier, id, rec);
  rec.add('code_delivery', performance.now() - tc);
  // when the SMTP server took it (the worker's clock, this machine's): the delivery without the client's polling
  rec.add('code_sent', sentAt - answeredAt);
  const codePost = await api.call('POST', `/v1/flows/${id}/code`, { code }, secret);
  expectStatus('code_post', codePost, 200, (b) => b.step === 'new_password');
  rec.add('code_post', codePost.ms);
  const password = freshPassword();
  const pw = await api.call('POST', `/v1/flows/${id}/password`, { password, confirmation: password }, secret);
  expectStatus('password_post', pw, 200, (b) => b.status === 'completed');
  rec.add('password_post', pw.ms);
  rec.add('flow', performance.now() - t0);
  rec.done();
  return password;
}

/** Runs `body(vu, i)` for every user, `iterations` times each or until `durationMs` passed. */
async function virtualUsers(users: number, plan: { iterations: number; durationMs?: number }, body: (vu: number, i: number) => Promise<void>): Promise<number> {
  const started = performance.now();
  const stopAt = plan.durationMs !== undefined ? Date.now() + plan.durationMs : Infinity;
  await Promise.all(
    Array.from({ length: users }, async (_, vu) => {
      for (let i = 0; plan.durationMs !== undefined ? Date.now() < stopAt : i < plan.iterations; i++) await body(vu, i);
    }),
  );
  return (performance.now() - started) / 1000;
}

interface ProcStats {
  cpuSeconds: number;
  cpuPercent: number;
  peakRssMiB: number;
  rssMiB: number;
  hwmMiB: number;
}

interface ScenarioResult {
  flows: number;
  completed: number;
  errors: Record<string, number>;
  seconds: number;
  flowsPerSecond: number;
  steps: Record<string, ReturnType<Samples['summary']>>;
  processes: Record<string, ProcStats>;
  throughput: [number, number][];
  /** GET /v1/dev/outbox calls the bench client made per completed flow while waiting for its code (its own load, not a user's). */
  outboxPollsPerFlow?: number;
  /** After the run, outside its time: users who signed in with their last new password, and whether the seed password was refused. */
  passwordsChanged?: { signedIn: number; users: number; oldRefused: boolean };
}

function summarize(rec: Recorder, seconds: number, processes: Record<string, ProcStats>, order: readonly string[]): ScenarioResult {
  const steps: ScenarioResult['steps'] = {};
  for (const name of order) if (rec.steps.has(name)) steps[name] = rec.steps.get(name)!.summary();
  for (const [name, s] of rec.steps) if (!steps[name]) steps[name] = s.summary();
  const errors = Object.fromEntries(rec.errors);
  const failed = Object.values(errors).reduce((a, b) => a + b, 0);
  const outboxPollsPerFlow = rec.outboxPolls > 0 && rec.completed > 0 ? rec.outboxPolls / rec.completed : undefined;
  return {
    flows: rec.completed + failed,
    completed: rec.completed,
    errors,
    seconds,
    flowsPerSecond: rec.completed / seconds,
    steps,
    processes,
    throughput: perSecond(rec.completions),
    outboxPollsPerFlow,
  };
}

function monitorFor(rs: RunStack, extra: Record<string, () => number | undefined> = {}): GroupMonitor {
  return new GroupMonitor({
    api: () => rs.app.api?.pid,
    worker: () => rs.app.worker?.pid,
    temporal: () => rs.stack.services.temporal?.pid,
    ferretdb: () => rs.stack.services.mongo?.pid,
    maildev: () => rs.stack.services.smtp?.pid,
    bench: () => process.pid,
    ...extra,
  });
}

async function runReset(rs: RunStack, o: Options, accounts: SeededAccount[]): Promise<ScenarioResult> {
  const api = new Client(rs.apiUrl);
  const idOf = (vu: number) => (o.channel === 'email' ? accounts[vu]!.email : accounts[vu]!.phone);
  if (o.warmup > 0) {
    log(`reset: warm-up, ${o.users} users × ${o.warmup} flow(s)`);
    const warm = new Recorder();
    await virtualUsers(o.users, { iterations: o.warmup }, async (vu) => {
      try {
        await resetFlow(api, idOf(vu), warm);
      } catch (err) {
        warm.error(err instanceof FlowError ? err.message.split(':')[0]! : 'transport');
        log(`warm-up flow failed: ${(err as Error).message}`);
      }
    });
  }
  const plan = o.duration !== undefined ? `${o.duration} s` : `${o.iterations} flow(s) each`;
  log(`reset: ${o.users} users, ${plan}, codes by ${o.channel}`);
  const rec = new Recorder();
  const mon = monitorFor(rs);
  const last: (string | undefined)[] = [];
  const seconds = await virtualUsers(o.users, { iterations: o.iterations, durationMs: o.duration !== undefined ? o.duration * 1000 : undefined }, async (vu) => {
    try {
      last[vu] = await resetFlow(api, idOf(vu), rec);
    } catch (err) {
      const step = err instanceof FlowError ? err.message.split(':')[0]! : 'transport';
      rec.error(step);
      if ((rec.errors.get(step) ?? 0) <= 3) log(`flow failed: ${(err as Error).message}`);
    }
  });
  const result = summarize(rec, seconds, mon.stop(), RESET_STEPS);
  // Really changed: every user signs in with the last password it chose, and the seed password no longer works.
  const signIn = (identifier: string, password: string) => api.call('POST', '/v1/sessions', { identifier, password });
  const signedIn = await Promise.all(last.map(async (pw, vu) => pw !== undefined && (await signIn(idOf(vu), pw)).status === 201));
  const old = await signIn(idOf(0), SEED_PASSWORD);
  result.passwordsChanged = { signedIn: signedIn.filter(Boolean).length, users: o.users, oldRefused: old.status === 401 };
  return result;
}

// ---------------------------------------------------------------------------------------------------------
// The engine ceiling

/** Starts and updates per flow in the HTTP flow: start; submitCaptcha, submitCode, setPassword (a captcha picture is no update). */
const UPDATES_PER_FLOW = 3;

async function runCeiling(rs: RunStack, o: Options, matchSeconds: number): Promise<ScenarioResult> {
  const { Worker, NativeConnection, Runtime, DefaultLogger } = await import('@temporalio/worker');
  const { Client: TClient, Connection } = await import('@temporalio/client');
  const { ceilingFlow, stepUpdate } = await import('./ceiling-workflow');
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    /* installed */
  }
  const address = rs.stack.env.TEMPORAL_ADDRESS;
  const taskQueue = `ceiling-${crypto.randomBytes(3).toString('hex')}`;
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowsPath: require.resolve('./ceiling-workflow'),
    bundlerOptions: { logger: quiet } as never,
  });
  const running = worker.run();
  const connection = await Connection.connect({ address });
  const client = new TClient({ connection, namespace: 'default' });
  const runId = crypto.randomBytes(3).toString('hex');
  const oneFlow = async (vu: number, i: number, rec: Recorder, tag: string) => {
    const t0 = performance.now();
    const handle = await client.workflow.start(ceilingFlow, { taskQueue, workflowId: `ceiling/${runId}/${tag}/${vu}/${i}`, args: [UPDATES_PER_FLOW] });
    rec.add('start', performance.now() - t0);
    for (let k = 0; k < UPDATES_PER_FLOW; k++) {
      const t = performance.now();
      await handle.executeUpdate(stepUpdate, { args: ['x'] });
      rec.add('update', performance.now() - t);
    }
    rec.add('flow', performance.now() - t0);
    rec.done();
  };
  try {
    if (o.warmup > 0) {
      const warm = new Recorder();
      await virtualUsers(o.users, { iterations: o.warmup }, (vu, i) => oneFlow(vu, i, warm, 'warm'));
    }
    // As long as the reset scenario ran (20 s to 2 min), or --duration: a ceiling measured over a few
    // seconds swings with whatever else the machine does at that moment.
    const durationMs = (o.duration !== undefined ? o.duration : Math.min(Math.max(matchSeconds, 20), 120)) * 1000;
    log(`ceiling: ${o.users} users for ${Math.round(durationMs / 1000)} s, ${UPDATES_PER_FLOW} updates per flow`);
    const rec = new Recorder();
    const mon = monitorFor(rs);
    const seconds = await virtualUsers(o.users, { iterations: 0, durationMs }, async (vu, i) => {
      try {
        await oneFlow(vu, i, rec, 'run');
      } catch (err) {
        rec.error('ceiling');
        if ((rec.errors.get('ceiling') ?? 0) <= 3) log(`ceiling flow failed: ${(err as Error).message}`);
      }
    });
    return summarize(rec, seconds, mon.stop(), ['start', 'update', 'flow']);
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await connection.close();
    await nativeConnection.close();
  }
}

const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

// ---------------------------------------------------------------------------------------------------------
// Parked flows and their expiry

interface ParkedResult {
  flows: number;
  parked: number;
  failed: number;
  flowTtlSeconds: number;
  seedSeconds: number;
  parkSeconds: number;
  parkPerSecond: number;
  stillParkedAfterStart: number;
  workerRssAfterParkMiB: number;
  /** With every flow waiting and the worker idle: just before the first deadline. */
  workerRssWaitingMiB: number;
  workerPeakRssMiB: number;
  workerRssBeforeMiB: number;
  expired: number;
  endedOtherwise: number;
  secondsFromLastDeadlineToAllExpired: number | null;
  secondsFromFirstDeadlineToAllExpired: number | null;
  /** Each flow's close time after its own deadline, in seconds. */
  lateSeconds: { p50: number; p99: number; max: number } | null;
  expiryTimeline: [number, number][];
  processes: Record<string, ProcStats>;
}

async function runParked(rs: RunStack, o: Options, ttlSeconds: number): Promise<ParkedResult> {
  const { Client: TClient, Connection } = await import('@temporalio/client');
  const { sampleGroup } = await import('./support/procstat');
  const connection = await Connection.connect({ address: rs.stack.env.TEMPORAL_ADDRESS });
  const tclient = new TClient({ connection, namespace: 'default' });
  const count = async (q: string) => (await tclient.workflow.count(q)).count;
  const runTag = crypto.randomBytes(3).toString('hex');
  let parkedApi: App | undefined;
  try {
    log(`parked: seeding ${o.parked} accounts (bulk)`);
    const s0 = Date.now();
    const accounts = await seedAccountsBulk(`parked-${runTag}`, o.parked, { phoneOffset: 20_000 });
    const seedSeconds = (Date.now() - s0) / 1000;
    log(`parked: seeded in ${seedSeconds.toFixed(1)} s; starting an API with FLOW_TTL=${ttlSeconds}s`);
    parkedApi = await startApp({ ...rs.appEnv, FLOW_TTL: `${ttlSeconds}s` }, { logDir: path.join(rs.logDir, 'parked'), worker: false });
    const api = new Client(parkedApi.urls.api!, 120_000);
    const workerRssBeforeMiB = sampleGroup(rs.app.worker?.pid).rssMiB;
    const mon = monitorFor(rs, { parkedApi: () => parkedApi?.api?.pid });
    let next = 0;
    let parked = 0;
    let failed = 0;
    let firstDeadline = Infinity;
    let lastDeadline = 0;
    const t0 = Date.now();
    let lastReport = t0;
    await Promise.all(
      Array.from({ length: Math.min(o.users, accounts.length) }, async () => {
        for (let i = next++; i < accounts.length; i = next++) {
          try {
            const start = await api.retrying('POST', '/v1/flows/password-reset', { identifier: accounts[i]!.phone }, { deadlineMs: 60_000 });
            expectStatus('start', start, 201, (b) => typeof b.flowSecret === 'string');
            const id = start.body.flowId as string;
            const headers = flowSecretHeader(start);
            const deadline = Date.parse(start.body.expiresAt);
            firstDeadline = Math.min(firstDeadline, deadline);
            lastDeadline = Math.max(lastDeadline, deadline);
            expectStatus('captcha_get', await api.retrying('GET', `/v1/flows/${id}/captcha`, undefined, { headers, deadlineMs: 180_000 }), 200);
            let retried = false;
            const answered = await api.retrying('POST', `/v1/flows/${id}/captcha`, { answer: 'test' }, { headers, deadlineMs: 180_000, onRetry: () => (retried = true) });
            if (!(answered.status === 200 && answered.body.step === 'code')) {
              // A retry whose first attempt landed is refused (409, or 422: that picture was already answered):
              // what counts is where the flow is.
              if (!retried) expectStatus('captcha_post', answered, 200, (b) => b.step === 'code');
              expectStatus(
                'captcha_post (read after a retry)',
                await api.retrying('GET', `/v1/flows/${id}`, undefined, { headers, deadlineMs: 60_000 }),
                200,
                (b) => b.step === 'code',
              );
            }
            parked += 1;
          } catch (err) {
            failed += 1;
            if (failed <= 3) log(`parking failed: ${(err as Error).message}`);
          }
          if (Date.now() - lastReport > 15_000) {
            lastReport = Date.now();
            log(`parked: ${parked}/${accounts.length} (${(parked / ((Date.now() - t0) / 1000)).toFixed(1)}/s)${failed ? `, ${failed} failed` : ''}`);
          }
        }
      }),
    );
    const parkSeconds = (Date.now() - t0) / 1000;
    const afterPark = sampleGroup(rs.app.worker?.pid);
    // this phase's flows only: the reset scenario's ended before it started
    const kindQ = `WorkflowType='passwordReset' AND StartTime >= '${new Date(t0 - 1000).toISOString()}'`;
    const stillParked = await count(`${kindQ} AND ExecutionStatus='Running' AND FlowStep='code'`).catch(() => -1);
    log(
      `parked: ${parked} flows parked in ${parkSeconds.toFixed(1)} s (${(parked / parkSeconds).toFixed(1)}/s); ${stillParked} waiting at code; worker RSS ${afterPark.rssMiB.toFixed(0)} MiB`,
    );
    if (Date.now() > firstDeadline) log(`parked: WARNING: the first flows reached their deadline before all were parked (use a longer --parked-ttl)`);

    // Wait for every parked flow to end `expired`.
    const expiredQ = `${kindQ} AND FlowStatus='expired' AND ExecutionStatus='Completed'`;
    const waitUntil = lastDeadline + Math.max(180_000, o.parked * 20);
    const timeline: [number, number][] = [];
    let expired = 0;
    let allExpiredAt: number | undefined;
    // The worker with every flow waiting and nothing else to do: sampled just before the first deadline (right after
    // parking, its heap still holds the garbage of the parking itself).
    if (firstDeadline - Date.now() > 3_000) await sleep(firstDeadline - Date.now() - 2_000);
    const waiting = sampleGroup(rs.app.worker?.pid);
    log(`parked: worker RSS ${waiting.rssMiB.toFixed(0)} MiB with all waiting, 2 s before the first deadline`);
    log(`parked: waiting for ${parked} flows to expire (last deadline in ${Math.max(0, (lastDeadline - Date.now()) / 1000).toFixed(0)} s)`);
    while (Date.now() < waitUntil) {
      expired = await count(expiredQ).catch(() => expired);
      if (Date.now() >= firstDeadline) timeline.push([(Date.now() - firstDeadline) / 1000, expired]);
      if (expired >= parked) {
        allExpiredAt = Date.now();
        break;
      }
      await sleep(Date.now() < firstDeadline ? Math.min(2000, firstDeadline - Date.now() + 50) : 1000);
    }
    const processes = mon.stop();
    // How late each flow ended after its own deadline (start + FLOW_TTL; the API fixes the deadline just before it starts the flow).
    const lateness: number[] = [];
    if (allExpiredAt) {
      for await (const wf of tclient.workflow.list({ query: expiredQ })) {
        if (wf.closeTime) lateness.push((wf.closeTime.getTime() - wf.startTime.getTime()) / 1000 - ttlSeconds);
      }
      lateness.sort((a, b) => a - b);
    }
    const endedOtherwise = await count(`${kindQ} AND ExecutionStatus!='Running' AND FlowStatus!='expired' AND FlowStatus!='completed'`).catch(() => -1);
    return {
      flows: accounts.length,
      parked,
      failed,
      flowTtlSeconds: ttlSeconds,
      seedSeconds,
      parkSeconds,
      parkPerSecond: parked / parkSeconds,
      stillParkedAfterStart: stillParked,
      workerRssBeforeMiB,
      workerRssAfterParkMiB: afterPark.rssMiB,
      workerRssWaitingMiB: waiting.rssMiB,
      workerPeakRssMiB: processes.worker?.peakRssMiB ?? 0,
      expired,
      endedOtherwise,
      secondsFromLastDeadlineToAllExpired: allExpiredAt ? (allExpiredAt - lastDeadline) / 1000 : null,
      secondsFromFirstDeadlineToAllExpired: allExpiredAt ? (allExpiredAt - firstDeadline) / 1000 : null,
      lateSeconds: lateness.length
        ? { p50: lateness[Math.floor(lateness.length / 2)]!, p99: lateness[Math.floor(lateness.length * 0.99)]!, max: lateness[lateness.length - 1]! }
        : null,
      expiryTimeline: timeline,
      processes,
    };
  } finally {
    await parkedApi?.stop();
    await connection.close();
  }
}

// ---------------------------------------------------------------------------------------------------------
// argon2

interface Argon2Result {
  params: { type: string; memoryKiB: number; iterations: number; parallelism: number };
  msPerHash: number;
  cpuMsPerHash: number;
  hashesPerFlow: number;
  shareOfFlowLatency: number | null;
  shareOfAppCpu: number | null;
}

async function measureArgon2(reset: ScenarioResult | undefined): Promise<Argon2Result> {
  const { argon2Params, hashSecret } = await import('../lib/passwords');
  const p = argon2Params();
  await hashSecret('warm up the allocator');
  const n = 20;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await hashSecret(`bench password ${i}`);
  const msPerHash = (performance.now() - t0) / n;
  // CPU time (the hashing threads included): unlike wall time, not inflated by other work on the machine
  const cpu = process.cpuUsage(c0);
  const cpuMsPerHash = (cpu.user + cpu.system) / 1000 / n;
  // POST /password hashes the new password; nothing else in a reset hashes (no comparison with the current one).
  const hashesPerFlow = 1;
  const flowMean = reset?.steps.flow?.mean;
  const appCpu = reset ? (reset.processes.api?.cpuSeconds ?? 0) + (reset.processes.worker?.cpuSeconds ?? 0) : 0;
  return {
    params: { type: 'argon2id', memoryKiB: p.memoryCost, iterations: p.timeCost, parallelism: p.parallelism },
    msPerHash,
    hashesPerFlow,
    shareOfFlowLatency: flowMean ? (hashesPerFlow * msPerHash) / flowMean : null,
    cpuMsPerHash,
    shareOfAppCpu: reset && appCpu > 0 ? (reset.completed * hashesPerFlow * cpuMsPerHash) / 1000 / appCpu : null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Output

function stepTable(r: ScenarioResult): string {
  const rows: (string | number)[][] = [['step', 'count', 'mean ms', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms']];
  for (const [name, s] of Object.entries(r.steps)) rows.push([name, s.count, fmt(s.mean), fmt(s.p50), fmt(s.p95), fmt(s.p99), fmt(s.max)]);
  return table(rows);
}

function procTable(p: Record<string, ProcStats>): string {
  const rows: (string | number)[][] = [['process', 'CPU s', 'CPU % of a core', 'peak RSS MiB', 'RSS MiB now']];
  for (const [name, s] of Object.entries(p)) rows.push([name, fmt(s.cpuSeconds), fmt(s.cpuPercent, 0), fmt(s.peakRssMiB, 0), fmt(s.rssMiB, 0)]);
  return table(rows);
}

function gitDescribe(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() ? '+changes' : '';
    return head + dirty;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv);
  const runStamp = new Date().toISOString().replace(/[:.]/g, '-');
  const profDir = path.join(o.out, `profiles-${runStamp}`);
  const dbTimingDir = path.join(o.out, `db-timing-${runStamp}`);
  const loadBefore = os.loadavg();
  const rs = await startRunStack({
    name: 'bench',
    appEnv: { LOG_LEVEL: o.logLevel, ...(o.dbTiming ? { BENCH_DB_TIMING_DIR: dbTimingDir } : {}), ...(o.cpuProf ? { BENCH_CPU_PROF_DIR: profDir } : {}) },
    nodeOptions: o.cpuProf || o.dbTiming ? `--require ${path.join(__dirname, 'support', 'preload.cjs')}` : undefined,
    log,
  });
  let ok = false;
  try {
    const { connectMongo, disconnectMongo } = await import('../db/mongo');
    await connectMongo();
    const out: Record<string, unknown> = {
      when: new Date().toISOString(),
      commit: gitDescribe(),
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      options: { ...o, out: undefined },
    };
    let reset: ScenarioResult | undefined;
    let ceiling: ScenarioResult | undefined;
    let parked: ParkedResult | undefined;

    if (o.scenarios.includes('reset')) {
      log(`seeding ${o.users} accounts`);
      const accounts = await seedAccounts(`bench-${crypto.randomBytes(3).toString('hex')}`, o.users);
      reset = await runReset(rs, o, accounts);
      out.reset = reset;
      log(`reset: ${reset.completed} flows in ${reset.seconds.toFixed(1)} s = ${reset.flowsPerSecond.toFixed(2)} flows/s`);
    }
    const argon = await measureArgon2(reset);
    out.argon2 = argon;
    if (o.scenarios.includes('ceiling')) {
      ceiling = await runCeiling(rs, o, reset?.seconds ?? 60);
      out.ceiling = ceiling;
      log(`ceiling: ${ceiling.completed} flows in ${ceiling.seconds.toFixed(1)} s = ${ceiling.flowsPerSecond.toFixed(2)} flows/s`);
    }
    if (o.scenarios.includes('parked') && o.parked > 0) {
      // Long enough that all are parked before the first one expires: the measured start rate, × 2, + 30 s.
      let ttl = o.parkedTtl;
      if (ttl === undefined) {
        const s = reset?.steps;
        // without a reset run to go by: 5 flows/s, about what a loaded 2-core machine parks
        const rate = s ? o.users / ((s.start!.p50 + s.captcha_get!.p50 + s.captcha_post!.p50) / 1000) : 5;
        ttl = Math.ceil((o.parked / rate) * 2 + 30);
      }
      parked = await runParked(rs, o, ttl);
      out.parked = parked;
    }
    const ratio = reset && ceiling && ceiling.flowsPerSecond > 0 ? reset.flowsPerSecond / ceiling.flowsPerSecond : null;
    out.ratioToEngineCeiling = ratio;

    // ---- print
    const lines: string[] = [''];
    lines.push(`account-recovery bench · ${out.when} · commit ${out.commit} · ${os.cpus().length} CPUs, node ${process.version}`);
    if (reset) {
      const errs = Object.entries(reset.errors)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ');
      lines.push(
        '',
        `RESET  ${o.users} users · ${reset.completed}/${reset.flows} flows completed in ${reset.seconds.toFixed(1)} s · ${reset.flowsPerSecond.toFixed(2)} flows/s · codes by ${o.channel}${reset.outboxPollsPerFlow ? ` (${reset.outboxPollsPerFlow.toFixed(1)} outbox reads per flow)` : ''}${errs ? ` · errors: ${errs}` : ''}`,
      );
      const pc = reset.passwordsChanged;
      if (pc)
        lines.push(
          `       passwords really changed: ${pc.signedIn}/${pc.users} users signed in with their last new password; the seed password ${pc.oldRefused ? 'was refused' : 'STILL WORKS'}`,
        );
      lines.push(stepTable(reset), '', procTable(reset.processes));
    }
    if (ceiling) {
      lines.push(
        '',
        `ENGINE CEILING  ${o.users} concurrent · ${ceiling.completed} flows (1 start + ${UPDATES_PER_FLOW} updates) in ${ceiling.seconds.toFixed(1)} s · ${ceiling.flowsPerSecond.toFixed(2)} flows/s`,
      );
      lines.push(stepTable(ceiling), '', procTable(ceiling.processes));
    }
    lines.push(
      '',
      `ARGON2  ${argon.params.type} m=${argon.params.memoryKiB} KiB t=${argon.params.iterations} p=${argon.params.parallelism}: ${argon.msPerHash.toFixed(1)} ms (${argon.cpuMsPerHash.toFixed(1)} ms CPU) per hash in-process; ${argon.hashesPerFlow} per flow` +
        (argon.shareOfFlowLatency !== null ? ` = ${(100 * argon.shareOfFlowLatency).toFixed(1)}% of a flow's mean latency` : '') +
        (argon.shareOfAppCpu !== null ? `, ${(100 * argon.shareOfAppCpu).toFixed(1)}% of API+worker CPU` : ''),
    );
    if (parked) {
      lines.push(
        '',
        `PARKED  ${parked.parked}/${parked.flows} flows parked at code in ${parked.parkSeconds.toFixed(1)} s (${parked.parkPerSecond.toFixed(1)}/s; accounts seeded in ${parked.seedSeconds.toFixed(1)} s), FLOW_TTL=${parked.flowTtlSeconds}s`,
        `        waiting at code right after: ${parked.stillParkedAfterStart} · worker RSS ${parked.workerRssBeforeMiB.toFixed(0)} MiB before → ${parked.workerRssAfterParkMiB.toFixed(0)} MiB as the last one parked → ${parked.workerRssWaitingMiB.toFixed(0)} MiB with all waiting (${(parked.workerRssWaitingMiB - parked.workerRssBeforeMiB).toFixed(0)} MiB above before; peak ${parked.workerPeakRssMiB.toFixed(0)} MiB)`,
        `        expired: ${parked.expired}/${parked.parked}` +
          (parked.secondsFromLastDeadlineToAllExpired !== null
            ? ` · all expired ${parked.secondsFromLastDeadlineToAllExpired.toFixed(1)} s after the last deadline (${parked.secondsFromFirstDeadlineToAllExpired!.toFixed(1)} s after the first)`
            : ' · NOT all expired in time') +
          ` · ended otherwise: ${parked.endedOtherwise}` +
          (parked.lateSeconds
            ? ` · each after its own deadline: p50 ${parked.lateSeconds.p50.toFixed(2)} s, p99 ${parked.lateSeconds.p99.toFixed(2)} s, max ${parked.lateSeconds.max.toFixed(2)} s`
            : ''),
        procTable(parked.processes),
      );
    }

    fs.mkdirSync(o.out, { recursive: true });
    const stamp = (out.when as string).replace(/[:.]/g, '-');
    const jsonFile = path.join(o.out, `bench-${stamp}.json`);
    const svgFile = path.join(o.out, `bench-${stamp}.svg`);
    fs.writeFileSync(jsonFile, JSON.stringify(out, null, 2));
    const chartSteps = reset ? Object.entries(reset.steps).map(([name, s]) => ({ name, ...s })) : [];
    if (ceiling) for (const [name, s] of Object.entries(ceiling.steps)) chartSteps.push({ name: `ceiling ${name}`, ...s });
    const series = [];
    if (reset) series.push({ name: `reset (${reset.flowsPerSecond.toFixed(1)}/s)`, points: reset.throughput });
    if (ceiling) series.push({ name: `engine ceiling (${ceiling.flowsPerSecond.toFixed(1)}/s)`, points: ceiling.throughput });
    fs.writeFileSync(svgFile, renderChart({ title: `account-recovery bench ${out.when} (${out.commit}), ${o.users} users`, steps: chartSteps, throughput: series }));
    fs.copyFileSync(jsonFile, path.join(o.out, 'latest.json'));
    fs.copyFileSync(svgFile, path.join(o.out, 'latest.svg'));
    lines.push('', `load average (1 min) before the run ${loadBefore[0]!.toFixed(2)}, at the end ${os.loadavg()[0]!.toFixed(2)} (other work on this machine skews the numbers)`);
    lines.push('', `results: ${path.relative(ROOT, jsonFile)}, ${path.relative(ROOT, svgFile)}${o.cpuProf ? `; CPU profiles: ${path.relative(ROOT, profDir)}` : ''}`);
    lines.push(`ratio to engine ceiling: ${ratio === null ? 'n/a' : ratio.toFixed(2)}`);
    await disconnectMongo();
    await rs.stop({ keep: o.keep });
    if (o.dbTiming) {
      const rows: (string | number)[][] = [['process', 'command collection', 'count', 'total ms', 'mean ms']];
      for (const f of fs.existsSync(dbTimingDir) ? fs.readdirSync(dbTimingDir) : []) {
        const stats = JSON.parse(fs.readFileSync(path.join(dbTimingDir, f), 'utf8')) as Record<string, { count: number; totalMs: number }>;
        for (const [k, v] of Object.entries(stats)
          .sort((a, b) => b[1].totalMs - a[1].totalMs)
          .slice(0, 12))
          rows.push([f.split('-')[0]!, k, v.count, fmt(v.totalMs, 0), fmt(v.totalMs / v.count)]);
      }
      const idx = lines.findIndex((l) => l.startsWith('load average'));
      lines.splice(idx, 0, 'MONGODB COMMANDS (API and worker, whole run)', table(rows), '');
    }
    if (o.cpuProf && fs.existsSync(profDir)) {
      const { summarize } = await import('./support/cpuprofile');
      const idx = lines.findIndex((l) => l.startsWith('load average'));
      const parts = fs
        .readdirSync(profDir)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => summarize(path.join(profDir, f), 12));
      lines.splice(idx, 0, 'CPU PROFILES (bench/support/cpuprofile.ts <file> for more)', ...parts, '');
    }
    process.stdout.write(lines.join('\n') + '\n');
    ok = true;
    return 0;
  } finally {
    if (!ok) await rs.stop({ keep: true });
  }
}

runMain('bench', main);
