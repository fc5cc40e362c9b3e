/**
 * The "enter the 6-digit code" step, the same for every flow: a code with an expiry timer, a few
 * attempts, resend with cooldown and limit. The code itself never enters the workflow: an activity
 * generates it and returns its HMAC; the API sends the HMAC of what the user typed.
 */
import { sleep, uuid4 } from '@temporalio/workflow';
import { SHOW_BEFORE_ISSUE_PATCH, hasPatch } from './patches';
import { quickDb, delivery } from './activities-proxy';
import { FlowState, sameDigest } from './flow-state';
import type { Channel, Flow, FlowResult, FlowSettings } from './messages';
import type { CodePurpose } from '../activities/codes';

export interface CodeTarget {
  purpose: CodePurpose;
  channel: Channel;
  destinationHint: string;
  /** The account whose channel on file receives the code (the activity looks the address up). */
  accountId?: string;
  /** An address given in the flow itself (sign-up, a new phone, a support contact email). */
  to?: string;
  /** False for an identifier that matches no account: the step looks the same, but nothing is sent and no code matches. */
  deliverable: boolean;
  /** More to show with the step (e.g. `holdSeconds`). */
  view?: Partial<Flow>;
}

interface IssuedCode {
  codeId: string;
  hmac?: string;
  expiresAt: number;
  attemptsLeft: number;
  expired: boolean;
}

/** Wrong codes and answers counted per account, across flows, so starting a new flow buys no new guesses. */
export class AccountAttempts {
  private blockedUntil = 0;
  constructor(private readonly accountId: string | undefined) {}

  blockedForMs(): number {
    return Math.max(this.blockedUntil - Date.now(), 0);
  }

  async recordFailure(): Promise<void> {
    if (!this.accountId) return;
    const { blockedUntil } = await quickDb().recordFailedAttempt({ accountId: this.accountId });
    if (blockedUntil) this.blockedUntil = Date.parse(blockedUntil);
  }
}

export class CodeStep {
  private code?: IssuedCode;
  private resendsLeft: number;
  private resendAt = 0;
  verified = false;

  constructor(
    private readonly flow: FlowState,
    private readonly settings: FlowSettings,
    private readonly target: CodeTarget,
    private readonly ttlMs: number,
    private readonly attempts: AccountAttempts,
  ) {
    this.resendsLeft = settings.maxResends;
  }

  /** The current code lapsed (its durable timer fired). */
  get lapsed(): boolean {
    return !!this.code && this.isExpired(this.code);
  }

  /** Issues a fresh code (the previous one is void), starts its expiry timer and its delivery. */
  async send(): Promise<void> {
    const codeId = uuid4();
    const now = Date.now();
    const code: IssuedCode = { codeId, expiresAt: now + this.ttlMs, attemptsLeft: this.settings.maxCodeAttempts, expired: false };
    const expire = () =>
      void sleep(this.ttlMs).then(() => {
        code.expired = true;
      });
    if (hasPatch(SHOW_BEFORE_ISSUE_PATCH)) {
      // The step shows at once, for an account and for an unknown identifier alike: the answer that
      // moved the flow here returns before the code is issued, in the same time whether or not one is.
      this.show(code, now);
      expire();
      if (this.target.deliverable) code.hmac = await this.issue(codeId);
    } else {
      if (this.target.deliverable) code.hmac = await this.issue(codeId);
      expire();
      this.show(code, now);
    }
  }

  /**
   * Shows the step for a code already issued (its id and HMAC; no HMAC: nothing was sent and nothing matches)
   * and starts its delivery. No timer: a submission checks the code's expiry against the clock, and a flow
   * parked at this step has one timer less to fire (and replay) while it waits for its deadline.
   */
  sendIssued(codeId: string, hmac: string | undefined): void {
    const now = Date.now();
    this.show({ codeId, hmac, expiresAt: now + this.ttlMs, attemptsLeft: this.settings.maxCodeAttempts, expired: false }, now);
    if (this.target.deliverable && hmac) this.deliver(codeId);
  }

  private deliver(codeId: string): void {
    // Delivery retries with backoff in the background; the user can already type the code or resend.
    delivery(this.ttlMs)
      .deliverCode({ codeId })
      .catch(() => undefined);
  }

  private async issue(codeId: string): Promise<string | undefined> {
    const { hmac } = await quickDb().issueCode({
      flowId: this.flow.flowId,
      codeId,
      purpose: this.target.purpose,
      channel: this.target.channel,
      accountId: this.target.accountId,
      to: this.target.to,
      ttlMs: this.ttlMs,
    });
    this.deliver(codeId);
    return hmac;
  }

  /** Makes `code` the current one (when given) and shows the step. */
  show(code?: IssuedCode, issuedAt?: number): void {
    if (code) {
      this.code = code;
      this.resendAt = issuedAt! + this.settings.resendCooldownMs;
    }
    const current = this.code!;
    this.flow.goTo('code', {
      channel: this.target.channel,
      destinationHint: this.target.destinationHint,
      codeExpiresAt: new Date(current.expiresAt).toISOString(),
      attemptsLeft: current.attemptsLeft,
      resendAvailableAt: new Date(this.resendAt).toISOString(),
      resendsLeft: this.resendsLeft,
      ...this.target.view,
    });
  }

  async submit(codeDigest: string): Promise<FlowResult> {
    const code = this.code!;
    const blocked = this.attempts.blockedForMs();
    if (blocked > 0) return this.flow.fail('too_many_attempts', { retryAfterMs: blocked });
    if (this.isExpired(code)) return this.flow.fail('code_expired');
    if (code.attemptsLeft <= 0) return this.flow.fail('code_exhausted', { attemptsLeft: 0 });
    if (sameDigest(code.hmac, codeDigest)) {
      this.verified = true;
      await this.flow.movedOn('code');
      return this.flow.ok();
    }
    const left = (code.attemptsLeft -= 1); // this guess's own count: others may come in while it is recorded
    this.show();
    await this.attempts.recordFailure();
    return left > 0 ? this.flow.fail('code_invalid', { attemptsLeft: left }) : this.flow.fail('code_exhausted', { attemptsLeft: 0 });
  }

  async resend(): Promise<FlowResult> {
    if (this.resendsLeft <= 0) return this.flow.fail('resend_limit');
    const wait = this.resendAt - Date.now();
    if (wait > 0) return this.flow.fail('resend_too_soon', { retryAfterMs: wait });
    this.resendsLeft -= 1;
    if (hasPatch(SHOW_BEFORE_ISSUE_PATCH)) {
      // The new code shows at once and is issued meanwhile: a resend answers in the same time with or without an account.
      void this.send().catch(() => undefined); // a code that could not be issued matches nothing: the user resends
    } else {
      await this.send();
    }
    return this.flow.ok();
  }

  private isExpired(code: IssuedCode): boolean {
    return code.expired || Date.now() >= code.expiresAt;
  }
}
