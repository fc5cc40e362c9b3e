/**
 * A flow's rules tested alone: the SDK's TestWorkflowEnvironment on the dev server `npm test` started
 * (TEMPORAL_ADDRESS), one worker per test file on a queue of its own, the workflows bundled once per file,
 * and in-memory activities that record what the flow asked of them. No HTTP, no database: a rule of a
 * flow runs in tens of milliseconds. The suites in test/ drive the same flows through the API.
 */
import crypto from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { quietWorkflowBundle } from './harness';
import type { Workflow } from '@temporalio/common';
import type { WorkflowStartOptions } from '@temporalio/client';
import type * as activities from '../../activities';
import type { FlowSettings } from '../../workflows/messages';

type Activities = typeof activities;
export type FakeActivities = { [K in keyof Activities]?: (...args: Parameters<Activities[K]>) => Promise<Awaited<ReturnType<Activities[K]>>> };

/** Settings that let a test see every timer fire (each is overridable per flow). */
export const QUICK: FlowSettings = {
  codeTtlMs: 60_000,
  resendCooldownMs: 60_000,
  maxResends: 2,
  maxCodeAttempts: 3,
  maxAnswerAttempts: 2,
  flowTtlMs: 600_000,
  supportReviewTtlMs: 600_000,
  recoveryHoldMs: 600_000,
};

export interface WorkflowEnv {
  env: TestWorkflowEnvironment;
  /** Every activity call the flows made, in order: [name, input]. */
  calls: [string, unknown][];
  /** The calls to one activity, their inputs. */
  callsTo(name: keyof Activities): unknown[];
  /** Starts `workflow` on this file's queue; `options` as the API gives them (memo, search attributes). */
  start<W extends Workflow>(
    workflow: W,
    input: Parameters<W>[0],
    options?: Pick<WorkflowStartOptions<W>, 'memo' | 'typedSearchAttributes'>,
  ): ReturnType<TestWorkflowEnvironment['client']['workflow']['start']>;
  stop(): Promise<void>;
}

/** `fakes` answer for the activities a test's flows call; one that is not faked fails the test that reaches it. */
export async function workflowEnv(fakes: FakeActivities): Promise<WorkflowEnv> {
  const address = process.env.TEMPORAL_ADDRESS;
  if (!address) throw new Error('TEMPORAL_ADDRESS is not set: run through npm test (TEST_STAGES=jest npm test -- workflows/)');
  const env = await TestWorkflowEnvironment.createFromExistingServer({ address, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
  const taskQueue = `workflow-test-${crypto.randomBytes(4).toString('hex')}`;
  const calls: [string, unknown][] = [];
  const recorded = Object.fromEntries(
    Object.entries(fakes).map(([name, fake]) => [
      name,
      async (input: unknown) => {
        calls.push([name, input]);
        return (fake as (i: unknown) => Promise<unknown>)(input);
      },
    ]),
  );
  const workflowBundle = await quietWorkflowBundle();
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle, activities: recorded });
  const running = worker.run();
  return {
    env,
    calls,
    callsTo: (name) => calls.filter(([n]) => n === name).map(([, input]) => input),
    start: <W extends Workflow>(workflow: W, input: Parameters<W>[0], options?: Pick<WorkflowStartOptions<W>, 'memo' | 'typedSearchAttributes'>) =>
      env.client.workflow.start(workflow, { ...options, taskQueue, workflowId: `wft-${crypto.randomUUID()}`, args: [input] } as unknown as WorkflowStartOptions<W>),
    stop: async () => {
      worker.shutdown();
      await running;
      await env.teardown();
    },
  };
}
