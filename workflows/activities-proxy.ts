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
 * Flows started between this patch and REGULAR_DB_PATCH ran their short reads and writes of our own
 * database (look-ups, the active-flow marker, issuing a code, counting a failure) as local activities.
 * Kept so that those histories still replay the way they ran.
 */
export const LOCAL_DB_PATCH = 'short-db-work-as-local-activities';

/**
 * Flows started since this patch run that work as regular activities again. With local activities, an
 * update arriving while another update's handler waited on one (a wrong code being counted while the
 * user pressed cancel) made the SDK (core of @temporalio/worker 1.24.0) record the local activity's
 * marker in one workflow task and hand its result to the workflow in the next. Such a history cannot be
 * replayed ("UpdateMachine in state CompletedCommandCreated says the transition is invalid"), so a query
 * on the ended flow failed and an open flow evicted from the cache would have been stuck; in another
 * interleaving a workflow task got lost and the flow stalled for the 10 s workflow task timeout.
 * A regular activity's result is an event of its own, which replays in the order it happened.
 */
export const REGULAR_DB_PATCH = 'short-db-work-as-activities-again';

/** `db` for short database work, as each flow ran it: regular activities, except in flows started between the two patches. */
export function quickDb(): typeof db {
  if (patched(REGULAR_DB_PATCH)) return db;
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
    // Through the task queue, not handed back with the workflow task that schedules it: started eagerly, a code's
    // delivery ran alongside the answer to the captcha and made it ~3 ms slower for a real account than for an
    // unknown identifier (test/attacks.test.ts 6a).
    allowEagerDispatch: false,
  });
}
