/**
 * `npm run drills` (also a stage of `npm test`): failure drills. Each drill drives at least 100
 * forgot-password flows over HTTP, as real clients do (connection errors and 503 retried with backoff;
 * every start carries an Idempotency-Key and is retried with it), while it injects one fault:
 *
 *   worker-sigkill    the worker is SIGKILLed mid-load and started again
 *   ferretdb-restart  FerretDB is SIGKILLed mid-load and started again on the same data directory
 *   smtp-down-20s     maildev is stopped for 20 s and started again on the same port (delivery retries)
 *   temporal-restart  the Temporal dev server is SIGKILLed and started again on the same --db-filename
 *   api-sigkill       the API is SIGKILLed mid-request and started again; clients retry their starts
 *
 * Then it checks that every flow completed, that every issued code (the Code collection) reached the
 * SMTP server exactly once (maildev's REST API, GET /email: messages are matched to codes by their
 * Message-ID, which carries the code id), and that no start created a second flow (Temporal visibility).
 * Prints a table (drill, flows, completed, lost, duplicates, time) and exits non-zero on any loss or
 * duplicate. Bounded: every drill has a deadline; the whole set takes a few minutes.
 *
 *   npm run drills -- [--flows 100] [--concurrency 20] [--only worker-sigkill,api-sigkill] [--keep]
 */
import crypto from 'node:crypto';
import { Command } from 'commander';
import { startRunStack, type RunStack } from '../bench/support/stack';
import { Client, flowSecretHeader, sleep, TransportError, type Reply } from '../bench/support/http';
import { freshPassword, seedAccounts, type SeededAccount } from '../bench/support/seed';
import { table } from '../bench/support/stats';
import { reportCounts, runMain } from '../scripts/run-main';

const log = (msg: string) => process.stderr.write(`drills: ${msg}\n`);

interface Options {
  flows: number;
  concurrency: number;
  only?: string[];
  keep: boolean;
}

/** What the clients saw, for the table and the checks. */
class Tally {
  retries = 0;
  serverErrors = 0;
  stepMismatchRecovered = 0;
  /** Retried requests refused because their first attempt had landed (then the flow was read). */
  refusedRetries = 0;
  readonly errors: string[] = [];
}

interface FlowRecord {
  key: string;
  identifier: string;
  /** Every flow id an answer to this start (or a retry of it) named. */
  flowIds: Set<string>;
  /** The Flow-Secret header of each of those flows (API v1.1: needed on every later request of a flow). */
  secrets: Map<string, Record<string, string>>;
  status?: string;
  error?: string;
}

/** How long a client keeps at one flow: generous, so a machine loaded by other work does not pass for a loss. */
const FLOW_DEADLINE_MS = 240_000;

/**
 * One forgot-password flow, as a careful client drives it: retries transport errors and 503 with
 * backoff; a start is retried with the same Idempotency-Key; when a retried step answers 409 (the first
 * attempt did land) it reads the flow and carries on from the step it is at.
 */
async function driveFlow(api: Client, rec: FlowRecord, tally: Tally): Promise<void> {
  const deadline = Date.now() + FLOW_DEADLINE_MS;
  const remaining = () => Math.max(1000, deadline - Date.now());
  const onRetry = () => {
    tally.retries += 1;
  };
  const call = async (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply & { retried: boolean }> => {
    let retried = false;
    const r = await api.retrying(method, path, body, {
      headers,
      deadlineMs: remaining(),
      onRetry: () => {
        retried = true;
        onRetry();
      },
    });
    if (r.status >= 500) tally.serverErrors += 1;
    return { ...r, retried };
  };
  const start = await call('POST', '/v1/flows/password-reset', { identifier: rec.identifier }, { 'idempotency-key': rec.key });
  if (start.status !== 201) throw new Error(`start: ${start.status} ${JSON.stringify(start.body)}`);
  let flow = start.body as { flowId: string; status: string; step: string };
  rec.flowIds.add(flow.flowId);
  const id = flow.flowId;
  const secret = flowSecretHeader(start);
  rec.secrets.set(id, secret);
  const refresh = async () => {
    const r = await call('GET', `/v1/flows/${id}`, undefined, secret);
    if (r.status !== 200) throw new Error(`GET flow: ${r.status} ${JSON.stringify(r.body)}`);
    tally.stepMismatchRecovered += 1;
    return r.body;
  };
  let passwordWaits = 0;
  while (flow.status === 'active') {
    if (Date.now() > deadline) throw new Error(`flow ${id} still at ${flow.step} at the deadline`);
    if (flow.step === 'captcha') {
      const img = await call('GET', `/v1/flows/${id}/captcha`, undefined, secret);
      if (img.status === 409) {
        flow = await refresh();
        continue;
      }
      if (img.status !== 200) throw new Error(`captcha_get: ${img.status}`);
      const r = await call('POST', `/v1/flows/${id}/captcha`, { answer: 'test' }, secret);
      if (r.status === 200) flow = r.body;
      else if (r.status === 409 || r.status === 422)
        flow = await refresh(); // landed before, or the picture was replaced by a retry
      else throw new Error(`captcha_post: ${r.status} ${JSON.stringify(r.body)}`);
    } else if (flow.step === 'code') {
      const code = await readCode(api, rec.identifier, id, deadline, onRetry);
      const r = await call('POST', `/v1/flows/${id}/code`, { code }, secret);
      if (r.status === 200) flow = r.body;
      else if (r.status === 409) flow = await refresh();
      else throw new Error(`code_post: ${r.status} ${JSON.stringify(r.body)}`);
    } else if (flow.step === 'new_password') {
      const password = freshPassword();
      const r = await call('POST', `/v1/flows/${id}/password`, { password, confirmation: password }, secret);
      if (r.status === 200) flow = r.body;
      else if (r.status === 409) {
        // API v1.1: a password is already being processed (e.g. the first attempt of a retried request):
        // give it time instead of asking again at once.
        flow = await refresh();
        if (flow.status === 'active' && flow.step === 'new_password') await sleep(Math.min(2000, 250 * ++passwordWaits));
      }
      // A retry of a request whose first attempt landed but whose answer was lost may be refused (422).
      // Read the flow to see where it stands.
      else if (r.retried && r.status === 422) {
        tally.refusedRetries += 1;
        flow = await refresh();
        if (flow.status === 'active' && flow.step === 'new_password') throw new Error(`password_post after a retry: ${r.status} ${JSON.stringify(r.body)}`);
      } else throw new Error(`password_post: ${r.status} ${JSON.stringify(r.body)}`);
    } else {
      throw new Error(`unexpected step ${flow.step}`);
    }
  }
  rec.status = flow.status;
}

async function readCode(api: Client, to: string, flowId: string, deadline: number, onRetry: () => void): Promise<string> {
  let delay = 50;
  for (;;) {
    try {
      const r = await api.call<{ text: string; flowId?: string }[]>('GET', `/v1/dev/outbox?to=${encodeURIComponent(to)}`);
      if (r.status === 200) {
        const hit = r.body.find((m) => m.flowId === flowId && /verification code is (\d{6})/.test(m.text));
        if (hit) return /verification code is (\d{6})/.exec(hit.text)![1]!;
      } else onRetry();
    } catch (err) {
      if (!(err instanceof TransportError)) throw err;
      onRetry();
    }
    if (Date.now() > deadline) throw new Error(`no code for ${flowId} before the deadline`);
    await sleep(delay);
    delay = Math.min(delay * 2, 500);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Checks

interface MaildevMail {
  messageId?: string;
  text?: string;
  headers?: Record<string, string>;
}

/**
 * Message count per code id in maildev (GET /email), read once the count is stable. Only whole messages count: when
 * maildev is stopped mid-DATA it still files what it got (the headers, no body), a message no SMTP server accepted
 * (no final dot, no 250) and the sender rightly sends again.
 */
async function maildevCodeCounts(maildevUrl: string): Promise<Map<string, number>> {
  let last = -1;
  let mails: MaildevMail[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${maildevUrl}/email`, { signal: AbortSignal.timeout(10_000) });
    mails = (await res.json()) as MaildevMail[];
    if (mails.length === last) break;
    last = mails.length;
    await sleep(500);
  }
  const counts = new Map<string, number>();
  for (const m of mails) {
    const id = /code\.([0-9a-f-]{36})@account-recovery/.exec(`${m.messageId ?? ''} ${m.headers?.['message-id'] ?? ''}`)?.[1];
    if (id && /verification code is \d{6}/.test(m.text ?? '')) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

interface DrillResult {
  drill: string;
  flows: number;
  completed: number;
  lost: number;
  duplicates: number;
  seconds: number;
  notes: string[];
}

async function checkDrill(rs: RunStack, name: string, records: FlowRecord[], startedAt: number, seconds: number, tally: Tally): Promise<DrillResult> {
  const { Code, Delivery } = await import('../db/models');
  const { Client: TClient, Connection } = await import('@temporalio/client');
  const notes: string[] = [];
  const flowIds = [...new Set(records.flatMap((r) => [...r.flowIds]))];
  const completed = records.filter((r) => r.status === 'completed').length;
  let lost = records.length - completed;
  let duplicates = 0;

  // One flow per start, however often it was retried.
  const splitStarts = records.filter((r) => r.flowIds.size > 1).length;
  if (splitStarts) notes.push(`${splitStarts} start(s) answered with different flow ids`);
  duplicates += splitStarts;
  const connection = await Connection.connect({ address: rs.stack.env.TEMPORAL_ADDRESS });
  try {
    const tclient = new TClient({ connection, namespace: 'default' });
    const runs = (await tclient.workflow.count(`WorkflowType='passwordReset' AND StartTime >= '${new Date(startedAt - 1000).toISOString()}'`)).count;
    if (runs !== flowIds.length) {
      notes.push(`${runs} workflow runs for ${flowIds.length} flows`);
      duplicates += Math.max(0, runs - flowIds.length);
    }
  } finally {
    await connection.close();
  }

  // Every code a flow took delivered exactly once. A flow takes a code when it starts its delivery (the delivery's
  // record is claimed before anything is sent). The API draws a reset's first code before it tells the flow the
  // captcha is passed: when the API is killed in between, that code is never the flow's (the client answers a new
  // picture, whose code is), and nothing can match it. Such codes are counted, not lost.
  const codes = await Code.find({ flowId: { $in: flowIds } }, { _id: 1, flowId: 1, hmac: 1 }).lean();
  const taken = new Set((await Delivery.find({ _id: { $in: codes.map((c) => `code:${c._id}`) } }, { _id: 1 }).lean()).map((d) => String(d._id).slice('code:'.length)));
  const counts = await maildevCodeCounts(rs.stack.env.MAILDEV_URL!);
  let missing = 0;
  let twice = 0;
  let untaken = 0;
  for (const c of codes) {
    const n = counts.get(String(c._id)) ?? 0;
    if (n === 0 && !taken.has(String(c._id))) untaken += 1;
    else if (n === 0) missing += 1;
    if (n > 1) twice += n - 1;
  }
  if (untaken) notes.push(`${untaken} code(s) drawn for a captcha answer no flow took (the API was killed before the flow took it): never sent, never matchable`);
  if (missing) notes.push(`${missing} issued code(s) never reached SMTP`);
  if (twice) notes.push(`${twice} duplicate code message(s)`);
  if (codes.length < flowIds.length) notes.push(`only ${codes.length} codes issued for ${flowIds.length} flows`);
  lost += missing;
  duplicates += twice;
  const failures = records.filter((r) => r.error);
  if (failures.length) {
    notes.push(`client errors: ${[...new Set(failures.map((r) => r.error!.slice(0, 120)))].slice(0, 3).join(' | ')}`);
    // Where those flows stand on the server: a flow the client gave up on is not necessarily a lost one.
    const api = new Client(rs.apiUrl, 10_000);
    for (const r of failures.slice(0, 5)) {
      for (const id of r.flowIds) {
        const g = await api.call('GET', `/v1/flows/${id}`, undefined, r.secrets.get(id)).catch((err: Error) => ({ status: 0, body: err.message }));
        notes.push(`  ${id}: server says ${g.status} ${g.status === 200 ? `${g.body.status} at ${g.body.step}` : JSON.stringify(g.body).slice(0, 100)}`);
      }
    }
  }
  notes.push(
    `${codes.length} codes issued; clients: ${tally.retries} retries, ${tally.serverErrors} answers ≥ 500, ${tally.stepMismatchRecovered} re-reads of the flow after a 409 or a refused retry (${tally.refusedRetries} refused retries)`,
  );
  return { drill: name, flows: records.length, completed, lost, duplicates, seconds, notes };
}

// ---------------------------------------------------------------------------------------------------------
// Drills

interface Drill {
  name: string;
  /** Injects the fault; resolves when the system was brought back. */
  fault(rs: RunStack): Promise<string>;
}

const timed = async (what: () => Promise<void>) => {
  const t = Date.now();
  await what();
  return ((Date.now() - t) / 1000).toFixed(1);
};

const DRILLS: Drill[] = [
  {
    name: 'worker-sigkill',
    fault: async (rs) => {
      await rs.app.worker!.kill('SIGKILL');
      await sleep(1000);
      const s = await timed(() => rs.app.worker!.start());
      return `worker SIGKILLed, back after 1 s + ${s} s start`;
    },
  },
  {
    name: 'ferretdb-restart',
    fault: async (rs) => {
      await rs.stack.services.mongo!.kill('SIGKILL');
      await sleep(3000);
      const s = await timed(() => rs.stack.services.mongo!.start());
      return `FerretDB SIGKILLed, down 3 s, back after ${s} s start`;
    },
  },
  {
    name: 'smtp-down-20s',
    fault: async (rs) => {
      await rs.stack.services.smtp!.stop();
      await sleep(20_000);
      const s = await timed(() => rs.stack.services.smtp!.start());
      return `maildev stopped for 20 s, back on the same port after ${s} s`;
    },
  },
  {
    name: 'temporal-restart',
    fault: async (rs) => {
      await rs.stack.services.temporal!.kill('SIGKILL');
      await sleep(2000);
      const s = await timed(() => rs.stack.services.temporal!.start());
      return `Temporal SIGKILLed, down 2 s, back on its database after ${s} s`;
    },
  },
  {
    name: 'api-sigkill',
    fault: async (rs) => {
      await rs.app.api!.kill('SIGKILL');
      await sleep(500);
      const s = await timed(() => rs.app.api!.start());
      return `API SIGKILLed mid-request, back after 0.5 s + ${s} s start`;
    },
  },
];

async function runDrill(rs: RunStack, drill: Drill, accounts: SeededAccount[], o: Options): Promise<DrillResult> {
  const api = new Client(rs.apiUrl, 60_000);
  const tally = new Tally();
  const records: FlowRecord[] = accounts.map((a) => ({
    key: `drill-${drill.name}-${crypto.randomBytes(8).toString('hex')}`,
    identifier: a.email,
    flowIds: new Set(),
    secrets: new Map(),
  }));
  const t0 = Date.now();
  let done = 0;
  let next = 0;
  let faultNote = '';
  // The fault goes in once a tenth of the flows completed (or after 10 s): the rest are at every step then.
  const trigger = Math.max(5, Math.floor(records.length / 10));
  let faultStarted: Promise<void> | undefined;
  const injectFault = () => {
    faultStarted ??= drill.fault(rs).then(
      (note) => {
        faultNote = note;
        log(`${drill.name}: ${note}`);
      },
      (err: unknown) => {
        faultNote = `fault injection failed: ${(err as Error).message.split('\n')[0]}`;
        log(`${drill.name}: ${faultNote}`);
      },
    );
  };
  // Starts are spread out (one every 40 ms at most) so flows are at every step at any moment.
  const clients = Array.from({ length: Math.min(o.concurrency, records.length) }, async (_, c) => {
    await sleep(c * 40);
    for (let i = next++; i < records.length; i = next++) {
      const rec = records[i]!;
      try {
        await driveFlow(api, rec, tally);
      } catch (err) {
        rec.error = (err as Error).message;
      }
      done += 1;
      if (done === trigger) injectFault();
    }
  });
  const failsafe = setTimeout(injectFault, 10_000);
  const progress = setInterval(() => log(`${drill.name}: ${done}/${records.length} flows done after ${((Date.now() - t0) / 1000).toFixed(0)} s`), 15_000);
  await Promise.all(clients);
  clearTimeout(failsafe);
  clearInterval(progress);
  injectFault();
  await faultStarted;
  const seconds = (Date.now() - t0) / 1000;
  const result = await checkDrill(rs, drill.name, records, t0, seconds, tally);
  result.notes.unshift(faultNote);
  if (drill.name === 'api-sigkill') result.notes.push(...(await retryAfterEnd(api, records)));
  return result;
}

/** A start retried long after its flow ended still answers with that same flow (and its same secret), and starts nothing. */
async function retryAfterEnd(api: Client, records: FlowRecord[]): Promise<string[]> {
  const sample = records.filter((r) => r.status === 'completed').slice(0, 5);
  let same = 0;
  for (const rec of sample) {
    const r = await api.retrying('POST', '/v1/flows/password-reset', { identifier: rec.identifier }, { headers: { 'idempotency-key': rec.key }, deadlineMs: 30_000 });
    const sameSecret = r.status === 201 && rec.secrets.get(r.body.flowId)?.['flow-secret'] === r.body.flowSecret;
    if (r.status === 201 && rec.flowIds.has(r.body.flowId) && r.body.status === 'completed' && sameSecret) same += 1;
    else rec.error = `start retried after the flow completed answered ${r.status} ${JSON.stringify(r.body).slice(0, 160)}`;
  }
  return [`${same}/${sample.length} starts retried after completion answered the same, completed flow with the same flow secret`];
}

function parseArgs(argv: string[]): Options {
  const o = new Command()
    .name('drills')
    .option('--flows <n>', 'flows per drill (at least 100 for a real run)', '100')
    .option('--concurrency <n>', 'concurrent clients', '25')
    .option('--only <list>', `comma-separated, run in this order: ${DRILLS.map((d) => d.name).join(', ')}`)
    .option('--keep', 'keep the temp dir (data and logs)')
    .parse(argv)
    .opts();
  return {
    flows: Math.max(1, Number(o.flows) || 100),
    concurrency: Math.max(1, Number(o.concurrency) || 25),
    only: o.only
      ? String(o.only)
          .split(',')
          .map((s: string) => s.trim())
      : undefined,
    keep: !!o.keep,
  };
}

async function main(): Promise<number> {
  const o = parseArgs(process.argv);
  // --only also sets the order
  const unknown = (o.only ?? []).filter((n) => !DRILLS.some((d) => d.name === n));
  if (unknown.length) throw new Error(`no such drill: ${unknown.join(', ')} (there are ${DRILLS.map((d) => d.name).join(', ')})`);
  const drills = o.only ? o.only.map((n) => DRILLS.find((d) => d.name === n)!) : DRILLS;
  const t0 = Date.now();
  const rs = await startRunStack({
    name: 'drills',
    appEnv: {
      // Cheap hashing: the drills are about durability, not password cost.
      ARGON2_MEMORY_KIB: '8192',
      ARGON2_ITERATIONS: '1',
      LOG_LEVEL: 'warn',
      RESET_CODE_TTL: '10m',
      FLOW_TTL: '15m',
    },
    log,
  });
  let keep = o.keep;
  try {
    const { connectMongo, disconnectMongo } = await import('../db/mongo');
    await connectMongo();
    const results: DrillResult[] = [];
    for (const drill of drills) {
      const accounts = await seedAccounts(`drill-${drill.name}-${crypto.randomBytes(2).toString('hex')}`, o.flows, { phoneOffset: 1000 * (results.length + 1) });
      log(`${drill.name}: ${o.flows} flows, ${o.concurrency} clients`);
      const r = await runDrill(rs, drill, accounts, o);
      results.push(r);
      log(`${drill.name}: ${r.completed}/${r.flows} completed, ${r.lost} lost, ${r.duplicates} duplicates in ${r.seconds.toFixed(1)} s`);
    }
    await disconnectMongo();
    const failed = results.filter((r) => r.lost > 0 || r.duplicates > 0 || r.completed < r.flows);
    const out = [
      '',
      table([
        ['drill', 'flows', 'completed', 'lost', 'duplicates', 'time'],
        ...results.map((r) => [r.drill, r.flows, r.completed, r.lost, r.duplicates, `${r.seconds.toFixed(1)} s`]),
      ]),
      '',
      ...results.flatMap((r) => [`${r.drill}:`, ...r.notes.filter(Boolean).map((n) => `  ${n}`)]),
      '',
      `all drills took ${((Date.now() - t0) / 1000).toFixed(0)} s, stack start included`,
      `drills: ${results.length - failed.length} passed, ${failed.length} failed`,
    ];
    process.stdout.write(out.join('\n') + '\n');
    reportCounts('drills', {
      passed: results.length - failed.length,
      failed: failed.length,
      failures: failed.map(
        (r) =>
          `${r.drill}: ${r.completed}/${r.flows} completed, ${r.lost} lost, ${r.duplicates} duplicated; ${r.notes.filter(Boolean).join('; ').slice(0, 400)} (stack logs: ${rs.dataDir}/logs)`,
      ),
    });
    if (failed.length) keep = true;
    return failed.length ? 1 : 0;
  } catch (err) {
    keep = true;
    throw err;
  } finally {
    await rs.stop({ keep });
  }
}

runMain('drills', main);
