/**
 * A support case waiting for a human (seed 001: "include the Mi account ID and the IMEI of your
 * phone"). Ops decide through the API or the CLI, which record the decision on the case and signal
 * here; with no decision within the review deadline the case lapses.
 *
 * The case document is the source of truth, the signal only a wake-up: at the deadline this workflow
 * closes the case atomically (pending → expired) and, when a decision was recorded meanwhile (a signal
 * lost to a crash, or a reviewer deciding in the same instant), returns that decision instead.
 */
import { condition, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { decideSignal, type SupportDecision } from './messages';
import { db } from './activities-proxy';

export interface SupportReviewInput {
  caseId: string;
  flowId: string;
  reviewTtlMs: number;
}

/**
 * The parent flow waits for this workflow under its own deadline, set to the same TTL a moment before
 * this workflow starts; this workflow must answer first, or the parent ends on its own deadline and
 * nobody closes the case or tells the user. So the review window ends a little early: 2% of the TTL,
 * at least 1 s, at most 1 min (72 h → 71 h 59 min), counted from when this workflow started.
 */
export function reviewWindowMs(reviewTtlMs: number, elapsedMs: number): number {
  const margin = Math.min(Math.max(reviewTtlMs * 0.02, 1_000), 60_000);
  return Math.max(reviewTtlMs - margin - elapsedMs, 1);
}

export async function supportReview(input: SupportReviewInput): Promise<(SupportDecision & { accountId?: string }) | null> {
  let decision: SupportDecision | undefined;
  setHandler(decideSignal, (d) => {
    decision ??= d;
  });
  if (patched('support-review-closes-case')) {
    const elapsed = Date.now() - workflowInfo().startTime.getTime();
    const decided = await condition(() => decision !== undefined, reviewWindowMs(input.reviewTtlMs, elapsed));
    if (!decided) {
      // Close the case; the user is told by the parent flow (expireSupportCase again, with the notice).
      const closed = await db.expireSupportCase({ caseId: input.caseId, notify: false });
      if (!closed.decision) return null;
      decision = closed.decision;
    }
  } else {
    await condition(() => decision !== undefined, input.reviewTtlMs);
    if (!decision) return null;
  }
  // The account the reviewer confirmed (the case's account ID, checked against the device).
  const { accountId } = await db.supportCaseAccount({ caseId: input.caseId });
  return { ...decision!, accountId };
}
