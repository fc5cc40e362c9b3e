/** The words people receive. No secret other than the code the message exists to carry. */
import type { CodePurpose } from '../activities/codes';

export interface Rendered {
  subject: string;
  text: string;
}

const minutes = (ms: number) => {
  if (ms >= 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000} day${ms === 86_400_000 ? '' : 's'}`;
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000} hour${ms === 3_600_000 ? '' : 's'}`;
  if (ms >= 60_000) return `${Math.round(ms / 60_000)} minutes`;
  return `${Math.max(1, Math.round(ms / 1000))} seconds`;
};

const CODE_PURPOSE_TEXT: Record<CodePurpose, string> = {
  password_reset: 'to reset your password',
  sign_up: 'to create your account',
  verify_identity: 'to verify your identity',
  confirm_new_contact: 'to confirm your new phone number or email address',
};

export function codeMessage(purpose: CodePurpose, code: string, ttlMs: number): Rendered {
  return {
    subject: `Your verification code: ${code}`,
    text: `Your verification code is ${code}. Use it ${CODE_PURPOSE_TEXT[purpose]}. It expires in ${minutes(ttlMs)}. If you did not ask for it, ignore this message: nothing changes without the code.`,
  };
}

export function passwordChangedMessage(at: Date): Rendered {
  return {
    subject: 'Your password was changed',
    text: `The password of your account was changed on ${at.toISOString()}. Every device was signed out. If this was not you, start "Forgot password?" at once or contact support.`,
  };
}

export function recoveryHoldMessage(holdUntil: string, vetoUrl: string): Rendered {
  return {
    subject: 'Someone is resetting your password',
    text: `A password reset for your account was completed without a code sent to you. The new password takes effect at ${holdUntil}. If this was you, do nothing. If it was not, cancel it now: ${vetoUrl}`,
  };
}

export function signUpExistsMessage(resetUrl: string): Rendered {
  return {
    subject: 'Someone tried to create an account with your details',
    text: `Someone tried to create a new account with your phone number or email address, which already belongs to your account. No new account was created. If it was you, sign in, or reset your password: ${resetUrl}`,
  };
}

export function supportReceivedMessage(caseId: string): Rendered {
  return {
    subject: `We received your request (${caseId})`,
    text: `We received your account recovery request ${caseId}. A person will check the account ID and the device IMEI you gave. We will write to this address with the result.`,
  };
}

export function supportRejectedMessage(caseId: string, note: string): Rendered {
  return {
    subject: `Your recovery request ${caseId} was declined`,
    text: `We could not confirm that you own the account in request ${caseId}, so we cannot let you in this way.${note ? ` The reviewer wrote: "${note}".` : ''} If you still have the phone, check the IMEI (dial *#06#) and try again, or write to support.`,
  };
}

export function supportExpiredMessage(caseId: string): Rendered {
  return {
    subject: `Your recovery request ${caseId} has lapsed`,
    text: `Nobody could review request ${caseId} in time, so it has lapsed and nothing changed on the account. Please start "Forgot password?" again if you still need help.`,
  };
}

export function contactChangedMessage(what: 'phone' | 'email', hint: string): Rendered {
  return {
    subject: `Your ${what === 'phone' ? 'phone number' : 'email address'} was changed`,
    text: `The ${what === 'phone' ? 'phone number' : 'email address'} of your account was changed to ${hint}. If this was not you, reset your password at once.`,
  };
}

export function contactChangeHoldMessage(what: 'phone' | 'email', hint: string, holdUntil: string, vetoUrl: string): Rendered {
  const thing = what === 'phone' ? 'phone number' : 'email address';
  return {
    subject: `Someone is changing your ${thing}`,
    text: `A change of your account's ${thing} to ${hint} was confirmed without a code sent to you (security questions or support). It takes effect at ${holdUntil}. If this was you, do nothing. If it was not, cancel it now: ${vetoUrl}`,
  };
}

export function securityQuestionsChangedMessage(at: Date): Rendered {
  return {
    subject: 'Your security questions were changed',
    text: `The security questions and answers of your account were changed on ${at.toISOString()}. If this was not you, reset your password at once: whoever did it knows your password.`,
  };
}

export function deviceBoundMessage(model: string, imeiLast4: string, at: Date): Rendered {
  return {
    subject: 'A device was bound to your account',
    text: `The device ${model} (IMEI ending ${imeiLast4}) was bound to your account on ${at.toISOString()}: it cannot be factory reset without your password now. If this was not you, remove it from your account and reset your password.`,
  };
}
