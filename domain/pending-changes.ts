/** An account's pending phone/email changes, ended from outside their flows (sign-out, a password reset). */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { Account } from '../db/models';
import { temporalClient } from '../lib/temporal';
import { cancelFlowSignal, workflowIdOf, type FlowKind } from '../workflows/messages';

const CHANGE_KINDS: FlowKind[] = ['change_phone', 'change_email'];

/** Ends the account's pending phone/email changes (`cancelled`, `reason`): on sign-out and after a password reset (`known`: the account, when the caller has just read it). */
export async function cancelPendingChanges(accountId: string, reason: string, known?: { activeFlows?: unknown }): Promise<void> {
  const account = known ?? (await Account.findById(accountId, { activeFlows: 1 }).lean());
  const active = (account?.activeFlows ?? {}) as Record<string, string | undefined>;
  const pending = CHANGE_KINDS.map((k) => active[k] && workflowIdOf(active[k])).filter((id): id is string => !!id);
  if (!pending.length) return;
  const client = await flowClient();
  for (const workflowId of pending) {
    try {
      await client.workflow.getHandle(workflowId).signal(cancelFlowSignal, { reason });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err; // it has ended already
    }
  }
}

/** In an activity, the worker's own client; in the API, the process's. */
async function flowClient(): Promise<Client> {
  try {
    return Context.current().client;
  } catch {
    return temporalClient();
  }
}
