/**
 * Steps the sign-up and change flows share: the captcha, and "verify your identity" with its
 * "Not working?" fallbacks. They are the same steps forgot password walks (password-reset.ts keeps
 * its own copy so that its recorded histories replay unchanged).
 */
import { setHandler } from '@temporalio/workflow';
import { db, slow } from './activities-proxy';
import { FlowState, sameDigest } from './flow-state';
import { AccountAttempts, CodeStep } from './code-step';
import { AnswerAttempts } from './answer-attempts';
import { awaitReview, maskEmailHint, type SupportForm } from './password-reset';
import {
  STEP_MISMATCH,
  newCaptchaUpdate,
  notWorkingUpdate,
  submitAnswersUpdate,
  submitCaptchaUpdate,
  submitSupportUpdate,
  type Channel,
  type FlowSettings,
} from './messages';

/** Text in a picture: a fresh picture voids the previous answer, and each picture takes one answer. */
export class CaptchaStep {
  passed = false;
  private answerDigest?: string;

  constructor(flow: FlowState) {
    setHandler(
      newCaptchaUpdate,
      ({ answerDigest }) => {
        this.answerDigest = answerDigest;
        return flow.ok();
      },
      { validator: flow.expect('captcha') },
    );
    setHandler(
      submitCaptchaUpdate,
      async ({ answerDigest, passed }) => {
        const right = passed === true || sameDigest(this.answerDigest, answerDigest); // passed: judged by the API
        this.answerDigest = undefined;
        if (!right) return flow.fail('captcha_invalid');
        this.passed = true;
        await flow.movedOn('captcha');
        return flow.ok();
      },
      { validator: flow.expect('captcha') },
    );
  }
}

export interface IdentityTarget {
  accountId: string;
  /** A channel on file and its mask. */
  channel: Channel;
  destinationHint: string;
  /** The account's security questions; none: "Not working?" goes straight to support. */
  questions: { id: string; text: string }[];
}

/**
 * "Verify your identity" before a signed-in change (seed 000): a code to a channel on file.
 * "Not working?" leads to the account's security questions, and from there (or when the answers are
 * used up) to support: a person checks the account ID and the device IMEI; an approved case sends
 * the code to the contact email the user gave.
 */
export class VerifyIdentity {
  /** The code step in progress: the code to the channel on file, later the one to the support contact email. */
  codes: CodeStep;
  /** How the user proved who they are: a code to a channel on file, or (held afterwards) answers or support. */
  provedBy?: 'code' | 'answers' | 'support';
  private wantsFallback = false;
  private notWorkingAllowed = true;
  private questionsPassed = false;
  private answers: AnswerAttempts;
  private supportForm?: SupportForm;

  constructor(
    private readonly flow: FlowState,
    private readonly settings: FlowSettings,
    private readonly target: IdentityTarget,
    private readonly attempts: AccountAttempts,
  ) {
    this.answers = new AnswerAttempts(settings.maxAnswerAttempts);
    this.codes = new CodeStep(
      flow,
      settings,
      { purpose: 'verify_identity', channel: target.channel, destinationHint: target.destinationHint, accountId: target.accountId, deliverable: true },
      settings.codeTtlMs,
      attempts,
    );

    setHandler(
      notWorkingUpdate,
      async () => {
        const from = flow.step;
        this.wantsFallback = true;
        await flow.movedOn(from);
        return flow.ok();
      },
      {
        validator: () => {
          flow.expect('code', 'security_questions')();
          if (!this.notWorkingAllowed) throw new Error(STEP_MISMATCH);
        },
      },
    );
    setHandler(
      submitAnswersUpdate,
      async ({ sealedAnswers }) => {
        const blocked = attempts.blockedForMs();
        if (blocked > 0) return flow.fail('too_many_attempts', { retryAfterMs: blocked });
        this.answers.take();
        const { ok } = await slow.verifySecurityAnswers({ flowId: flow.flowId, accountId: target.accountId, sealedAnswers });
        this.answers.settle(ok);
        if (ok) {
          this.questionsPassed = true;
        } else {
          await attempts.recordFailure();
          if (this.answers.left > 0) {
            if (flow.active && flow.step === 'security_questions') flow.goTo('security_questions', { ...flow.stepView, attemptsLeft: this.answers.left });
            return flow.fail('answers_invalid', { attemptsLeft: this.answers.left });
          }
        }
        await flow.movedOn('security_questions');
        return ok ? flow.ok() : flow.fail('answers_invalid', { attemptsLeft: 0 });
      },
      { validator: flow.expect('security_questions') },
    );
    setHandler(
      submitSupportUpdate,
      async (form) => {
        this.supportForm = form;
        await flow.movedOn('support');
        return flow.ok();
      },
      { validator: flow.expect('support') },
    );
  }

  /** Sends the first code: the flow shows `code`. */
  start(): Promise<void> {
    return this.codes.send();
  }

  /** Resolves true once the user proved who they are; false when the flow ended (support rejected, or no review in time). */
  async proven(): Promise<boolean> {
    try {
      return await this.walk();
    } finally {
      this.notWorkingAllowed = false; // a later code step (to the new phone) has no fallback
    }
  }

  private async walk(): Promise<boolean> {
    const { flow, settings, target } = this;
    await flow.until(() => this.codes.verified || this.wantsFallback);
    if (this.codes.verified) {
      this.provedBy = 'code';
      return true;
    }

    // "Not working?": the account's security questions, all three right.
    if (target.questions.length > 0) {
      this.wantsFallback = false;
      flow.goTo('security_questions', { questions: target.questions, attemptsLeft: this.answers.left });
      await flow.until(() => this.questionsPassed || this.answers.usedUp || this.wantsFallback);
    }
    this.notWorkingAllowed = false;
    if (this.questionsPassed) {
      this.provedBy = 'answers';
      return true;
    }

    // Support: a person checks the account ID and the device's IMEI.
    flow.goTo('support');
    await flow.until(() => this.supportForm !== undefined);
    const form = this.supportForm!;
    const { caseId } = await db.openSupportCase({ flowId: flow.flowId, subjectAccountId: target.accountId, ...form });
    flow.goTo('support_review', { supportCaseId: caseId });
    flow.deadline = Date.now() + settings.supportReviewTtlMs;
    const decision = await awaitReview(flow, caseId, settings.supportReviewTtlMs);
    if (!decision) {
      await db.expireSupportCase({ caseId });
      flow.end('expired', 'support_review_timeout');
      return false;
    }
    // The case must name this very account: a change only ever touches the signed-in user's own.
    if (!decision.approved || decision.accountId !== target.accountId) {
      await db.notifySupportRejected({ caseId });
      flow.end('rejected', 'support_rejected');
      return false;
    }
    // Approved: a code to the contact email the user gave.
    flow.deadline = Date.now() + settings.flowTtlMs;
    this.codes = new CodeStep(
      flow,
      settings,
      { purpose: 'verify_identity', channel: 'email', destinationHint: maskEmailHint(form.contactEmail), to: form.contactEmail, deliverable: true },
      settings.codeTtlMs,
      this.attempts,
    );
    await this.codes.send();
    await flow.until(() => this.codes.verified);
    this.provedBy = 'support';
    return true;
  }
}
