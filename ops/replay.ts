/**
 * Replaying recorded histories against workflow code: the determinism check behind `flows replay`
 * and test/replay.test.ts. A replay runs the code over the history's events without a server; the
 * SDK reports a nondeterminism error when the code issues a command the history does not have.
 */
import path from 'node:path';
import { bundleWorkflowCode, Worker, type WorkflowBundle } from '@temporalio/worker';
import type { History } from '@temporalio/common/lib/proto-utils';
import type { DataConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

const ROOT = path.resolve(__dirname, '..');
const EventType = temporal.api.enums.v1.EventType;

const quietLogger = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/**
 * Bundles the workflows at `workflowsPath` (default: this checkout's workflows/index.ts). A path
 * outside the project (a candidate release, a test's modified copy) still resolves its packages from
 * this project's node_modules.
 */
export async function bundleWorkflows(workflowsPath = require.resolve('../workflows')): Promise<WorkflowBundle> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.resolve(workflowsPath),
    logger: quietLogger as never,
    webpackConfigHook: (config) => ({
      ...config,
      resolve: { ...config.resolve, modules: [...(config.resolve?.modules ?? ['node_modules']), path.join(ROOT, 'node_modules')] },
    }),
  });
  return { code };
}

export interface ReplayInput {
  workflowId: string;
  history: History;
  /** Where it came from (a file, a run id): for the report. */
  source?: string;
}

export interface ReplayOutcome {
  workflowId: string;
  runId?: string;
  source?: string;
  ok: boolean;
  /** 'nondeterminism': the code no longer matches the history; 'failure': the replay itself failed. */
  errorKind?: 'nondeterminism' | 'failure';
  message?: string;
  /** The core of `message`: "[TMPRL1100] Nondeterminism error: …". */
  summary?: string;
  /** The first event the code disagrees with (event id and type), when it can be told. */
  divergesAt?: { eventId: number; eventType: string };
}

const eventTypeName = (t: unknown) => (typeof t === 'number' ? (EventType[t] ?? String(t)) : String(t)).replace(/^EVENT_TYPE_/, '');

/** Replays every history against `bundle`, one by one; never throws for a bad history (see `ok`). */
export async function replayHistories(
  inputs: Iterable<ReplayInput> | AsyncIterable<ReplayInput>,
  opts: { bundle: WorkflowBundle; dataConverter?: DataConverter },
): Promise<ReplayOutcome[]> {
  // one result per history, in order (two runs of one workflow share its id)
  const pending: ReplayInput[] = [];
  async function* feed() {
    for await (const input of inputs) {
      pending.push(input);
      yield { workflowId: input.workflowId, history: input.history };
    }
  }
  const outcomes: ReplayOutcome[] = [];
  for await (const r of Worker.runReplayHistories({ workflowBundle: opts.bundle, dataConverter: opts.dataConverter, replayName: 'ops-replay' }, feed())) {
    const input = pending.shift()!;
    const outcome: ReplayOutcome = { workflowId: r.workflowId, runId: r.runId, source: input.source, ok: !r.error };
    if (r.error) {
      outcome.errorKind = r.error.name === 'DeterminismViolationError' ? 'nondeterminism' : 'failure';
      outcome.message = r.error.message;
      outcome.summary = /message: "((?:[^"\\]|\\.)*)"/.exec(r.error.message)?.[1] ?? r.error.message;
      outcome.divergesAt = outcome.errorKind === 'nondeterminism' ? (eventNamedIn(r.error.message, input.history) ?? (await findDivergence(input, opts))) : undefined;
    }
    outcomes.push(outcome);
  }
  return outcomes;
}

/** Core's nondeterminism messages usually name the event: "… HistoryEvent(id: 5, UpsertWorkflowSearchAttributes)". */
function eventNamedIn(message: string, history: History): { eventId: number; eventType: string } | undefined {
  const m = /HistoryEvent\(id: (\d+)/.exec(message);
  if (!m) return undefined;
  const eventId = Number(m[1]);
  const event = (history.events ?? []).find((e) => Number(e.eventId) === eventId);
  return event ? { eventId, eventType: eventTypeName(event.eventType) } : undefined;
}

/**
 * The event where code and history part ways. The SDK's message names it only sometimes, so this
 * replays growing prefixes of the history, each cut after a completed workflow task: the first prefix
 * that fails holds the divergence in the commands of its last task, i.e. at the first event after that
 * task's WorkflowTaskCompleted that is a command's event.
 */
export async function findDivergence(
  input: ReplayInput,
  opts: { bundle: WorkflowBundle; dataConverter?: DataConverter },
): Promise<{ eventId: number; eventType: string } | undefined> {
  const events = input.history.events ?? [];
  const completed = events.map((e, i) => (eventTypeName(e.eventType) === 'WORKFLOW_TASK_COMPLETED' ? i : -1)).filter((i) => i >= 0);
  const failsWith = async (endIndex: number) => {
    // a prefix ends just before the next task's events: at the next WorkflowTaskScheduled (or the end)
    const next = events.findIndex((e, i) => i > endIndex && eventTypeName(e.eventType) === 'WORKFLOW_TASK_SCHEDULED');
    const prefix = { events: events.slice(0, next < 0 ? events.length : next) };
    try {
      await Worker.runReplayHistory({ workflowBundle: opts.bundle, dataConverter: opts.dataConverter, replayName: 'ops-replay-bisect' }, prefix, input.workflowId);
      return false;
    } catch (err) {
      return (err as Error).name === 'DeterminismViolationError';
    }
  };
  // binary search for the first failing prefix (prefixes fail monotonically: a diverged task stays diverged)
  let lo = 0;
  let hi = completed.length - 1;
  let first = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (await failsWith(completed[mid]!)) {
      first = mid;
      hi = mid - 1;
    } else lo = mid + 1;
  }
  if (first < 0) return undefined;
  const taskCompleted = completed[first]!;
  const event = events.slice(taskCompleted + 1).find((e) => !/^WORKFLOW_TASK_/.test(eventTypeName(e.eventType))) ?? events[taskCompleted]!;
  return { eventId: Number(event.eventId), eventType: eventTypeName(event.eventType) };
}

export { historyFromJson, historyToJson } from './history-json';
