/** How flows call activities: short database work retries fast; delivery retries with backoff for as long as a code lives. */
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from '../activities';

export const db = proxyActivities<typeof activities>({
  startToCloseTimeout: '15s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 20 },
});

/** Password hashing and verification are slow by design. */
export const slow = proxyActivities<typeof activities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '10s', maximumAttempts: 10 },
});

export function delivery(scheduleToCloseMs: number) {
  return proxyActivities<typeof activities>({
    startToCloseTimeout: '20s',
    scheduleToCloseTimeout: Math.max(scheduleToCloseMs, 30_000),
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s' },
  });
}
