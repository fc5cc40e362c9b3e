/**
 * Recorded workflow histories (one JSON file per scenario, written by scripts/record-histories.ts),
 * replayed against the current workflow code by test/replay.test.ts.
 *
 * The histories are stored exactly as the server returned them, payloads encrypted by our codec.
 * They are recorded with FIXTURE_PAYLOAD_KEY, a key that exists only for these fixtures (never set it
 * anywhere else), so the replay decodes them with the same EncryptionCodec the worker uses. We chose
 * this over recording without the codec because (1) the recording runs the real API and worker
 * unmodified, (2) the fixtures then also guard the codec: a change to lib/codec.ts that can no longer
 * decode payloads already stored in Temporal fails the replay, just as it would fail every running
 * flow, and (3) nothing but the fixtures' own fake test accounts is in them. To read one, decode it
 * with that key: `PAYLOAD_ENCRYPTION_KEY=<the key below> npm run ops -- flows replay --file <file> --json`
 * replays it, and the codec server started with that key decodes its payloads for the Temporal UI.
 *
 * support-review.v1-*.json were recorded once, by hand, with the supportReview of commit 3d21c67 (before
 * patched('support-review-closes-case')): they show that runs started by the old code still replay.
 * The recorder cannot re-create them; never re-record or delete them.
 *
 * The same holds for password-reset.v1-*, sign-up.v1-happy, change-phone.v1-happy and change-email.v1-happy:
 * recorded by commit 4fd4d76, before patched('short-db-work-as-local-activities') (workflows/activities-proxy.ts),
 * when every database call was a regular activity. And for password-reset.v2-*, sign-up.v2-happy,
 * change-phone.v2-happy and change-email.v2-happy: recorded by commit 30c6294, with the short database work
 * as local activities, before patched('short-db-work-as-activities-again') made it regular activities again.
 * And for password-reset.v3-*, sign-up.v3-happy, change-phone.v3-happy and change-email.v3-happy: recorded by
 * commit 97c0fe3, before patched('code-step-shown-before-the-code-is-issued') (workflows/code-step.ts),
 * patched('one-lookup-after-the-captcha') (workflows/password-reset.ts),
 * patched('hold-unproven-changes-and-count-guesses-in-the-api') (workflows/change-contact.ts) and
 * patched('answer-attempts-taken-before-the-check') (workflows/answer-attempts.ts).
 * And for password-reset.v7-*, sign-up.v7-*, change-phone.v7-* and change-email.v7-*: recorded by the code of 7a9bd5e,
 * before patched('settled-patches-1') (workflows/patches.ts): those flows ask each patch and upsert their first step.
 * password-reset.v7-happy-started-with-attributes is constructed, not recorded: v7-happy with the search attributes
 * the API now starts a flow with, i.e. a flow a new API started and an older worker ran. (The v6 histories were the
 * backed-out courier's and went with it.)
 */
import fs from 'node:fs';
import path from 'node:path';

/** `id:base64` of 32 bytes: test fixtures only. */
export const FIXTURE_PAYLOAD_KEY = 'fixtures:' + Buffer.from('account-recovery-history-fixture').toString('base64');

export const HISTORIES_DIR = __dirname;

export interface HistoryFixture {
  /** The file name without .json: `<workflow kind>.<case>`, e.g. password-reset.support-approved. */
  name: string;
  description: string;
  workflowId: string;
  workflowType: string;
  recordedAt: string;
  /** The key id the payloads are encrypted with (FIXTURE_PAYLOAD_KEY's). */
  payloadKeyId: string;
  /** The history as `temporal workflow show -o json` / historyToJSON writes it. */
  history: { events: unknown[] };
}

export function fixtureFiles(): string[] {
  return fs
    .readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(HISTORIES_DIR, f));
}

export function readFixture(file: string): HistoryFixture {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as HistoryFixture;
}
