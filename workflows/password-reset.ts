/**
 * Forgot password, as the seeds tell it:
 *
 *   captcha → code (to the channel the identifier names) → new password → done
 *              └ not working? → security questions ─┐
 *                               └ not working? ─────┴→ support form → human review
 *                                                        ├ approved → code to the contact email → new password
 *                                                        └ rejected / no review in time → ends
 *   A reset that proved no channel on file is held (RECOVERY_HOLD) and every channel on file can veto it.
 *
 * An identifier that matches no account walks the same steps with the same answers; nothing is sent
 * and no code or answer is ever accepted.
 */
import { setHandler, uuid4 } from '@temporalio/workflow';
import { db, quickDb, slow } from './activities-proxy';
import { FlowState, supersede } from './flow-state';
import { FEWER_TASKS_PATCH, ONE_LOOKUP_PATCH, RELEASE_CLAIMED_PATCH, hasPatch } from './patches';
import { AccountAttempts, CodeStep } from './code-step';
import { CaptchaStep, IdentityProof } from './identity-proof';
import { Hold } from './hold';
import type { FoundForCode, RecoveryTarget } from '../domain/recovery';
import { stepMismatch, resendCodeUpdate, setPasswordUpdate, submitCodeUpdate, supersededSignal, type Flow, type FlowSettings } from './messages';

export interface PasswordResetInput {
  flowId: string;
  identifier: string;
  settings: FlowSettings;
  /** The whole-flow deadline the API already promised the client (epoch ms). */
  expiresAt: number;
}

export async function passwordReset(input: PasswordResetInput): Promise<Flow> {
  const { flowId, settings } = input;
  const flow = new FlowState(flowId, 'password_reset', 'captcha', input.expiresAt);

  let subject: { accountId?: string; identifiers: string[] } = { identifiers: [input.identifier] };
  /** The account whose one-active-reset marker this flow holds (the one its identifier named; flows before ONE_LOOKUP_PATCH). */
  let claimedFor: string | undefined;
  let passwordHash: string | undefined;
  const hold = new Hold(flow);
  let attempts = new AccountAttempts(undefined);
  let claimReleased = false;
  /** The look-up, claim and code the API did with the passed captcha. */
  let foundByApi: (FoundForCode & { codeId: string }) | undefined;

  flow.serve({
    subject: () => ({ subjectAccountId: subject.accountId, identifiers: subject.identifiers, identifier: input.identifier }),
    cancelAt: allSteps,
    refuseCancel: () => hold.refuseWhileApplying(),
  });
  // The reason names no other flow: whoever holds this flow must not learn the id of the one that replaced it.
  setHandler(supersededSignal, () => {
    if (!hold.applying) flow.end('cancelled', 'superseded');
  });
  // 1. and 3.–4.: the captcha, and the "not working?" steps, as every flow has them (identity-proof.ts)
  const captcha = new CaptchaStep(flow, ({ found }) => (foundByApi = found));
  const proof = new IdentityProof(flow, settings, () => attempts, {
    purpose: 'password_reset',
    supportMayNameAnotherAccount: true,
    keepStepWhenLeft: false,
    // the new password is for the account the case was approved for
    onApproved: (accountId) => (subject = { ...subject, accountId: accountId ?? subject.accountId }),
  });
  const codes = () => proof.codes!;
  setHandler(submitCodeUpdate, ({ codeDigest }) => codes().submit(codeDigest), { validator: flow.expect('code') });
  setHandler(resendCodeUpdate, () => codes().resend(), { validator: flow.expect('code') });
  setHandler(
    setPasswordUpdate,
    async (p) => {
      passwordHash = p.passwordHash;
      await flow.movedOn('new_password');
      return flow.ok();
    },
    {
      validator: (..._args: unknown[]) => {
        flow.expect('new_password')();
        if (passwordHash !== undefined) throw stepMismatch(); // one password per flow: a second one changes nothing
      },
    },
  );
  // (a flow with the newer patch needs not ask for the older one: that would cost it a marker more)
  const fewer = hasPatch(FEWER_TASKS_PATCH);
  const oneLookup = fewer || hasPatch(ONE_LOOKUP_PATCH);
  const found = (target: RecoveryTarget) => (subject = { accountId: target.accountId, identifiers: target.identifiers });

  return flow.run(
    async () => {
      let target!: RecoveryTarget & { previousFlowId?: string };
      if (!oneLookup) {
        ({ target, claimedFor } = await lookUpAtStart(flowId, input.identifier));
        found(target);
        attempts = new AccountAttempts(target.accountId);
      }

      // 1. Captcha: prove a human is here before anything is looked up or sent.
      await flow.until(() => captcha.passed);

      // 2. A code to the channel the identifier names.
      // (the step is the proof's from the moment it shows: a code may be submitted while it is being issued)
      const codeStep = () =>
        (proof.codes = new CodeStep(
          flow,
          settings,
          { purpose: 'password_reset', channel: target.channel, destinationHint: target.destinationHint, accountId: target.accountId, deliverable: !!target.accountId },
          settings.codeTtlMs,
          attempts,
        ));
      if (fewer) {
        // From the captcha to the code in no activity, or one: the look-up, the claim of the identifier's one
        // active reset (every identifier has one, so a superseded flow tells nothing about an account) and the
        // code, the same for an account and for an unknown identifier. The API did them with the passed captcha
        // (else one activity does). The code's delivery starts as the step shows.
        const codeId = foundByApi?.codeId ?? uuid4();
        const withCode = foundByApi ?? (await quickDb().findClaimAndIssueCode({ flowId, identifier: input.identifier, codeId, ttlMs: settings.codeTtlMs }));
        target = withCode;
        found(target);
        if (target.previousFlowId) void supersede(target.previousFlowId, flowId);
        codeStep().sendIssued(codeId, withCode.hmac);
      } else {
        if (oneLookup) {
          // Since ONE_LOOKUP_PATCH: one activity after the captcha: the look-up and the claim. The superseded
          // flow is told without waiting. Wrong guesses are counted by the API for every flow (domain/limits.ts).
          target = await quickDb().findAndClaimRecoveryTarget({ flowId, identifier: input.identifier });
          found(target);
          if (target.previousFlowId) void supersede(target.previousFlowId, flowId);
        }
        await codeStep().send();
      }
      // 3.–4. "Not working?": the account's security questions; then support, where a person checks the account
      //    ID and the device's IMEI, and an approved case sends a code to the contact email the user gave.
      if (!(await proof.proven(target, codes()))) return;
      const provedChannelOnFile = proof.provedBy === 'code';

      // 5. The new password (already an argon2 hash: the API never lets the plain text reach us); the
      //    screen says beforehand when a hold will follow.
      flow.goTo('new_password', provedChannelOnFile ? {} : { holdSeconds: Math.round(settings.recoveryHoldMs / 1000) });
      await flow.until(() => passwordHash !== undefined);
      const accountId = subject.accountId!;

      if (!provedChannelOnFile) {
        // 6. The recovery hold: every channel on file is told and can veto before the password changes.
        await hold.wait(settings.recoveryHoldMs, (holdUntil) => db.startRecoveryHold({ flowId, accountId, holdUntil }));
      }

      // 7. Apply: new hash, every session revoked, lockout cleared, every channel told; since FEWER_TASKS_PATCH the
      //    identifier's claim is released with it, not by an activity of its own.
      hold.applying = true;
      await slow.applyPasswordReset({ flowId, accountId, passwordHash: passwordHash!, ...(fewer ? { releaseClaimOf: input.identifier } : {}) });
      claimReleased = fewer;
      flow.end('completed');
    },
    // However it ended: the identifier's claim is released (the flows before ONE_LOOKUP_PATCH held the account's).
    async () => {
      if (claimReleased) return;
      if (oneLookup) return quickDb().releaseRecoveryClaim({ identifier: input.identifier, flowId });
      // Before RELEASE_CLAIMED_PATCH the release went to the subject, which an approved support case naming
      // another account had changed: the claimed marker stayed.
      const holder = claimedFor !== subject.accountId && hasPatch(RELEASE_CLAIMED_PATCH) ? claimedFor : subject.accountId;
      if (holder) await quickDb().releaseActiveFlow({ accountId: holder, kind: 'password_reset', flowId });
    },
  );
}

/** Flows before ONE_LOOKUP_PATCH looked up at the start, before the captcha, and claimed the account's one active reset. */
async function lookUpAtStart(flowId: string, identifier: string): Promise<{ target: RecoveryTarget; claimedFor?: string }> {
  const target = await quickDb().findRecoveryTarget({ flowId, identifier });
  if (!target.accountId) return { target };
  // One active reset per account: this start supersedes the one before it.
  const { previousFlowId } = await quickDb().claimActiveFlow({ accountId: target.accountId, kind: 'password_reset', flowId });
  if (previousFlowId) await supersede(previousFlowId, flowId);
  return { target, claimedFor: target.accountId };
}

// FEWER_TASKS_PATCH (patches.ts): flows started since take the look-up, claim and code from the update that
// passed the captcha (the API did them: domain/recovery.ts), or do them in one activity (findClaimAndIssueCode), and
// release their claim with the new password (applyPasswordReset): three activities and three workflow tasks fewer.

const allSteps = ['captcha', 'code', 'security_questions', 'support', 'support_review', 'new_password', 'hold'] as const;
