/** Talking to flows: find the workflow behind a flow id, query it, drive it with updates, map outcomes to HTTP. */
import type { Response } from 'express';
import { randomUUID } from 'node:crypto';
import { QueryRejectedError, ServiceError, WorkflowNotFoundError, isGrpcServiceError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, type QueryDefinition, type UpdateDefinition } from '@temporalio/common';
import { flowQuery, flowSubjectQuery, kindOfFlowId, workflowIdOf, FLOW_ENDED, STEP_MISMATCH, type Flow, type FlowResult, type FlowSubject } from '../workflows/messages';
import { openFlowsClient, temporalClient } from '../lib/temporal';
import { Problem, problem, type ProblemCode } from './problem';
import { beginGuess, counting, guessKeys } from '../domain/limits';
import { consume } from './rate-limit';
import { drivenBySecret, flowSecretOf, sameSecret } from '../lib/secrets';
import { recordAtNewPassword, resetRecord, type ResetRecord } from '../domain/flow-record';
import type { SessionInfo } from './auth';
import { currentSession } from './auth';
import type { Request, Router } from 'express';
import type { z } from 'zod';
import { route, type RouteSpec } from './registry';
import { FlowSchema, flowIdParam } from './schemas';

export async function handleOf(flowId: string): Promise<WorkflowHandle> {
  const workflowId = workflowIdOf(flowId);
  if (!workflowId) throw problem('flow_not_found');
  return (await temporalClient()).workflow.getHandle(workflowId);
}

/** Asks the flow's workflow `def`; a flow that does not exist is flow_not_found. `openOnly`: an ended flow answers undefined instead of a worker replaying its history. */
async function ask<T>(flowId: string, def: QueryDefinition<T>, openOnly = false): Promise<T | undefined> {
  const workflowId = workflowIdOf(flowId);
  if (!workflowId) throw problem('flow_not_found');
  try {
    return await (await (openOnly ? openFlowsClient() : temporalClient())).workflow.getHandle(workflowId).query(def);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw problem('flow_not_found');
    if (openOnly && err instanceof QueryRejectedError) return undefined;
    throw err;
  }
}

/**
 * The flow as it stands. A running flow answers a query; an ended one is what its workflow returned
 * (every flow returns its final view), read from the close event of its history: no worker has to
 * replay the history to answer, which took the dev server about 2 s right after a flow ended. A run
 * that returned nothing (terminated by ops, say) is still queried.
 */
export async function queryFlow(flowId: string): Promise<Flow> {
  const running = await ask(flowId, flowQuery, true);
  if (running) return publicFlow(running);
  const handle = await handleOf(flowId);
  // (bounded: were ops to reset the flow meanwhile, result() would wait for the new run to end)
  const returned = (await (await temporalClient()).withDeadline(Date.now() + 5_000, () => handle.result()).catch(() => undefined)) as Flow | undefined;
  if (returned?.flowId === flowId) return publicFlow(returned);
  return publicFlow((await ask(flowId, flowQuery))!);
}

/** The subject of an open flow at one of `steps` (one query), else step_mismatch. */
export async function subjectAt(flowId: string, ...steps: Flow['step'][]): Promise<FlowSubject> {
  const subject = await ask(flowId, flowSubjectQuery, true);
  if (!subject || subject.status !== 'active') throw problem('step_mismatch', 'The flow has ended.');
  if (!subject.step || !steps.includes(subject.step)) throw problem('step_mismatch', 'The flow is not at a step that accepts this.');
  return subject;
}

export async function querySubject(flowId: string): Promise<FlowSubject> {
  return (await ask(flowId, flowSubjectQuery))!;
}

/**
 * Who may drive a flow. An anonymous flow (a reset, a sign-up) needs its secret in `Flow-Secret`;
 * flows a signed-in user started need that user's session. Anybody else gets exactly the 404 of a flow
 * that does not exist: the secret is checked first, before anything is looked up, so a real flow
 * without its secret takes the same time as a made-up one.
 */
export async function authorizeFlow(req: Request, flowId: string): Promise<SessionInfo | undefined> {
  const kind = kindOfFlowId(flowId);
  if (!kind) throw problem('flow_not_found');
  if (drivenBySecret(kind)) {
    if (!sameSecret(flowSecretOf(flowId), req.header('flow-secret'))) throw problem('flow_not_found');
    return undefined;
  }
  const session = await currentSession(req);
  if (!session) throw problem('flow_not_found');
  const owner = await ownerOf(flowId);
  if (session.accountId !== owner) throw problem('flow_not_found');
  return session;
}

/** What a flow may tell its holder: never another flow's id (flows that ran older code said "superseded by <id>"). */
export function publicFlow(flow: Flow): Flow {
  return flow.reason?.startsWith('superseded') ? { ...flow, reason: 'superseded' } : flow;
}

/**
 * Who started a change flow: the memo its start wrote, read from the server (no worker is asked, so a stranger's
 * request, counted by nothing yet, costs no query and is refused even while no worker runs); flows started before
 * the memo, or whose memo cannot be read (a retired key), are asked.
 */
async function ownerOf(flowId: string): Promise<string | undefined> {
  const memo = await (await handleOf(flowId)).describe().then(
    (d) => d.memo as { ownerAccountId?: unknown } | undefined,
    (err: unknown) => {
      if (err instanceof WorkflowNotFoundError) throw problem('flow_not_found');
      return undefined; // e.g. a memo written under a retired key: ask the flow instead (which reports an outage)
    },
  );
  if (typeof memo?.ownerAccountId === 'string') return memo.ownerAccountId;
  const running = await ask(flowId, flowSubjectQuery, true);
  return (running ?? (await querySubject(flowId))).ownerAccountId;
}

const ERROR_CODES: Record<string, ProblemCode> = {
  captcha_invalid: 'captcha_invalid',
  code_invalid: 'code_invalid',
  code_expired: 'code_expired',
  code_exhausted: 'code_exhausted',
  resend_too_soon: 'resend_too_soon',
  resend_limit: 'resend_limit',
  answers_invalid: 'answers_invalid',
  token_invalid: 'token_invalid',
  too_many_attempts: 'too_many_attempts',
  validation_failed: 'validation_failed',
  consent_required: 'consent_required',
  document_outdated: 'document_outdated',
  phone_taken: 'phone_taken',
  email_taken: 'email_taken',
};

/** Sends an update; answers 200 with the Flow, or the problem the flow reported. */
export async function drive<Args extends unknown[]>(res: Response, flowId: string, def: UpdateDefinition<FlowResult, Args>, ...args: Args): Promise<void> {
  res.status(200).json(await update(flowId, def, ...args));
}

/** Sends an update; returns the Flow after it, or throws the problem the flow reported. */
export async function update<Args extends unknown[]>(flowId: string, def: UpdateDefinition<FlowResult, Args>, ...args: Args): Promise<Flow> {
  const handle = await handleOf(flowId);
  // One id for the retries: were an earlier try admitted after all, the server answers it instead of running it twice.
  const updateId = randomUUID();
  let result: FlowResult;
  for (let attempt = 1; ; attempt++) {
    try {
      result = await handle.executeUpdate(def as unknown as UpdateDefinition<FlowResult, [unknown]>, { args: args as unknown as [unknown], updateId });
      break;
    } catch (err) {
      if (attempt < 4 && isWorkflowTaskRetry(err)) {
        await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
        continue;
      }
      throw await mapUpdateError(err, flowId);
    }
  }
  if (result.ok) return publicFlow(result.flow);
  const code = ERROR_CODES[result.error] ?? 'validation_failed';
  const extra: Record<string, unknown> = {};
  const headers: Record<string, string> = {};
  if (result.attemptsLeft !== undefined) extra.attemptsLeft = result.attemptsLeft;
  if (result.reasons) extra.reasons = result.reasons;
  if (result.retryAfterMs !== undefined) {
    const seconds = Math.max(1, Math.ceil(result.retryAfterMs / 1000));
    extra.retryAfterSeconds = seconds;
    headers['Retry-After'] = String(seconds);
  }
  extra.flow = publicFlow(result.flow);
  throw problem(code, undefined, extra, headers);
}

/**
 * The server refused the update because the flow's last workflow task failed, which it retries at once:
 * e.g. the flow tried to complete while an activity it had started (a code's delivery) reported in
 * (the server's WorkflowNotReady, gRPC FAILED_PRECONDITION). Nothing of the update happened; sent again it is taken.
 */
function isWorkflowTaskRetry(err: unknown): boolean {
  const grpc = err instanceof ServiceError ? err.cause : undefined;
  return isGrpcServiceError(grpc) && grpc.code === FAILED_PRECONDITION;
}
const FAILED_PRECONDITION = 9; // gRPC status code

/** The server's failure for an update the flow had accepted when it ended (temporal service/history/workflow/update). */
const ACCEPTED_UPDATE_COMPLETED_WORKFLOW = 'AcceptedUpdateCompletedWorkflow';
const ENDED = 'The flow has ended.';
/** ApplicationFailure.nonRetryable(message) without a type (the SDK's "No registered handler for update"). */
const SDK_DEFAULT_FAILURE_TYPE = 'Error';

/**
 * What an update's failure means to the caller, by the failure's type (never its text):
 * - the flow refused it: `stepMismatch()` / `flowEnded()` (workflows/messages.ts), or the SDK's refusal of an update
 *   this flow has no handler for, which has the SDK's default type, 'Error' (every refusal the flows raise has its own);
 * - the flow ended while the update waited: the server's AcceptedUpdateCompletedWorkflow, or a not-found (the server
 *   answers an update to an ended flow, or one its end overtook, as NOT_FOUND): told apart from a flow that does not
 *   exist by describing it.
 * Anything else is not the caller's doing and is thrown on (a 500).
 */
export async function mapUpdateError(err: unknown, flowId: string): Promise<unknown> {
  if (err instanceof WorkflowUpdateFailedError) {
    const cause = err.cause;
    if (!(cause instanceof ApplicationFailure)) return err;
    if (cause.type === STEP_MISMATCH) return problem('step_mismatch', cause.message);
    if (cause.type === FLOW_ENDED || cause.type === ACCEPTED_UPDATE_COMPLETED_WORKFLOW) return problem('step_mismatch', ENDED);
    if (cause.type === SDK_DEFAULT_FAILURE_TYPE) return problem('step_mismatch', 'This kind of flow does not take this action.');
    return err;
  }
  if (err instanceof WorkflowNotFoundError) return (await flowExists(flowId)) ? problem('step_mismatch', ENDED) : problem('flow_not_found');
  return err;
}

async function flowExists(flowId: string): Promise<boolean> {
  return (await handleOf(flowId)).describe().then(
    () => true,
    (err: unknown) => {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    },
  );
}

/** Problems that mean a guess was not judged (it gives its count back); wrong guesses and unknown outcomes keep it. */
const NOT_JUDGED = new Set(['step_mismatch', 'flow_not_found', 'code_expired', 'validation_failed']);

/**
 * Sends a guess (a code, security answers), counted per flow (a rate limit) and against the flow's identifier and account,
 * across all their flows, before the flow judges it (domain/limits.ts): past the hour's budget even a
 * right guess answers 429, and simultaneous guesses cannot pass the budget.
 */
export async function guess<Args extends unknown[]>(res: Response, flowId: string, def: UpdateDefinition<FlowResult, Args>, ...args: Args): Promise<void> {
  const { subject, record } = await guessSubject(flowId, await countedRecord(flowId));
  const flow = await counting(
    await beginGuess(guessKeys(subject)),
    () => update(flowId, def, ...args),
    (err) => err !== undefined && !(err instanceof Problem && NOT_JUDGED.has(err.code)),
    // a reset's password step is opened by the flow's own answer to a guess (the password route asks the flow nothing)
    async (after) => {
      if (record && after.step === 'new_password' && !record.atNewPassword) await recordAtNewPassword(flowId);
    },
  );
  res.status(200).json(flow);
}

/**
 * Counts a request on a flow (submitPerFlow: 429 past it) and reads the reset's record meanwhile: one round trip.
 * Whatever would ask the flow itself comes after, once the count let the request through.
 */
export async function countedRecord(flowId: string): Promise<ResetRecord | undefined> {
  const [, record] = await Promise.all([consume('submitPerFlow', flowId), resetRecord(flowId)]);
  return record;
}

/** Whose guesses these are: a reset's record says once its captcha is passed (unless a person decided it), else the flow is asked. */
async function guessSubject(
  flowId: string,
  record: ResetRecord | undefined,
): Promise<{ subject: { subjectAccountId?: string; identifiers: string[]; identifier?: string }; record?: ResetRecord }> {
  if (record && !record.open) throw problem('step_mismatch', 'The flow has ended.');
  if (record?.passedCaptcha && !record.viaSupport)
    return { subject: { subjectAccountId: record.accountId, identifiers: record.identifiers, identifier: record.identifier }, record };
  const subject = await ask(flowId, flowSubjectQuery, true);
  if (!subject) throw problem('step_mismatch', 'The flow has ended.');
  return { subject, record: record?.viaSupport ? undefined : record };
}

/** What a route on one flow gets: the flow id from its path, already authorised for this caller. */
export interface FlowRequest<B> {
  req: Request;
  res: Response;
  flowId: string;
  /** The caller's session, for flows a signed-in user drives (a change); none for a flow driven by its secret. */
  session?: SessionInfo;
  body: B;
}

/**
 * A route on one flow (/v1/flows/:flowId…): after the request is validated, the flow is authorised for this
 * caller (authorizeFlow: its secret, or its owner's session; anybody else gets the 404 of an unknown flow).
 */
export function flowRoute<B extends z.ZodType | undefined = undefined>(
  router: Router,
  spec: Omit<RouteSpec<B, undefined>, 'tag' | 'ok'> &
    Partial<Pick<RouteSpec<B, undefined>, 'tag' | 'ok'>> & { /** What the 200 Flow shows, for the docs ("The flow, at code"). */ answers?: string },
  handler: (f: FlowRequest<B extends z.ZodType ? z.infer<B> : undefined>) => Promise<unknown>,
): void {
  // every route on a flow may find no such flow (or none this caller may drive); every action, a step that does not take it
  const always: ProblemCode[] = spec.method === 'get' ? ['flow_not_found'] : ['flow_not_found', 'step_mismatch'];
  const errors = [...new Set([...always, ...(spec.errors ?? [])])];
  const { answers, ...rest } = spec;
  const full: RouteSpec<B, undefined> = { tag: 'Flows', params: flowIdParam, ok: { status: 200, description: answers ?? 'The flow', schema: FlowSchema }, ...rest, errors };
  route(router, full, async (req, res, { body }) => {
    const flowId = String(req.params.flowId);
    const session = await authorizeFlow(req, flowId);
    await handler({ req, res, flowId, session, body });
  });
}
