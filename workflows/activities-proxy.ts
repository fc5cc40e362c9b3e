/** How flows call activities: short database work retries fast; delivery retries with backoff for as long as a code lives. */
import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import { LOCAL_DB_PATCH, REGULAR_DB_PATCH, hasPatch } from './patches';
import type * as activities from '../activities';

const dbRetry = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 20 } as const;

export const db = proxyActivities<typeof activities>({
  startToCloseTimeout: '15s',
  retry: dbRetry,
});

const localDb = proxyLocalActivities<typeof activities>({
  startToCloseTimeout: '15s',
  retry: dbRetry,
});

/** `db` for short database work, as each flow ran it: regular activities, except in flows started between LOCAL_DB_PATCH and REGULAR_DB_PATCH (patches.ts). */
export function quickDb(): typeof db {
  if (hasPatch(REGULAR_DB_PATCH)) return db;
  return hasPatch(LOCAL_DB_PATCH) ? localDb : db;
}

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
    // Through the task queue, not handed back with the workflow task that schedules it: started eagerly, a code's
    // delivery ran alongside the answer to the captcha and made it ~3 ms slower for a real account than for an
    // unknown identifier (test/attacks.test.ts 6a).
    allowEagerDispatch: false,
  });
}
