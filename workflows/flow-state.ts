/**
 * The state every flow keeps, and the one way it moves: `goTo(step)` / `end(status)`. Each move is
 * upserted as search attributes so the Temporal UI can filter "resets stuck at code for an hour" (the first
 * step's come with the start: flowAttributes in messages.ts).
 */
import { CancellationScope, condition, getExternalWorkflowHandle, setHandler, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { FEWER_TASKS_PATCH, hasPatch, settled } from './patches';
import {
  FLOW_KIND,
  FLOW_STATUS,
  FLOW_STEP,
  cancelUpdate,
  flowAttributes,
  flowEnded,
  flowQuery,
  flowSubjectQuery,
  stepMismatch,
  supersededSignal,
  workflowIdOf,
  type Flow,
  type FlowKind,
  type FlowStatus,
  type FlowStep,
  type FlowResult,
  type FlowError,
  type FlowSubject,
} from './messages';

/** Thrown inside the flow body when the flow ended while it was waiting (expired, cancelled, superseded). */
export class FlowEnded extends Error {}

export class FlowState {
  step: FlowStep;
  status: FlowStatus = 'active';
  reason?: string;
  /** The current phase's deadline (epoch ms); the whole-flow TTL while the user is interacting. */
  deadline: number;
  /** Fields shown with the current step only; reset on every step change. */
  stepView: Partial<Flow> = {};
  private oneTimer?: boolean;
  private timer?: { at: number; fired: boolean; scope: CancellationScope };

  constructor(
    readonly flowId: string,
    readonly kind: FlowKind,
    firstStep: FlowStep,
    deadline: number,
  ) {
    this.step = firstStep;
    this.deadline = deadline;
    // A flow started with these search attributes (api/routes/flows.ts startFlow) needs not write them again (one
    // history event and one visibility write less), since SETTLED_PATCH: a worker before it wrote them anyway.
    const started = workflowInfo().typedSearchAttributes;
    const given = started.get(FLOW_KIND) === kind && started.get(FLOW_STEP) === firstStep && started.get(FLOW_STATUS) === 'active';
    if (!(settled() && given)) this.publish();
  }

  get active(): boolean {
    return this.status === 'active';
  }

  goTo(step: FlowStep, view: Partial<Flow> = {}): void {
    this.step = step;
    this.stepView = view;
    this.publish();
  }

  end(status: Exclude<FlowStatus, 'active'>, reason?: string): void {
    if (!this.active) return;
    this.status = status;
    this.reason = reason;
    if (status === 'completed') this.step = 'done';
    this.stepView = {};
    this.publish();
  }

  /** Waits until `ready()` holds; ends the flow `expired` at the deadline, and unwinds if it ended meanwhile. */
  async until(ready: () => boolean): Promise<void> {
    this.oneTimer ??= hasPatch(FEWER_TASKS_PATCH);
    if (!this.oneTimer) {
      const inTime = await condition(() => ready() || !this.active, Math.max(this.deadline - Date.now(), 1));
      if (!inTime && this.active) this.end('expired', 'deadline');
    } else {
      for (;;) {
        const timer = this.deadlineTimer();
        await condition(() => ready() || !this.active || timer.fired || timer.at !== this.deadline);
        if (ready() || !this.active) break;
        if (timer.fired && timer.at === this.deadline) {
          this.end('expired', 'deadline');
          break;
        }
        // the deadline moved (a support review, a code to a new contact): the timer follows it
      }
    }
    if (!this.active) throw new FlowEnded(this.status);
  }

  /**
   * The one timer of the current deadline (since FEWER_TASKS_PATCH): started by the first wait and kept
   * by every later one while the deadline stays, replaced when it moves. Before, every wait started a timer
   * of its own and cancelled it when the step was done: two commands more per step.
   */
  private deadlineTimer(): { at: number; fired: boolean } {
    if (this.timer?.at === this.deadline) return this.timer;
    this.timer?.scope.cancel();
    const at = this.deadline;
    const scope = new CancellationScope();
    const timer = { at, fired: false, scope };
    scope
      .run(() => sleep(Math.max(at - Date.now(), 1)))
      .then(
        () => (timer.fired = true),
        () => undefined, // replaced by the timer of a later deadline
      );
    this.timer = timer;
    return timer;
  }

  /**
   * The handlers every flow has: the Flow (query), whom it is about (the API's query), and "cancel" from its user
   * at `cancelAt` (unless `refuseCancel` throws), which ends it by `cancel` (default: cancelled).
   */
  serve(opts: { subject: () => Omit<FlowSubject, 'status' | 'step'>; cancelAt: readonly FlowStep[]; refuseCancel?: () => void; cancel?: (reason: string) => void }): void {
    const cancel = opts.cancel ?? ((reason: string) => this.end('cancelled', reason));
    setHandler(flowQuery, () => this.view());
    setHandler(flowSubjectQuery, () => ({ ...opts.subject(), status: this.status, step: this.step }));
    setHandler(cancelUpdate, () => (cancel('cancelled_by_user'), this.ok()), {
      validator: () => {
        this.expect(...opts.cancelAt)();
        opts.refuseCancel?.();
      },
    });
  }

  /** Walks the flow's `steps` until they are done or one finds the flow ended (FlowEnded); then `always`; answers the final Flow. */
  async run(steps: () => Promise<void>, always?: () => Promise<void>): Promise<Flow> {
    try {
      await steps();
    } catch (err) {
      if (!(err instanceof FlowEnded)) throw err;
    } finally {
      await always?.();
    }
    return this.view();
  }

  /** For update handlers: wait until the flow body has moved on from `step` (so the answer shows the next step). */
  async movedOn(step: FlowStep): Promise<void> {
    await condition(() => this.step !== step || !this.active);
  }

  view(): Flow {
    const flow: Flow = { flowId: this.flowId, kind: this.kind, status: this.status, step: this.step };
    if (this.active) {
      flow.expiresAt = new Date(this.deadline).toISOString();
      Object.assign(flow, this.stepView);
    }
    if (this.reason && this.status !== 'completed') flow.reason = this.reason;
    return flow;
  }

  ok(): FlowResult {
    return { ok: true, flow: this.view() };
  }

  fail(error: FlowError, extra: { attemptsLeft?: number; retryAfterMs?: number; reasons?: string[] } = {}): FlowResult {
    return { ok: false, flow: this.view(), error, ...extra };
  }

  /** An update validator: rejects (changing nothing, leaving no history) unless the flow is at one of `steps`. */
  expect(...steps: FlowStep[]): (...args: any[]) => void {
    return () => {
      if (!this.active) throw flowEnded();
      if (!steps.includes(this.step)) throw stepMismatch();
    };
  }

  private publish(): void {
    upsertSearchAttributes(flowAttributes(this.kind, this.step, this.status, new Date()));
  }
}

/** Constant-time comparison of two hex digests (the workflow sandbox has no node:crypto). */
export function sameDigest(a: string | undefined, b: string): boolean {
  if (a === undefined || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Tells the flow a newer one replaced (one per identifier or account) that it is superseded; one that has ended already is left alone. */
export async function supersede(previousFlowId: string, byFlowId: string): Promise<void> {
  const workflowId = workflowIdOf(previousFlowId);
  if (!workflowId) return;
  try {
    await getExternalWorkflowHandle(workflowId).signal(supersededSignal, { byFlowId });
  } catch {
    // it already ended: nothing to supersede
  }
}
