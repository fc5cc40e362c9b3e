/**
 * A support case waiting for a human (seed 001: "include the Mi account ID and the IMEI of your
 * phone"). Ops decide through the API or the CLI, which record the decision on the case and signal
 * here; with no decision within the review deadline the case lapses.
 */
import { condition, setHandler } from '@temporalio/workflow';
import { decideSignal, type SupportDecision } from './messages';
import { db } from './activities-proxy';

export interface SupportReviewInput {
  caseId: string;
  flowId: string;
  reviewTtlMs: number;
}

export async function supportReview(input: SupportReviewInput): Promise<(SupportDecision & { accountId?: string }) | null> {
  let decision: SupportDecision | undefined;
  setHandler(decideSignal, (d) => {
    decision ??= d;
  });
  await condition(() => decision !== undefined, input.reviewTtlMs);
  if (!decision) return null;
  // The account the reviewer confirmed (the case's account ID, checked against the device).
  const { accountId } = await db.supportCaseAccount({ caseId: input.caseId });
  return { ...decision, accountId };
}
