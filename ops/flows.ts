/** One flow, seen and handled by an operator: what it is doing, reset it, cancel it. */
import crypto from 'node:crypto';
import { WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, type Client } from '@temporalio/client';
import { decodeOptionalFailureToOptionalError } from '@temporalio/common/lib/internal-non-workflow';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import type { History } from '@temporalio/common/lib/proto-utils';
import { cancelUpdate, flowQuery, kindOfFlowId, workflowIdOf, FLOW_KIND, FLOW_STATUS, FLOW_STEP, FLOW_STEP_SINCE, type Flow, type FlowResult } from '../workflows/messages';
import { reviewWorkflowId } from './decisions';

const EventType = temporal.api.enums.v1.EventType;
const PendingActivityState = temporal.api.enums.v1.PendingActivityState;

export class OpsError extends Error {}

/** A flow id (rst_…), a case id (case_…) or a workflow id (password-reset/rst_…) → the workflow id. */
export function resolveWorkflowId(id: string): string {
  if (id.includes('/')) return id;
  if (kindOfFlowId(id)) return workflowIdOf(id)!;
  if (/^case_[A-Za-z0-9_-]+$/.test(id)) return reviewWorkflowId(id);
  throw new OpsError(`"${id}" is neither a flow id (rst_…, sgn_…, chp_…, che_…), a case id (case_…) nor a workflow id (kind/id)`);
}

const iso = (d: Date | undefined | null) => (d ? d.toISOString() : undefined);

export interface PendingActivity {
  activityId: string;
  activityType?: string;
  state: string;
  attempt: number;
  /** 0: unlimited (until the schedule-to-close timeout). */
  maximumAttempts: number;
  scheduledAt?: string;
  lastStartedAt?: string;
  lastAttemptCompletedAt?: string;
  nextAttemptAt?: string;
  expiresAt?: string;
  lastFailure?: { message: string; type?: string };
  lastWorkerIdentity?: string;
}

export interface FlowDetails {
  workflowId: string;
  runId: string;
  workflowType: string;
  executionStatus: string;
  taskQueue: string;
  startedAt: string;
  closedAt?: string;
  historyLength: number;
  searchAttributes: { kind?: string; step?: string; status?: string; stepSince?: string };
  /** The Flow as the API shows it (the `flow` query); absent for workflows without it (support-review). */
  flow?: Flow;
  flowQueryError?: string;
  pendingActivities: PendingActivity[];
  pendingChildren: { workflowId: string; workflowType: string }[];
}

async function failureSummary(client: Client, failure: temporal.api.failure.v1.IFailure | null | undefined) {
  if (!failure) return undefined;
  // A failure may carry its message encoded (and encrypted) in encodedAttributes: decode it like the SDK does.
  const err = await decodeOptionalFailureToOptionalError(client.options.loadedDataConverter, failure as never).catch(() => undefined);
  const message = err?.message || failure.message || '';
  return { message, type: failure.applicationFailureInfo?.type || undefined };
}

export async function describeFlow(client: Client, id: string): Promise<FlowDetails> {
  const workflowId = resolveWorkflowId(id);
  const handle = client.workflow.getHandle(workflowId);
  const desc = await handle.describe();
  const sa = desc.typedSearchAttributes;
  const details: FlowDetails = {
    workflowId,
    runId: desc.runId,
    workflowType: desc.type,
    executionStatus: desc.status.name,
    taskQueue: desc.taskQueue,
    startedAt: desc.startTime.toISOString(),
    closedAt: iso(desc.closeTime),
    historyLength: desc.historyLength,
    searchAttributes: { kind: sa.get(FLOW_KIND), step: sa.get(FLOW_STEP), status: sa.get(FLOW_STATUS), stepSince: iso(sa.get(FLOW_STEP_SINCE)) },
    pendingActivities: [],
    pendingChildren: (desc.raw.pendingChildren ?? []).map((c) => ({ workflowId: c.workflowId ?? '', workflowType: c.workflowTypeName ?? '' })),
  };
  for (const a of desc.raw.pendingActivities ?? []) {
    details.pendingActivities.push({
      activityId: a.activityId ?? '',
      activityType: a.activityType?.name ?? undefined,
      state: (PendingActivityState[a.state ?? 0] ?? String(a.state)).replace(/^PENDING_ACTIVITY_STATE_/, ''),
      attempt: a.attempt ?? 0,
      maximumAttempts: a.maximumAttempts ?? 0,
      scheduledAt: iso(optionalTsToDate(a.scheduledTime)),
      lastStartedAt: iso(optionalTsToDate(a.lastStartedTime)),
      lastAttemptCompletedAt: iso(optionalTsToDate(a.lastAttemptCompleteTime)),
      nextAttemptAt: iso(optionalTsToDate(a.nextAttemptScheduleTime)),
      expiresAt: iso(optionalTsToDate(a.expirationTime)),
      lastFailure: await failureSummary(client, a.lastFailure),
      lastWorkerIdentity: a.lastWorkerIdentity || undefined,
    });
  }
  if (details.searchAttributes.kind) {
    try {
      // a query needs a worker: don't hang when none is polling
      details.flow = await client.withDeadline(Date.now() + 5_000, () => handle.query(flowQuery));
    } catch (err) {
      details.flowQueryError = (err as Error).message;
    }
  }
  return details;
}

const typeName = (t: unknown) => (typeof t === 'number' ? (EventType[t] ?? String(t)) : String(t)).replace(/^EVENT_TYPE_/, '');

/** Where a reset goes: the last or first completed workflow task, or a given workflow-task event. */
export type ResetPoint = { to: 'last-task' } | { to: 'first-task' } | { to: 'event'; eventId: number };

export function parseResetPoint(words: string[] | string | undefined): ResetPoint {
  const text = (Array.isArray(words) ? words.join(' ') : (words ?? 'last-task')).trim();
  if (text === 'last-task' || text === 'last') return { to: 'last-task' };
  if (text === 'first-task' || text === 'first') return { to: 'first-task' };
  const m = /^(?:event[\s:=]+)?(\d+)$/.exec(text);
  if (m) return { to: 'event', eventId: Number(m[1]) };
  throw new OpsError(`--to must be last-task, first-task or "event N" (got "${text}")`);
}

const RESETTABLE = new Set(['WORKFLOW_TASK_COMPLETED', 'WORKFLOW_TASK_FAILED', 'WORKFLOW_TASK_TIMED_OUT']);

/** The workflowTaskFinishEventId for `point` in `history`. */
export function resetEventId(history: History, point: ResetPoint): { eventId: number; eventType: string; rawEventId: temporal.api.history.v1.IHistoryEvent['eventId'] } {
  const tasks = (history.events ?? []).filter((e) => RESETTABLE.has(typeName(e.eventType)));
  const completed = tasks.filter((e) => typeName(e.eventType) === 'WORKFLOW_TASK_COMPLETED');
  let event;
  if (point.to === 'last-task') event = completed[completed.length - 1];
  else if (point.to === 'first-task') event = completed[0];
  else {
    event = tasks.find((e) => Number(e.eventId) === point.eventId);
    if (!event) {
      const ids = tasks.map((e) => Number(e.eventId));
      const before = ids.filter((i) => i < point.eventId).slice(-2);
      const after = ids.filter((i) => i > point.eventId).slice(0, 2);
      throw new OpsError(`event ${point.eventId} is not the end of a workflow task; nearby ones: ${[...before, ...after].join(', ') || 'none'}`);
    }
  }
  if (!event) throw new OpsError('the history has no completed workflow task to reset to');
  return { eventId: Number(event.eventId), eventType: typeName(event.eventType), rawEventId: event.eventId };
}

export interface ResetResult {
  workflowId: string;
  previousRunId: string;
  runId: string;
  resetToEventId: number;
  resetToEventType: string;
  reason: string;
}

/**
 * Resets the flow's current run to `point` through the Temporal API: the run is terminated and a new
 * one replays the history up to that workflow task, then carries on with the current code (activities
 * scheduled after the point are scheduled again, signals and updates after it are reapplied).
 */
export async function resetFlow(client: Client, id: string, point: ResetPoint, reason: string): Promise<ResetResult> {
  if (!reason.trim()) throw new OpsError('a reset needs --reason (it is recorded in the history)');
  const workflowId = resolveWorkflowId(id);
  const handle = client.workflow.getHandle(workflowId);
  const { runId } = await handle.describe();
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const target = resetEventId(history, point);
  const res = await client.workflowService.resetWorkflowExecution({
    namespace: client.options.namespace,
    workflowExecution: { workflowId, runId },
    reason,
    workflowTaskFinishEventId: target.rawEventId, // the history's own int64
    requestId: crypto.randomUUID(),
  });
  return { workflowId, previousRunId: runId, runId: res.runId ?? '', resetToEventId: target.eventId, resetToEventType: target.eventType, reason };
}

export interface CancelResult {
  workflowId: string;
  how: 'flow' | 'temporal';
  flow?: Flow;
}

/**
 * Cancels a flow the way the user's DELETE does (the flow ends `cancelled`, cleans up and answers
 * with its state). `hard`, a workflow that is not a flow (support-review), or a flow that does not take
 * the update within 15 s (e.g. its workflow task keeps failing; a flow has its search attributes from its
 * start, so they do not tell that its first task ran): a Temporal cancellation request instead.
 */
export async function cancelFlow(client: Client, id: string, hard = false): Promise<CancelResult> {
  const workflowId = resolveWorkflowId(id);
  const handle = client.workflow.getHandle(workflowId);
  const desc = await handle.describe();
  if (desc.status.name !== 'RUNNING') throw new OpsError(`${workflowId} is not running (${desc.status.name})`);
  if (hard || !desc.typedSearchAttributes.get(FLOW_KIND)) {
    await handle.cancel();
    return { workflowId, how: 'temporal' };
  }
  try {
    const result = (await client.withDeadline(Date.now() + 15_000, () => handle.executeUpdate(cancelUpdate as never, { args: [] }))) as FlowResult;
    return { workflowId, how: 'flow', flow: result.flow };
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new OpsError(`the flow refused to cancel: ${(err.cause as Error | undefined)?.message ?? err.message}`);
    if (!(err instanceof WorkflowUpdateRPCTimeoutOrCancelledError)) throw err;
    await handle.cancel();
    return { workflowId, how: 'temporal' };
  }
}
