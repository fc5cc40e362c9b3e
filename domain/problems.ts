/**
 * Every refusal the service answers with: a stable machine `code` that clients branch on, its HTTP status and
 * title. Domain rules raise them (problem(code)); the API sends them as RFC 9457 problem details (api/problem.ts).
 */

export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly title: string,
    readonly detail?: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(`${code}: ${detail ?? title}`);
  }
}

/** Every error code the API answers with, its status and title (the OpenAPI document lists them too). */
export const PROBLEMS = {
  validation_failed: [422, 'The request is not valid'],
  malformed_json: [400, 'The body is not valid JSON'],
  unsupported_media_type: [415, 'Send JSON (Content-Type: application/json)'],
  payload_too_large: [413, 'The body is larger than 16 KiB'],
  not_found: [404, 'No such endpoint'],
  method_not_allowed: [405, 'Method not allowed'],
  flow_not_found: [404, 'No such flow'],
  step_mismatch: [409, 'The flow is not at a step that accepts this'],
  captcha_invalid: [422, 'The captcha answer is wrong; fetch a new picture'],
  code_invalid: [422, 'The code is wrong'],
  code_expired: [422, 'The code has expired; ask for a new one'],
  code_exhausted: [422, 'Too many wrong codes; ask for a new one'],
  resend_too_soon: [429, 'Wait before asking for another code'],
  resend_limit: [429, 'No more codes can be sent in this flow'],
  answers_invalid: [422, 'The answers are not right'],
  password_mismatch: [422, 'The password and its confirmation differ'],
  password_weak: [422, 'Choose another password'],
  token_invalid: [422, 'The cancel link is not valid'],
  consent_required: [422, 'Both documents must be accepted to continue'],
  document_outdated: [409, 'A document changed since it was shown; read it again'],
  phone_taken: [409, 'That phone number belongs to another account'],
  email_taken: [409, 'That email address belongs to another account'],
  too_many_attempts: [429, 'Too many wrong attempts; try again later'],
  rate_limited: [429, 'Too many requests; try again later'],
  invalid_credentials: [401, 'The account or password is wrong'],
  unauthorized: [401, 'Sign in first'],
  reauth_required: [403, 'Sign in again to do this'],
  account_locked: [423, 'The account is locked for a while after too many wrong passwords'],
  imei_invalid: [422, 'That is not a valid IMEI'],
  attestation_invalid: [422, 'The device did not prove it is this device'],
  device_bound: [409, 'That device is bound to an account'],
  device_not_found: [404, 'No such device on this account'],
  case_not_found: [404, 'No such support case'],
  case_decided: [409, 'The case was already decided'],
  case_unverifiable: [409, 'The case names no existing account; it can only be rejected'],
  idempotency_conflict: [409, 'That Idempotency-Key was used for a different request'],
  not_ready: [503, 'A dependency is not reachable'],
  temporarily_unavailable: [503, 'The service is briefly unavailable; retry'],
  internal: [500, 'Something went wrong on our side'],
} as const satisfies Record<string, readonly [number, string]>;

export type ProblemCode = keyof typeof PROBLEMS;

export function problem(code: ProblemCode, detail?: string, extra?: Record<string, unknown>, headers?: Record<string, string>): Problem {
  const [status, title] = PROBLEMS[code];
  return new Problem(status, code, title, detail, extra, headers);
}
