/**
 * Sign up, as seed 002 tells it:
 *
 *   code (to the phone or email given) → captcha → consent (privacy policy, user agreement) → password → done, signed in
 *   while the hour's SIGNUP_MESSAGE_BUDGET is spent (SMS pumping): captcha → code → consent → …
 *
 * A phone or email that already has an account walks the same steps with the same answers; its
 * owner gets "someone tried to create an account" instead of a code (activities/codes.ts decides
 * that where the code is issued), so no code is ever accepted. Of two sign-ups racing for one phone
 * exactly one creates the account; the other ends `cancelled` with reason `phone_taken`.
 *
 * The session is not made here: the API creates it when the password completes the flow, so its
 * token never enters history.
 */
import { condition, setHandler } from '@temporalio/workflow';
import { db } from './activities-proxy';
import { FlowState } from './flow-state';
import { AccountAttempts, CodeStep } from './code-step';
import { CaptchaStep } from './identity-proof';
import {
  stepMismatch,
  consentUpdate,
  firstStepUpdate,
  resendCodeUpdate,
  setPasswordUpdate,
  submitCodeUpdate,
  type Flow,
  type FlowError,
  type FlowSettings,
  type LegalDocument,
} from './messages';
import type { SignUpConsent, SignUpContact } from './messages';

export interface SignUpInput {
  flowId: string;
  contact: SignUpContact;
  /** The contact, masked (the API masks it: the workflow bundle carries no phone-number library). */
  destinationHint: string;
  settings: FlowSettings;
  /** The documents to accept, at the versions current when the flow started (lib/documents.ts). */
  documents: LegalDocument[];
  /** The whole-flow deadline the API already promised the client (epoch ms). */
  expiresAt: number;
  /** The hour's sign-up message budget is spent (SMS pumping): the captcha comes before the code. */
  captchaFirst?: boolean;
}

/** The Flow of a completed sign-up also names the new account. */
class SignUpState extends FlowState {
  accountId?: string;

  override view(): Flow {
    const flow = super.view();
    if (this.accountId) flow.accountId = this.accountId;
    return flow;
  }
}

export async function signUp(input: SignUpInput): Promise<Flow> {
  const { flowId, settings, contact } = input;
  const flow = new SignUpState(flowId, 'sign_up', input.captchaFirst ? 'captcha' : 'code', input.expiresAt);
  const codes = new CodeStep(
    flow,
    settings,
    { purpose: 'sign_up', channel: contact.kind === 'phone' ? 'sms' : 'email', destinationHint: input.destinationHint, to: contact.value, deliverable: true },
    settings.codeTtlMs,
    new AccountAttempts(undefined), // no account to count against (and an owner's count must not tell that one exists)
  );
  const captcha = new CaptchaStep(flow);
  let codeSent = false;
  let consent: SignUpConsent | undefined;
  let passwordHash: string | undefined;
  let lost: FlowError | undefined;

  flow.serve({
    subject: () => ({ identifiers: [contact.value], identifier: contact.value }),
    cancelAt: ['code', 'captcha', 'consent', 'password'],
    refuseCancel: () => {
      if (passwordHash !== undefined) throw stepMismatch(); // the account is being created
    },
  });
  setHandler(firstStepUpdate, async () => {
    await condition(() => codeSent || !!input.captchaFirst || !flow.active);
    return flow.ok();
  });
  const atCode = (..._args: unknown[]) => {
    flow.expect('code')();
    if (!codeSent) throw stepMismatch(); // the code is still being issued
  };
  setHandler(submitCodeUpdate, ({ codeDigest }) => codes.submit(codeDigest), { validator: atCode });
  setHandler(resendCodeUpdate, () => codes.resend(), { validator: atCode });
  setHandler(
    consentUpdate,
    async ({ accept, syncEnabled, versions }) => {
      if (!accept) return flow.fail('consent_required');
      if (input.documents.some((d) => versions[d.id] !== d.version)) return flow.fail('document_outdated');
      consent = {
        privacyPolicy: versions['privacy-policy']!,
        userAgreement: versions['user-agreement']!,
        acceptedAt: new Date().toISOString(),
        syncEnabled,
      };
      await flow.movedOn('consent');
      return flow.ok();
    },
    { validator: flow.expect('consent') },
  );
  setHandler(
    setPasswordUpdate,
    async (p) => {
      passwordHash = p.passwordHash;
      await flow.movedOn('password');
      return lost ? flow.fail(lost) : flow.ok();
    },
    {
      validator: (..._args: unknown[]) => {
        flow.expect('password')();
        if (passwordHash !== undefined) throw stepMismatch(); // one password; the account is being created
      },
    },
  );

  return flow.run(async () => {
    // While the hour's message budget is spent (SMS pumping), a human answers the captcha before anything is sent.
    if (input.captchaFirst) await flow.until(() => captcha.passed);

    // 1. A code to the phone or email given (for one that has an account: a notice to its owner instead).
    await codes.send();
    codeSent = true;
    await flow.until(() => codes.verified);

    if (!input.captchaFirst) {
      // 2. Captcha: a human, not a bot creating accounts.
      flow.goTo('captcha');
      await flow.until(() => captcha.passed);
    }

    // 3. Consent to the privacy policy and the user agreement, at the versions shown; sync on or off.
    flow.goTo('consent', { documents: input.documents });
    await flow.until(() => consent !== undefined);

    // 4. The password (an argon2 hash: the API never lets the plain text reach us).
    flow.goTo('password');
    await flow.until(() => passwordHash !== undefined);

    // 5. The account, with a new 10-digit id; the phone or email claimed uniquely on the way.
    const created = await db.createSignUpAccount({ flowId, contact, passwordHash: passwordHash!, consent: consent! });
    if ('taken' in created) {
      lost = created.taken === 'phone' ? 'phone_taken' : 'email_taken';
      flow.end('cancelled', lost);
    } else {
      flow.accountId = created.accountId;
      flow.end('completed');
    }
  });
}
