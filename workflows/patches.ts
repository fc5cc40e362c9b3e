/**
 * Every behaviour change of a flow, by patch id, and how a flow asks for one.
 *
 * A flow that was running when a change shipped must replay the way it ran, so each change is asked with
 * `patched(id)`: in the new flows' histories that records a marker and a TemporalChangeVersion search-attribute
 * update, and an old flow's history has none. Each patch a flow meets costs it those two events (and one
 * visibility write). Flows started since SETTLED_PATCH ask that one patch instead of every one of
 * SETTLED_PATCHES: one marker for all of them. The worker decides (the marker records what it did), so a
 * history written by an older worker replays as it ran, whatever the API that started the flow.
 */
import { patched } from '@temporalio/workflow';

/**
 * Flows started since this patch keep one timer for their deadline instead of one per step (FlowState.until);
 * a reset also takes its look-up, claim and code from the API with the passed captcha (password-reset.ts), and
 * releases its claim with the new password.
 */
export const FEWER_TASKS_PATCH = 'fewer-tasks-per-flow';

/**
 * Flows started since this patch look up after the captcha, in one activity, claim the one active reset
 * of the identifier (not of the account), do not wait for the flow they supersede, and leave counting
 * wrong guesses to the API.
 */
export const ONE_LOOKUP_PATCH = 'one-lookup-after-the-captcha';

/** Before this patch a reset's release went to the subject, which an approved support case naming another account had changed. */
export const RELEASE_CLAIMED_PATCH = 'release-the-claimed-reset-marker';

/**
 * Flows started since this patch show the code step before the code is issued (the update that moved
 * them there answers in one workflow task, with or without an account); before it, after.
 */
export const SHOW_BEFORE_ISSUE_PATCH = 'code-step-shown-before-the-code-is-issued';

/**
 * Since this patch a security-answer attempt is taken before the answers are checked (AnswerAttempts), so
 * submissions that arrive together cannot check more answers than the flow allows.
 */
export const ANSWERS_TAKEN_FIRST_PATCH = 'answer-attempts-taken-before-the-check';

/**
 * Change flows started since this patch hold a change proven by security answers or support (not by a code
 * to a channel on file) before making it, as a reset does (before it the change was made at once), and
 * leave counting wrong guesses to the API (before it an activity counted each one a second time).
 */
export const CHANGE_RULES_PATCH = 'hold-unproven-changes-and-count-guesses-in-the-api';

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

/**
 * Flows started since this patch take every patch of SETTLED_PATCHES without asking each, and those the API
 * started with their first search attributes do not write them again (FlowState).
 */
export const SETTLED_PATCH = 'settled-patches-1';

/** What a flow with SETTLED_PATCH takes without asking. */
export const SETTLED_PATCHES: readonly string[] = [FEWER_TASKS_PATCH, ONE_LOOKUP_PATCH, SHOW_BEFORE_ISSUE_PATCH, ANSWERS_TAKEN_FIRST_PATCH, CHANGE_RULES_PATCH, REGULAR_DB_PATCH];

/** Whether this flow runs with SETTLED_PATCH (asked first, by FlowState: a new flow records this marker alone). */
export const settled = (): boolean => patched(SETTLED_PATCH);

/** Whether this flow runs with patch `id`: one of the settled ones by SETTLED_PATCH, else as `patched(id)`. */
export function hasPatch(id: string): boolean {
  return (SETTLED_PATCHES.includes(id) && settled()) || patched(id);
}
