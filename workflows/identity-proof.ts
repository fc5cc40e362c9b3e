/**
 * Proving who you are, the one way every flow does it (seeds 001–004, 000):
 *
 *   captcha → code to a channel on file ─────────────────────────────────────────────→ proven ("code")
 *              └ not working? → security questions, all three right ─────────────────→ proven ("answers")
 *                               └ not working? / used up → support form → human review
 *                                                            ├ approved → code to the contact email → proven ("support")
 *                                                            └ rejected / no review in time → the flow ends
 *
 * A flow builds the steps it uses when it starts (so their handlers refuse what comes at the wrong step) and
 * walks them with its purpose. The one real difference between flows is a parameter: a reset's support case
 * may be approved for the account the case names, a change's only for the signed-in account.
 */
import { executeChild, setHandler, ParentClosePolicy } from '@temporalio/workflow';
import { db, slow } from './activities-proxy';
import { FlowState, sameDigest } from './flow-state';
import { AccountAttempts, CodeStep } from './code-step';
import { AnswerAttempts } from './answer-attempts';
import { supportReview } from './support-review';
import {
  stepMismatch,
  newCaptchaUpdate,
  notWorkingUpdate,
  submitAnswersUpdate,
  submitCaptchaUpdate,
  submitSupportUpdate,
  type CaptchaAnswer,
  type Channel,
  type FlowSettings,
  type SupportDecision,
} from './messages';
import type { CodePurpose } from '../activities/codes';

/**
 * Text in a picture. Since the API judges pictures itself it sends only a passed captcha (`passed`); before
 * that, a fresh picture's answer digest (newCaptcha) voided the previous one and each picture took one answer.
 */
export class CaptchaStep {
  passed = false;
  private answerDigest?: string;

  /** `onPassed`: what else came with the passed captcha (a reset's look-up, claim and code). */
  constructor(flow: FlowState, onPassed?: (answer: CaptchaAnswer) => void) {
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
      async (answer) => {
        const right = answer.passed === true || sameDigest(this.answerDigest, answer.answerDigest); // passed: judged by the API
        this.answerDigest = undefined; // one answer per picture
        if (!right) return flow.fail('captcha_invalid');
        this.passed = true;
        onPassed?.(answer);
        await flow.movedOn('captcha');
        return flow.ok();
      },
      {
        validator: (...args: unknown[]) => {
          flow.expect('captcha')(...args);
          // one passed captcha per flow: a second one answered meanwhile (its own look-up and code) is refused
          if (this.passed) throw stepMismatch();
        },
      },
    );
  }
}

export interface SupportForm {
  accountId: string;
  imei: string;
  contactEmail: string;
  message?: string;
}

/** Whom a flow proves to be: an account (none: a reset for an unknown identifier, which walks the same steps), where its code goes, its questions. */
export interface IdentityTarget {
  accountId?: string;
  /** A channel on file and its mask. */
  channel: Channel;
  destinationHint: string;
  /** The account's security questions; none: "Not working?" goes straight to support. */
  questions: { id: string; text: string }[];
}

export interface ProofOptions {
  /** What the code to the support contact email is for. */
  purpose: CodePurpose;
  /** A reset may be approved for the account the case names; a change only for the account it changes. */
  supportMayNameAnotherAccount: boolean;
  /** A wrong answer checked after the flow left the questions leaves the step as it is (change flows); resets ran without this guard. */
  keepStepWhenLeft: boolean;
  /** Told of an approved case (the account it was approved for) before the code to the contact email goes out. */
  onApproved?: (accountId: string | undefined) => void;
}

export class IdentityProof {
  /** The code step in progress: the code to the channel on file, later the one to the support contact email. */
  codes?: CodeStep;
  /** How the user proved who they are: a code to a channel on file, or (held afterwards) answers or support. */
  provedBy?: 'code' | 'answers' | 'support';
  /** The account a support case was approved for. */
  approvedAccountId?: string;
  private target?: IdentityTarget;
  private wantsFallback = false;
  private notWorkingAllowed = true;
  private questionsPassed = false;
  private readonly answers: AnswerAttempts;
  private supportForm?: SupportForm;

  /** `attempts`: the flow's wrong-guess counter as it stands when a guess comes. */
  constructor(
    private readonly flow: FlowState,
    private readonly settings: FlowSettings,
    private readonly attempts: () => AccountAttempts,
    private readonly options: ProofOptions,
  ) {
    this.answers = new AnswerAttempts(settings.maxAnswerAttempts);
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
          if (!this.notWorkingAllowed) throw stepMismatch();
        },
      },
    );
    setHandler(
      submitAnswersUpdate,
      async ({ sealedAnswers }) => {
        const blocked = this.attempts().blockedForMs();
        if (blocked > 0) return flow.fail('too_many_attempts', { retryAfterMs: blocked });
        this.answers.take();
        const { ok } = await slow.verifySecurityAnswers({ flowId: flow.flowId, accountId: this.target?.accountId, sealedAnswers });
        this.answers.settle(ok);
        if (ok) {
          this.questionsPassed = true;
        } else {
          await this.attempts().recordFailure();
          if (this.answers.left > 0) {
            if (!options.keepStepWhenLeft || (flow.active && flow.step === 'security_questions'))
              flow.goTo('security_questions', { ...flow.stepView, attemptsLeft: this.answers.left });
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

  /**
   * Walks the proof from the code step `codes` (already showing) for `target`. Resolves true once the user
   * proved who they are; false when the flow ended (support rejected, or no review in time).
   */
  async proven(target: IdentityTarget, codes: CodeStep): Promise<boolean> {
    this.target = target;
    this.codes = codes;
    try {
      return await this.walk(target);
    } finally {
      this.notWorkingAllowed = false; // a later code step (to a new phone) has no fallback
    }
  }

  private async walk(target: IdentityTarget): Promise<boolean> {
    const { flow, settings } = this;
    await flow.until(() => this.codes!.verified || this.wantsFallback);
    if (this.codes!.verified) {
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
    if (!decision.approved || (!this.options.supportMayNameAnotherAccount && decision.accountId !== target.accountId)) {
      await db.notifySupportRejected({ caseId });
      flow.end('rejected', 'support_rejected');
      return false;
    }
    // Approved: a code to the contact email the user gave.
    flow.deadline = Date.now() + settings.flowTtlMs;
    const to = { channel: 'email' as const, destinationHint: maskEmailHint(form.contactEmail), to: form.contactEmail };
    this.codes = new CodeStep(
      flow,
      settings,
      this.options.supportMayNameAnotherAccount
        ? { purpose: this.options.purpose, ...to, accountId: decision.accountId, deliverable: !!decision.accountId }
        : { purpose: this.options.purpose, ...to, deliverable: true },
      settings.codeTtlMs,
      this.attempts(),
    );
    this.approvedAccountId = decision.accountId;
    this.options.onApproved?.(decision.accountId);
    await this.codes.send();
    await flow.until(() => this.codes!.verified);
    this.provedBy = 'support';
    return true;
  }
}

/** Hands the case to a human through the `supportReview` workflow and waits for the decision (null: no review in time). */
export async function awaitReview(flow: FlowState, caseId: string, reviewTtlMs: number): Promise<(SupportDecision & { accountId?: string }) | null> {
  let decision: (SupportDecision & { accountId?: string }) | null | undefined;
  void executeChild(supportReview, {
    workflowId: `support-review/${caseId}`,
    args: [{ caseId, flowId: flow.flowId, reviewTtlMs }],
    parentClosePolicy: ParentClosePolicy.TERMINATE,
  }).then(
    (d) => (decision = d),
    () => (decision = null),
  );
  await flow.until(() => decision !== undefined);
  return decision ?? null;
}

export function maskEmailHint(email: string): string {
  const [local = '', domain = ''] = email.split('@');
  return `${local.slice(0, 1)}***@${domain}`;
}
