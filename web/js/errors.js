/**
 * Every error `code` the API answers with (api/problem.ts, shared/API.md), as a sentence a person can act on.
 * `describe(error)` takes an ApiError (or anything with a `code`) and adds the numbers the answer carried:
 * attempts left, Retry-After, the end of a lockout, the reasons a password was refused.
 */

/** Whole seconds → "45 seconds", "3 minutes", "2 hours". */
export function duration(seconds) {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 90) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} minute${m === 1 ? '' : 's'}`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} hour${h === 1 ? '' : 's'}`;
  const d = Math.round(h / 24);
  return `${d} day${d === 1 ? '' : 's'}`;
}

/** "14:05" today, else "3 Mar, 14:05", in the person's own time zone. */
export function clock(iso) {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return '';
  const sameDay = t.toDateString() === new Date().toDateString();
  const time = t.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return sameDay ? time : `${t.toLocaleDateString([], { day: 'numeric', month: 'short' })}, ${time}`;
}

const attempts = (n) => (typeof n === 'number' ? (n === 0 ? ' No attempts are left.' : ` ${n} attempt${n === 1 ? '' : 's'} left.`) : '');
const wait = (s) => (s ? ` Try again in ${duration(s)}.` : ' Try again a little later.');

/** Why a password was refused (the `reasons` of 422 password_weak). */
export const PASSWORD_REASONS = {
  too_short: 'Use at least 8 characters.',
  too_long: 'Use at most 128 characters.',
  too_common: 'It is too easy to guess: add a few uncommon words.',
  same_as_identifier: 'It must not be your email, phone number or account ID.',
};

/** Field names in validation errors ("body.imei") → what the person calls them. */
const FIELDS = {
  identifier: 'Email, phone or account ID',
  phone: 'Phone number',
  email: 'Email address',
  code: 'Code',
  answer: 'Answer',
  answers: 'Answers',
  accountId: 'Account ID (10 digits)',
  imei: 'IMEI (15 digits)',
  contactEmail: 'Contact email',
  message: 'Message',
  password: 'Password',
  confirmation: 'Confirmation',
  model: 'Device name',
  attestation: 'Device attestation',
};

/** code → (details) → sentence. Keep in step with PROBLEMS in api/problem.ts (the browser test checks). */
export const MESSAGES = {
  validation_failed: (e) => {
    if ((e.reasons ?? []).includes('same_as_current')) return 'That is already the one on your account. Enter a different one.';
    const fields = (e.errors ?? []).map((x) => FIELDS[String(x.path ?? '').split('.').pop()]).filter(Boolean);
    return fields.length ? `Please check: ${[...new Set(fields)].join(', ')}.` : 'Some of what you entered is not valid. Please check it.';
  },
  malformed_json: () => 'Your browser sent something the service could not read. Reload the page and try again.',
  unsupported_media_type: () => 'Your browser sent something the service could not read. Reload the page and try again.',
  payload_too_large: () => 'That is too much text. Please shorten it.',
  not_found: () => 'That page or action does not exist. Reload the page and try again.',
  method_not_allowed: () => 'That action is not possible here. Reload the page and try again.',
  flow_not_found: () => 'This request was not found. It may have ended or the link is incomplete. Please start again.',
  step_mismatch: () => 'This step is already done or no longer possible. The page now shows where your request stands.',
  captcha_invalid: () => 'The characters did not match the picture. Here is a new picture: please try again.',
  code_invalid: (e) => `That code is not right.${attempts(e.attemptsLeft)}`,
  code_expired: () => 'That code has expired. Ask for a new code.',
  code_exhausted: () => 'Too many wrong codes: this code no longer works. Ask for a new code.',
  resend_too_soon: (e) => `Please wait before asking for another code.${e.retryAfter ? ` You can ask again in ${duration(e.retryAfter)}.` : ''}`,
  resend_limit: () => 'No more codes can be sent for this request. Use "Not working?" or start again later.',
  answers_invalid: (e) => `At least one answer is not right.${attempts(e.attemptsLeft)}${e.attemptsLeft === 0 ? ' You can still ask support for help.' : ''}`,
  password_mismatch: () => 'The two passwords differ. Type the same password in both fields.',
  password_weak: (e) => `Please choose another password. ${(e.reasons ?? []).map((r) => PASSWORD_REASONS[r]).filter(Boolean).join(' ') || 'It is too easy to guess.'}`.trim(),
  token_invalid: () => 'This cancel link is not valid. Use the newest link from the message we sent, exactly as it is.',
  consent_required: () => 'To create an account, accept both the Privacy Policy and the User Agreement.',
  document_outdated: () => 'A document changed while you were reading it. Please read the current version and accept again.',
  phone_taken: () => 'That phone number belongs to another account. Use another number.',
  email_taken: () => 'That email address belongs to another account. Use another address.',
  too_many_attempts: (e) => `Too many wrong codes or answers were tried for this account.${wait(e.retryAfter)}`,
  rate_limited: (e) => `Too many requests from here.${wait(e.retryAfter)}`,
  invalid_credentials: () => 'The account or the password is not right.',
  unauthorized: () => 'You are not signed in, or your session has ended. Please sign in.',
  reauth_required: () => 'For your safety, sign in again before you change your sign-in details, security questions or devices.',
  account_locked: (e) => {
    const left = e.lockedUntil ? (Date.parse(e.lockedUntil) - Date.now()) / 1000 : e.retryAfter;
    const when = left > 0 ? ` Try again in ${duration(left)}${e.lockedUntil ? ` (after ${clock(e.lockedUntil)})` : ''},` : ' Try again later,';
    return `This account is locked for a while after too many wrong passwords.${when} or reset your password.`;
  },
  imei_invalid: () => 'That is not a valid IMEI. It has 15 digits: dial *#06# on the phone to see it.',
  attestation_invalid: () => 'The device attestation does not match this IMEI. Copy it again from the phone, exactly as the phone shows it.',
  device_bound: () => 'That device is already bound to an account. Remove it from that account first.',
  device_not_found: () => 'That device is no longer on this account.',
  case_not_found: () => 'That support case was not found.',
  case_decided: () => 'That support case was already decided.',
  case_unverifiable: () => 'That support case names no existing account; it can only be declined.',
  idempotency_conflict: () => 'This request was already sent with different details. Reload the page and try again.',
  not_ready: () => 'The service is starting up or partly unavailable. Please try again in a minute.',
  temporarily_unavailable: (e) => `The service is briefly unavailable.${wait(e.retryAfter)}`,
  internal: () => 'Something went wrong on our side. Please try again; if it keeps happening, contact support.',
  // Not from the API: the browser could not reach it, or it answered something unexpected.
  network: () => 'The service cannot be reached. Check your connection and try again.',
  unknown: () => 'Something unexpected happened. Please try again.',
};

/** The sentence for an error; never raw JSON, never a stack trace. */
export function describe(error) {
  const e = error && typeof error === 'object' ? error : {};
  const body = e.body && typeof e.body === 'object' ? e.body : {};
  const details = {
    errors: body.errors,
    attemptsLeft: body.attemptsLeft,
    reasons: body.reasons,
    lockedUntil: body.lockedUntil,
    retryAfter: e.retryAfter ?? body.retryAfterSeconds,
  };
  const make = MESSAGES[e.code] ?? MESSAGES.unknown;
  try {
    return make(details);
  } catch {
    return MESSAGES.unknown();
  }
}
