/** What operators ask of flows and support cases: shared by the ops HTTP endpoints and the ops CLI. */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { FLOW_KIND, FLOW_STATUS, FLOW_STEP, FLOW_STEP_SINCE, decideSignal, flowQuery, workflowIdOf, type FlowKind, type SupportDecision } from '../workflows/messages';
import { SupportCase } from '../db/models';

export interface StuckQuery {
  kind?: FlowKind;
  step?: string;
  /** Only flows whose step has not changed for this long (ms). */
  stuckForMs?: number;
  /** At most this many rows: the oldest steps (default 500). */
  limit?: number;
}

export interface FlowRow {
  workflowId: string;
  flowId: string;
  kind?: string;
  step?: string;
  status?: string;
  stepSince?: string;
  startedAt: string;
  workflowType: string;
}

const quote = (v: string) => `'${v.replace(/['\\]/g, '')}'`;

export function visibilityQuery(q: StuckQuery, now = Date.now()): string {
  const parts = ['ExecutionStatus = "Running"', `${FLOW_KIND.name} IS NOT NULL`];
  if (q.kind) parts.push(`${FLOW_KIND.name} = ${quote(q.kind)}`);
  if (q.step) parts.push(`${FLOW_STEP.name} = ${quote(q.step)}`);
  // (clamped: a duration longer than the epoch is "since before 1970", not an invalid date)
  if (q.stuckForMs !== undefined) parts.push(`${FLOW_STEP_SINCE.name} < ${quote(new Date(Math.max(now - q.stuckForMs, 0)).toISOString())}`);
  return parts.join(' AND ');
}

/** How many executions one listing reads at most (visibility has no ORDER BY on SQL stores, so we sort here). */
const SCAN_LIMIT = 20_000;

/**
 * Running flows matching `q`, oldest step first, from Temporal visibility. Visibility lists newest
 * starts first and SQL visibility cannot order by FlowStepSince, so every match is read (up to
 * SCAN_LIMIT) and the `limit` oldest are kept: the stuck ones are the ones that must not be cut off.
 */
export async function listFlows(client: Client, q: StuckQuery): Promise<FlowRow[]> {
  const rows: FlowRow[] = [];
  const limit = q.limit ?? 500;
  let scanned = 0;
  for await (const wf of client.workflow.list({ query: visibilityQuery(q), pageSize: 1000 })) {
    const sa = wf.typedSearchAttributes;
    rows.push({
      workflowId: wf.workflowId,
      flowId: wf.workflowId.split('/').pop()!,
      kind: sa.get(FLOW_KIND),
      step: sa.get(FLOW_STEP),
      status: sa.get(FLOW_STATUS),
      stepSince: sa.get(FLOW_STEP_SINCE)?.toISOString(),
      startedAt: wf.startTime.toISOString(),
      workflowType: wf.type,
    });
    if (++scanned >= SCAN_LIMIT) break;
  }
  return rows.sort((a, b) => (a.stepSince ?? a.startedAt).localeCompare(b.stepSince ?? b.startedAt)).slice(0, limit);
}

export type CaseErrorCode = 'case_not_found' | 'case_decided' | 'case_unverifiable';

export class CaseError extends Error {
  constructor(
    readonly code: CaseErrorCode,
    readonly detail?: string,
  ) {
    super(detail ? `${code}: ${detail}` : code);
  }
}

export type CaseStatus = 'pending' | 'approved' | 'rejected' | 'expired';
export const CASE_STATUSES: readonly CaseStatus[] = ['pending', 'approved', 'rejected', 'expired'];

export function caseView(c: Record<string, unknown> & { _id: string }) {
  const { _id, ...rest } = c;
  return { caseId: _id, ...rest };
}

/** Support cases, oldest first (a reviewer's queue: `status=pending`). */
export async function listCases(status?: CaseStatus) {
  const rows = await SupportCase.find(status ? { status } : {})
    .sort({ createdAt: 1 })
    .limit(500)
    .lean();
  return rows.map((r) => caseView(r as never));
}

export const reviewWorkflowId = (caseId: string) => `support-review/${caseId}`;

/**
 * Records the decision on the case (once: the status moves from pending atomically, so of two
 * reviewers one gets 409) and hands it to the waiting supportReview workflow. The case is the source
 * of truth; the signal wakes the review. When the review is gone (its flow was cancelled, superseded or
 * ended on its deadline), nobody would act on the decision: the case is closed instead and the
 * reviewer told (409).
 */
export async function decideCase(client: Client, caseId: string, approved: boolean, reviewer: string, note: string) {
  const existing = await SupportCase.findById(caseId).lean();
  if (!existing) throw new CaseError('case_not_found');
  if (existing.status !== 'pending') throw new CaseError('case_decided', `The case is ${existing.status}.`);
  if (approved && !existing.accountExists) throw new CaseError('case_unverifiable');
  const decidedAt = new Date();
  const decision: SupportDecision = { approved, reviewer, note, decidedAt: decidedAt.toISOString() };
  const updated = await SupportCase.findOneAndUpdate(
    { _id: caseId, status: 'pending' },
    { $set: { status: approved ? 'approved' : 'rejected', decision: { reviewer, note, decidedAt } } },
    { returnDocument: 'after' },
  ).lean();
  if (!updated) throw new CaseError('case_decided', 'Another decision or the review deadline came first.');
  let outcome = await deliverDecision(client, caseId, decision);
  if (outcome === 'delivered' && (await flowEndedWithoutReview(client, updated.flowId))) outcome = 'gone';
  if (outcome === 'gone') {
    await SupportCase.updateOne({ _id: caseId, status: updated.status, 'decision.decidedAt': decidedAt }, { $set: { status: 'expired' }, $unset: { decision: 1 } });
    throw new CaseError('case_decided', 'The recovery flow behind this case has ended (cancelled, superseded or out of time); the case is closed.');
  }
  return caseView(updated as never);
}

/**
 * A review can still take a signal while its flow is ending (a cancel answers before the flow's last
 * activity, and the review is only terminated when the flow closes): a flow that was cancelled or
 * expired will never act on the decision. A rejection ends the flow `rejected`: that one did act.
 */
async function flowEndedWithoutReview(client: Client, flowId: string): Promise<boolean> {
  const workflowId = workflowIdOf(flowId);
  if (!workflowId) return false;
  try {
    const flow = await client.withDeadline(Date.now() + 5_000, () => client.workflow.getHandle(workflowId).query(flowQuery));
    return flow.status === 'cancelled' || flow.status === 'expired';
  } catch {
    return false; // no answer (no worker right now): the decision stands
  }
}

/**
 * Signals the review. 'used' when the review had already closed but took this decision from the case
 * (it reads the case at its deadline); 'gone' when no review will ever act on it.
 */
async function deliverDecision(client: Client, caseId: string, decision: SupportDecision): Promise<'delivered' | 'used' | 'gone'> {
  const handle = client.workflow.getHandle(reviewWorkflowId(caseId));
  // The case exists a moment before its review workflow does (more than a moment on a loaded worker):
  // a very quick reviewer waits for it, up to 30 s.
  for (let attempt = 0; attempt < 120; attempt++) {
    try {
      await handle.signal(decideSignal, decision);
      return 'delivered';
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    try {
      const desc = await handle.describe();
      if (desc.status.name !== 'COMPLETED') return 'gone';
      const result = (await handle.result()) as SupportDecision | null;
      return result?.decidedAt === decision.decidedAt ? 'used' : 'gone';
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return 'gone';
}
