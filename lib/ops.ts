/** What operators ask of flows and support cases: shared by the ops HTTP endpoints and the ops CLI. */
import type { Client } from '@temporalio/client';
import { FLOW_KIND, FLOW_STATUS, FLOW_STEP, FLOW_STEP_SINCE, type FlowKind, type SupportDecision } from '../workflows/messages';
import { SupportCase } from '../db/models';
import { decideSignal } from '../workflows/messages';

export interface StuckQuery {
  kind?: FlowKind;
  step?: string;
  /** Only flows whose step has not changed for this long (ms). */
  stuckForMs?: number;
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
  if (q.stuckForMs !== undefined) parts.push(`${FLOW_STEP_SINCE.name} < ${quote(new Date(now - q.stuckForMs).toISOString())}`);
  return parts.join(' AND ');
}

/** Running flows matching `q`, oldest step first, from Temporal visibility. */
export async function listFlows(client: Client, q: StuckQuery): Promise<FlowRow[]> {
  const rows: FlowRow[] = [];
  const limit = q.limit ?? 500;
  for await (const wf of client.workflow.list({ query: visibilityQuery(q), pageSize: 200 })) {
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
    if (rows.length >= limit) break;
  }
  return rows.sort((a, b) => (a.stepSince ?? a.startedAt).localeCompare(b.stepSince ?? b.startedAt));
}

export class CaseError extends Error {
  constructor(readonly code: 'case_not_found' | 'case_decided' | 'case_unverifiable') {
    super(code);
  }
}

export function caseView(c: Record<string, unknown> & { _id: string }) {
  const { _id, ...rest } = c;
  return { caseId: _id, ...rest };
}

export async function listCases(status?: string) {
  const rows = await SupportCase.find(status ? { status: status as 'pending' } : {}).sort({ createdAt: 1 }).limit(500).lean();
  return rows.map((r) => caseView(r as never));
}

/** Records the decision on the case (once) and hands it to the waiting supportReview workflow. */
export async function decideCase(client: Client, caseId: string, approved: boolean, reviewer: string, note: string) {
  const existing = await SupportCase.findById(caseId).lean();
  if (!existing) throw new CaseError('case_not_found');
  if (existing.status !== 'pending') throw new CaseError('case_decided');
  if (approved && !existing.accountExists) throw new CaseError('case_unverifiable');
  const decision: SupportDecision = { approved, reviewer, note, decidedAt: new Date().toISOString() };
  const updated = await SupportCase.findOneAndUpdate(
    { _id: caseId, status: 'pending' },
    { $set: { status: approved ? 'approved' : 'rejected', decision: { reviewer, note, decidedAt: new Date(decision.decidedAt) } } },
    { returnDocument: 'after' },
  ).lean();
  if (!updated) throw new CaseError('case_decided');
  await client.workflow.getHandle(`support-review/${caseId}`).signal(decideSignal, decision);
  return caseView(updated as never);
}
