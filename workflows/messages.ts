/**
 * The messages every flow understands, shared by the workflows (which handle them) and the API
 * (which sends them). Nothing secret travels in these: codes and captcha answers arrive as HMAC
 * digests, new passwords as argon2 hashes, security answers sealed for the activity that checks them.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { ApplicationFailure, defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { FoundForCode } from '../domain/recovery';

export type FlowKind = 'password_reset' | 'sign_up' | 'change_phone' | 'change_email';
export type FlowStatus = 'active' | 'completed' | 'expired' | 'cancelled' | 'rejected';
export type FlowStep =
  | 'captcha'
  | 'code'
  | 'security_questions'
  | 'support'
  | 'support_review'
  | 'new_password'
  | 'hold'
  | 'consent'
  | 'password'
  | 'new_phone'
  | 'confirm_new_phone'
  | 'new_email'
  | 'confirm_new_email'
  | 'done';
export type Channel = 'sms' | 'email';

/** The public Flow object of ../shared/API.md. Fields that do not apply to the current step are omitted. */
export interface Flow {
  flowId: string;
  kind: FlowKind;
  status: FlowStatus;
  step: FlowStep;
  expiresAt?: string;
  channel?: Channel;
  destinationHint?: string;
  codeExpiresAt?: string;
  attemptsLeft?: number;
  resendAvailableAt?: string;
  resendsLeft?: number;
  questions?: { id: string; text: string }[];
  documents?: { id: string; version: string }[];
  supportCaseId?: string;
  holdUntil?: string;
  accountId?: string;
  session?: { token: string; expiresAt: string };
  /** The new phone or email, masked (step=confirm_new_phone / confirm_new_email). */
  newDestinationHint?: string;
  /** A hold of this many seconds follows this step: the flow was proven without a channel on file (security answers, support). */
  holdSeconds?: number;
  /** Why the flow ended, when it ended other than completed (a stable code, e.g. "superseded"). */
  reason?: string;
}

/** Durations (ms) and limits, passed in as input so tests can use seconds. */
export interface FlowSettings {
  codeTtlMs: number;
  resendCooldownMs: number;
  maxResends: number;
  maxCodeAttempts: number;
  maxAnswerAttempts: number;
  flowTtlMs: number;
  supportReviewTtlMs: number;
  recoveryHoldMs: number;
}

/** What an update answers: the Flow after it, or a stable error code with what the client needs to act on it. */
export type FlowResult = { ok: true; flow: Flow } | { ok: false; flow: Flow; error: FlowError; attemptsLeft?: number; retryAfterMs?: number; reasons?: string[] };

export type FlowError =
  | 'captcha_invalid'
  | 'code_invalid'
  | 'code_expired'
  | 'code_exhausted'
  | 'resend_too_soon'
  | 'resend_limit'
  | 'answers_invalid'
  | 'token_invalid'
  | 'too_many_attempts'
  | 'validation_failed'
  | 'consent_required'
  | 'document_outdated'
  | 'phone_taken'
  | 'email_taken';

/** The failure types a flow refuses an update with; the API maps them by type (api/flows-client.ts), never by message. */
export const STEP_MISMATCH = 'step_mismatch';
export const FLOW_ENDED = 'flow_ended';

/** The refusal of an action the current step does not accept (from a validator: nothing changes, nothing is recorded). */
export function stepMismatch(why = 'The flow is not at a step that accepts this.'): ApplicationFailure {
  return ApplicationFailure.create({ type: STEP_MISMATCH, message: why, nonRetryable: true });
}

/** The refusal of any action once the flow has ended. */
export function flowEnded(): ApplicationFailure {
  return ApplicationFailure.create({ type: FLOW_ENDED, message: 'The flow has ended.', nonRetryable: true });
}

// Queries
export const flowQuery = defineQuery<Flow>('flow');
/** Not part of the public Flow (API use only): who may drive it, which account it is about, and what a new password must not equal. */
export interface FlowSubject {
  ownerAccountId?: string;
  subjectAccountId?: string;
  identifiers: string[];
  /** The identifier the flow was started with (a reset's, a sign-up's contact): guesses count against it too. */
  identifier?: string;
  /** Where the flow stands, so one query answers both (the password step checks the step and the identifiers). */
  status?: FlowStatus;
  step?: FlowStep;
}
export const flowSubjectQuery = defineQuery<FlowSubject>('flowSubject');

// Updates shared by every flow kind
/** A new picture's answer digest: sent by the API before it judged the captcha itself (kept for flows that replay it). */
export const newCaptchaUpdate = defineUpdate<FlowResult, [{ answerDigest: string }]>('newCaptcha');
/**
 * A captcha answer. Since the API judges the captcha itself (domain/captcha.ts), it sends only passed ones, with
 * `passed: true`; flows that took pictures by newCaptcha (before that) compare the digest. For a reset the API
 * has also looked the identifier up, claimed its active reset and issued the code (`found`, codeId included).
 */
export interface CaptchaAnswer {
  answerDigest: string;
  passed?: boolean;
  found?: FoundForCode & { codeId: string };
}
export const submitCaptchaUpdate = defineUpdate<FlowResult, [CaptchaAnswer]>('submitCaptcha');
export const submitCodeUpdate = defineUpdate<FlowResult, [{ codeDigest: string }]>('submitCode');
export const resendCodeUpdate = defineUpdate<FlowResult, []>('resendCode');
export const notWorkingUpdate = defineUpdate<FlowResult, []>('notWorking');
export const submitAnswersUpdate = defineUpdate<FlowResult, [{ sealedAnswers: string }]>('submitAnswers');
export const submitSupportUpdate = defineUpdate<FlowResult, [{ accountId: string; imei: string; contactEmail: string; message?: string }]>('submitSupport');
export const setPasswordUpdate = defineUpdate<FlowResult, [{ passwordHash: string }]>('setPassword');
export const vetoUpdate = defineUpdate<FlowResult, [{ tokenDigest: string }]>('veto');
export const cancelUpdate = defineUpdate<FlowResult, []>('cancel');

/** Another start for the same account took over; this flow ends cancelled. */
export const supersededSignal = defineSignal<[{ byFlowId: string }]>('superseded');

// Sign up and the change flows
/** Answers once the flow shows its first step (a start's 201 carries the Flow at `code`, code fields included). */
export const firstStepUpdate = defineUpdate<FlowResult, []>('firstStep');
/** A document the user accepts at sign-up, at the version shown (lib/documents.ts). */
export interface LegalDocument {
  id: string;
  version: string;
}
export const consentUpdate = defineUpdate<FlowResult, [{ accept: boolean; syncEnabled: boolean; versions: Record<string, string> }]>('consent');
/** The new phone (E.164, normalised by the API) or email (lower-cased); a new one replaces the one shown for confirmation. */
export const newPhoneUpdate = defineUpdate<FlowResult, [{ phone: string }]>('newPhone');
export const newEmailUpdate = defineUpdate<FlowResult, [{ email: string }]>('newEmail');
/** The "OK" in the pop-up: send the code to the new phone or email. */
export const confirmUpdate = defineUpdate<FlowResult, []>('confirm');
/** Ends a pending change from outside (sign-out, a completed password reset): `cancelled` with `reason`. */
export const cancelFlowSignal = defineSignal<[{ reason: string }]>('cancelFlow');

// The support review (a child workflow per case)
export interface SupportDecision {
  approved: boolean;
  reviewer: string;
  note: string;
  decidedAt: string;
}
export const decideSignal = defineSignal<[SupportDecision]>('decide');

// Search attributes, registered on the dev server (scripts/stack/temporal.ts) and in docker-compose.yml
export const FLOW_KIND = defineSearchAttributeKey('FlowKind', SearchAttributeType.KEYWORD);
export const FLOW_STEP = defineSearchAttributeKey('FlowStep', SearchAttributeType.KEYWORD);
export const FLOW_STATUS = defineSearchAttributeKey('FlowStatus', SearchAttributeType.KEYWORD);
export const FLOW_STEP_SINCE = defineSearchAttributeKey('FlowStepSince', SearchAttributeType.DATETIME);

/** A flow's search attributes at `step` (FlowState upserts them at each move; a start gives the first step's). */
export function flowAttributes(kind: FlowKind, step: FlowStep, status: FlowStatus, since: Date) {
  return [
    { key: FLOW_KIND, value: kind },
    { key: FLOW_STEP, value: step },
    { key: FLOW_STATUS, value: status },
    { key: FLOW_STEP_SINCE, value: since },
  ];
}

/** Workflow ids say what they are: `password-reset/<flowId>`. The flowId's prefix names the kind. */
export const KIND_PREFIX: Record<FlowKind, string> = {
  password_reset: 'rst_',
  sign_up: 'sgn_',
  change_phone: 'chp_',
  change_email: 'che_',
};
export const KIND_SLUG: Record<FlowKind, string> = {
  password_reset: 'password-reset',
  sign_up: 'sign-up',
  change_phone: 'change-phone',
  change_email: 'change-email',
};
export function kindOfFlowId(flowId: string): FlowKind | undefined {
  if (!/^[a-z]{3}_[A-Za-z0-9_-]{22}$/.test(flowId)) return undefined;
  return (Object.keys(KIND_PREFIX) as FlowKind[]).find((k) => flowId.startsWith(KIND_PREFIX[k]));
}
export function workflowIdOf(flowId: string): string | undefined {
  const kind = kindOfFlowId(flowId);
  return kind && `${KIND_SLUG[kind]}/${flowId}`;
}

/** What a sign-up is for: a phone (E.164) or an email. */
export interface SignUpContact {
  kind: 'phone' | 'email';
  value: string;
}

/** The documents a sign-up accepted (their versions), when, and whether cloud sync is on. */
export interface SignUpConsent {
  privacyPolicy: string;
  userAgreement: string;
  acceptedAt: string;
  syncEnabled: boolean;
}
