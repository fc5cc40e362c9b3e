/** How flows call activities: short database work retries fast; delivery retries with backoff for as long as a code lives. */
import { patched, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
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

/**
 * Flows started since this patch run their short reads and writes of our own database (look-ups, the
 * active-flow marker, issuing a code, counting a failure) as local activities: in the worker that runs
 * the workflow task, recorded as a marker, with no activity task on the queue and no extra workflow
 * task. The benchmark found these round trips to be most of the server's work per flow. Anything that
 * sends a message, or may wait long, stays a regular activity (`db`, `slow`, `delivery`).
 */
export const LOCAL_DB_PATCH = 'short-db-work-as-local-activities';

/** `db` for short database work: local activities in flows started since LOCAL_DB_PATCH, as before in older ones. */
export function quickDb(): typeof db {
  return patched(LOCAL_DB_PATCH) ? localDb : db;
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
  });
}
