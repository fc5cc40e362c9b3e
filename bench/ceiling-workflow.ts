/**
 * The engine ceiling: the least a flow can be in Temporal. It is started, takes `updates` updates
 * (each answered at once) and completes after the last one: no activities, no timers, no search
 * attributes, no payload codec. The bench drives it straight through the Temporal client with the same
 * starts, updates and concurrency as the HTTP forgot-password flow.
 */
import { condition, defineUpdate, setHandler } from '@temporalio/workflow';

export const stepUpdate = defineUpdate<number, [string]>('step');

export async function ceilingFlow(updates: number): Promise<number> {
  let received = 0;
  setHandler(stepUpdate, () => ++received);
  await condition(() => received >= updates);
  return received;
}
