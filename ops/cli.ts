/**
 * The ops CLI: `npm run ops -- <command>` or, installed, `recovery-ops <command>`.
 *
 *   flows stuck [--kind K] [--step S] [--older-than 1h] [--limit N]   running flows, oldest step first
 *   flows show <id>                                                    state, pending activities, last failures
 *   flows replay <id> | --query '<visibility query>' | --file F…      replay against the current code
 *                [--workflows path/to/workflows]                        (or another checkout's)
 *   flows reset <id> [--to last-task|first-task|event N] --reason R    reset through the Temporal API
 *   flows cancel <id> [--hard]                                         as the user's DELETE (or a Temporal cancel)
 *   cases list [--status pending|approved|rejected|expired]
 *   cases approve <caseId> [--reviewer NAME] [--note TEXT]
 *   cases reject <caseId> [--reviewer NAME] --note TEXT
 *
 * <id> is a flow id (rst_…), a support case id (case_…, its support-review workflow) or a workflow id.
 * Tables by default, `--json` for JSON. Exit status: 0 done, 1 the operation failed or found a problem
 * (a replay diverged, a case was already decided, no such flow), 2 bad usage or configuration.
 * Configuration is the service's own environment (lib/config.ts): TEMPORAL_*, MONGODB_URI,
 * PAYLOAD_ENCRYPTION_KEY (to decode payloads; outside production, the dev key under DATA_DIR).
 */
import './env';
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Runtime, DefaultLogger } from '@temporalio/worker';
import { parseDuration } from '../lib/duration';
import { closeTemporalClient, dataConverter, temporalClient } from '../lib/temporal';
import { connectMongo, disconnectMongo } from '../db/mongo';
import { CaseError, decideCase, listCases, listFlows } from './decisions';
import { OpsError, cancelFlow, describeFlow, parseResetPoint, resetFlow, resolveWorkflowId } from './flows';
import { bundleWorkflows, historyFromJson, replayHistories, type ReplayInput } from './replay';
import { table, ago, truncate } from './format';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

/** The operation ran and failed (or found a problem): exit 1 with this message. */
class Failed extends Error {
  constructor(
    message: string,
    /** What --json prints (unless `printed`: the command already printed its output). */
    readonly data?: unknown,
    readonly printed = false,
  ) {
    super(message);
  }
}

let jsonOutput = false;
let connected = { temporal: false, mongo: false };

async function client(): Promise<Client> {
  connected.temporal = true;
  return temporalClient();
}

async function mongo(): Promise<void> {
  connected.mongo = true;
  await connectMongo();
}

function print(data: unknown, human: () => string): void {
  process.stdout.write(jsonOutput ? JSON.stringify(data, null, 2) + '\n' : human());
}

const durationArg = (v: string) => {
  const ms = parseDuration(v);
  if (ms === undefined) throw new InvalidArgumentError('a duration such as 30m, 1h, 2d');
  return ms;
};
const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
};
const defaultReviewer = () => process.env.OPS_REVIEWER || os.userInfo().username;

function notFound(err: unknown, what: string): never {
  if (err instanceof WorkflowNotFoundError) throw new Failed(`no such workflow: ${what}`);
  throw err;
}

export function buildProgram(): Command {
  const program = new Command('recovery-ops')
    .description('Operate account-recovery flows and support cases')
    .option('--json', 'JSON output instead of tables')
    .showHelpAfterError()
    .exitOverride();
  program.hook('preAction', (_this, action) => {
    jsonOutput = !!action.optsWithGlobals().json;
  });

  const flows = program.command('flows').description('Recovery flows in Temporal');

  flows
    .command('stuck')
    .description("running flows, oldest step first; with --older-than only those whose step hasn't changed for that long")
    .addOption(new Option('--kind <kind>', 'flow kind').choices(['password_reset', 'sign_up', 'change_phone', 'change_email']))
    .option('--step <step>', 'current step, e.g. code')
    .option('--older-than <duration>', 'step unchanged for at least this long (e.g. 1h)', durationArg)
    .option('--limit <n>', 'at most this many (default 500)', positiveInt)
    .action(async (opts: { kind?: string; step?: string; olderThan?: number; limit?: number }) => {
      const rows = await listFlows(await client(), { kind: opts.kind as never, step: opts.step, stuckForMs: opts.olderThan, limit: opts.limit });
      print(rows, () =>
        rows.length === 0
          ? 'no running flows match\n'
          : table(rows, [
              { header: 'flow', value: (r) => r.flowId },
              { header: 'kind', value: (r) => r.kind },
              { header: 'step', value: (r) => r.step },
              { header: 'unchanged for', value: (r) => ago(r.stepSince) },
              { header: 'step since', value: (r) => r.stepSince },
              { header: 'started', value: (r) => r.startedAt },
            ]),
      );
    });

  flows
    .command('show <id>')
    .description('a flow: its state (query), pending activities with attempts and last failure')
    .action(async (id: string) => {
      const d = await describeFlow(await client(), id).catch((err) => notFound(err, id));
      print(d, () => {
        const lines = [
          `workflow    ${d.workflowId}  (${d.workflowType}, run ${d.runId})`,
          `execution   ${d.executionStatus}, started ${d.startedAt}${d.closedAt ? `, closed ${d.closedAt}` : ''}, ${d.historyLength} events, task queue ${d.taskQueue}`,
        ];
        if (d.searchAttributes.kind) {
          lines.push(
            `indexed     kind=${d.searchAttributes.kind} step=${d.searchAttributes.step} status=${d.searchAttributes.status} step since ${d.searchAttributes.stepSince} (${ago(d.searchAttributes.stepSince)})`,
          );
        }
        if (d.flow) {
          const { flowId: _f, kind: _k, ...rest } = d.flow;
          lines.push(
            `flow        ${Object.entries(rest)
              .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
              .join(' ')}`,
          );
        } else if (d.flowQueryError) lines.push(`flow        (query failed: ${d.flowQueryError})`);
        for (const c of d.pendingChildren) lines.push(`child       ${c.workflowId} (${c.workflowType})`);
        let text = lines.join('\n') + '\n';
        if (d.pendingActivities.length) {
          text +=
            '\npending activities\n' +
            table(d.pendingActivities, [
              { header: 'activity', value: (a) => a.activityType },
              { header: 'state', value: (a) => a.state },
              { header: 'attempt', value: (a) => `${a.attempt}${a.maximumAttempts ? `/${a.maximumAttempts}` : ''}` },
              { header: 'scheduled', value: (a) => a.scheduledAt },
              { header: 'next attempt', value: (a) => a.nextAttemptAt },
              { header: 'last failure', value: (a) => truncate(a.lastFailure?.message, 120) },
            ]);
        } else text += 'pending activities: none\n';
        return text;
      });
    });

  flows
    .command('replay [id]')
    .description('replay histories against the current workflow code (determinism check)')
    .option('--query <query>', 'every execution matching a visibility query, e.g. \'ExecutionStatus="Running"\'')
    .option('--file <files...>', 'history JSON files (test/histories/*.json or `temporal workflow show -o json`)')
    .option('--workflows <path>', 'the workflows module to replay against (default: this checkout)')
    .option('--limit <n>', 'with --query: at most this many (default 1000)', positiveInt)
    .action(async (id: string | undefined, opts: { query?: string; file?: string[]; workflows?: string; limit?: number }) => {
      const sources = [id !== undefined, opts.query !== undefined, opts.file !== undefined].filter(Boolean).length;
      if (sources !== 1) throw new CommanderError(EXIT_USAGE, 'ops.usage', 'flows replay: give exactly one of <id>, --query or --file');
      Runtime.install({ logger: new DefaultLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } } });
      let inputs: Iterable<ReplayInput> | AsyncIterable<ReplayInput>;
      if (opts.file) {
        inputs = opts.file.map((file) => {
          const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { workflowId?: string; history?: unknown; events?: unknown };
          const history = historyFromJson(json.history ?? json);
          return { workflowId: json.workflowId ?? path.basename(file, '.json'), history, source: file };
        });
      } else if (id !== undefined) {
        const workflowId = resolveWorkflowId(id);
        const history = await (
          await client()
        ).workflow
          .getHandle(workflowId)
          .fetchHistory()
          .catch((err) => notFound(err, workflowId));
        inputs = [{ workflowId, history }];
      } else {
        const c = await client();
        const limit = opts.limit ?? 1000;
        inputs = (async function* () {
          let n = 0;
          for await (const { workflowId, history } of c.workflow.list({ query: opts.query }).intoHistories()) {
            if (n++ >= limit) break;
            yield { workflowId, history: history! };
          }
        })();
      }
      const bundle = await bundleWorkflows(opts.workflows ?? require.resolve('../workflows'));
      const results = await replayHistories(inputs, { bundle, dataConverter: dataConverter() });
      const failed = results.filter((r) => !r.ok);
      const summary = { replayed: results.length, failed: failed.length, results };
      print(summary, () => {
        if (results.length === 0) return 'no histories matched\n';
        return (
          table(results, [
            { header: 'workflow', value: (r) => r.workflowId },
            { header: 'result', value: (r) => (r.ok ? 'ok' : r.errorKind === 'nondeterminism' ? 'NONDETERMINISM' : 'FAILED') },
            { header: 'diverges at', value: (r) => (r.divergesAt ? `event ${r.divergesAt.eventId} (${r.divergesAt.eventType})` : undefined) },
            { header: 'detail', value: (r) => truncate(r.summary ?? r.message, 160) },
          ]) + `\n${results.length} replayed, ${failed.length} failed\n`
        );
      });
      if (failed.length) throw new Failed('', summary, true);
    });

  flows
    .command('reset <id>')
    .description('reset the current run to a workflow task (the run is terminated, a new one carries on from there)')
    .option('--to <point...>', 'last-task (default), first-task, or "event N" (a WorkflowTaskCompleted event id)')
    .requiredOption('--reason <text>', 'why (recorded in the history)')
    .action(async (id: string, opts: { to?: string[]; reason: string }) => {
      const point = parseResetPoint(opts.to);
      const r = await resetFlow(await client(), id, point, opts.reason).catch((err) => notFound(err, id));
      print(r, () => `reset ${r.workflowId} to event ${r.resetToEventId} (${r.resetToEventType}): run ${r.previousRunId} terminated, new run ${r.runId}\n`);
    });

  flows
    .command('cancel <id>')
    .description('cancel a running flow as the user would (ends `cancelled`); --hard: a Temporal cancellation request')
    .option('--hard', 'request Temporal cancellation instead of the flow’s own cancel')
    .action(async (id: string, opts: { hard?: boolean }) => {
      const r = await cancelFlow(await client(), id, !!opts.hard).catch((err) => notFound(err, id));
      print(r, () =>
        r.flow ? `cancelled ${r.workflowId}: status ${r.flow.status}${r.flow.reason ? ` (${r.flow.reason})` : ''}\n` : `cancellation requested for ${r.workflowId}\n`,
      );
    });

  const cases = program.command('cases').description('Support cases (seed 001: account ID + IMEI, decided by a person)');

  cases
    .command('list')
    .description('support cases, oldest first')
    .addOption(new Option('--status <status>', 'only these').choices(['pending', 'approved', 'rejected', 'expired']))
    .action(async (opts: { status?: 'pending' }) => {
      await mongo();
      const rows = (await listCases(opts.status)) as Record<string, any>[];
      print(rows, () =>
        rows.length === 0
          ? 'no cases\n'
          : table(rows, [
              { header: 'case', value: (r) => r.caseId },
              { header: 'status', value: (r) => r.status },
              { header: 'account', value: (r) => `${r.accountId}${r.accountExists ? '' : ' (no such account)'}` },
              { header: 'imei', value: (r) => `…${r.imeiLast4}` },
              { header: 'device verified', value: (r) => (r.deviceVerified ? 'yes' : 'NO') },
              { header: 'contact', value: (r) => r.contactEmail },
              { header: 'opened', value: (r) => (r.createdAt instanceof Date ? r.createdAt.toISOString() : r.createdAt) },
              { header: 'decided by', value: (r) => (r.decision?.reviewer ? `${r.decision.reviewer}: ${truncate(r.decision.note, 60)}` : undefined) },
              { header: 'message', value: (r) => truncate(r.message, 60) },
            ]),
      );
    });

  for (const verdict of ['approve', 'reject'] as const) {
    const cmd = cases
      .command(`${verdict} <caseId>`)
      .description(verdict === 'approve' ? 'approve: a code goes to the case’s contact email' : 'reject: the flow ends rejected and the contact email is told the note')
      .option('--reviewer <name>', 'who decides (default $OPS_REVIEWER or your user name)');
    if (verdict === 'reject') cmd.requiredOption('--note <text>', 'why (sent to the user)');
    else cmd.option('--note <text>', 'why (kept on the case)', '');
    cmd.action(async (caseId: string, opts: { reviewer?: string; note: string }) => {
      await mongo();
      try {
        const c = await decideCase(await client(), caseId, verdict === 'approve', opts.reviewer || defaultReviewer(), opts.note);
        print(c, () => `${caseId}: ${(c as unknown as { status: string }).status} by ${opts.reviewer || defaultReviewer()}\n`);
      } catch (err) {
        if (err instanceof CaseError) throw new Failed(`${caseId}: ${err.code}${err.detail ? ` (${err.detail})` : ''}`, { caseId, error: err.code, detail: err.detail });
        throw err;
      }
    });
  }

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return EXIT_OK;
      if (err.code === 'ops.usage') process.stderr.write(`error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof Failed) {
      if (jsonOutput && !err.printed) process.stdout.write(JSON.stringify(err.data ?? { error: err.message }, null, 2) + '\n');
      if (err.message) process.stderr.write(`${err.message}\n`);
      return EXIT_FAILED;
    }
    if (err instanceof OpsError) {
      process.stderr.write(`${err.message}\n`);
      if (jsonOutput) process.stdout.write(JSON.stringify({ error: err.message }) + '\n');
      return EXIT_FAILED;
    }
    process.stderr.write(`recovery-ops: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILED;
  } finally {
    if (connected.temporal) await closeTemporalClient().catch(() => undefined);
    if (connected.mongo) await disconnectMongo().catch(() => undefined);
    connected = { temporal: false, mongo: false };
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`recovery-ops: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(EXIT_FAILED);
    },
  );
}
