/**
 * Change phone (seed 000) and change email, for a user signed in recently:
 *
 *   code to the current phone ("verify your identity") → new phone → "OK" in the pop-up → code to the new phone (one day) → done
 *    └ not working? → security questions ─┐                                                   └ lapses → expired
 *                     └ not working? ─────┴→ support → human review → (approved) code to the contact email ─┘
 *   Proven by answers or support: after the new contact's code, a hold (RECOVERY_HOLD) that every channel
 *   on file, the one being replaced included, can veto; the contact is replaced when it ends.
 *
 * Change email is the same with new_email / confirm_new_email; "verify your identity" goes to the
 * current email (else the phone). On `done` the phone or email is replaced (activities/contacts.ts:
 * the new one claimed first, so a number somebody took meanwhile answers 409 and the flow goes back
 * to new_phone), every other session is revoked and the old address and the other channel are told.
 *
 * A pending change ends `cancelled` when its user signs out, when a password reset completes, or
 * when a newer change of the same kind starts.
 */
import { condition, setHandler } from '@temporalio/workflow';
import { CHANGE_RULES_PATCH, hasPatch } from './patches';
import { db, quickDb } from './activities-proxy';
import { FlowEnded, FlowState, supersede } from './flow-state';
import { Hold } from './hold';
import { AccountAttempts, CodeStep } from './code-step';
import { IdentityProof } from './identity-proof';
import {
  stepMismatch,
  cancelFlowSignal,
  confirmUpdate,
  firstStepUpdate,
  newEmailUpdate,
  newPhoneUpdate,
  resendCodeUpdate,
  submitCodeUpdate,
  supersededSignal,
  type Flow,
  type FlowResult,
  type FlowSettings,
} from './messages';
import type { ContactKind } from '../activities/contacts';

export interface ChangeContactInput {
  flowId: string;
  /** The signed-in account: the only one that may drive the flow, and the one that changes. */
  accountId: string;
  /** The session that started the change (its id): it stays signed in when every other one is revoked. */
  sessionId: string;
  settings: FlowSettings;
  /** CHANGE_PHONE_CODE_TTL: the life of the code to the new phone or email. */
  contactCodeTtlMs: number;
  /** The whole-flow deadline the API already promised the client (epoch ms). */
  expiresAt: number;
}

export async function changePhone(input: ChangeContactInput): Promise<Flow> {
  return changeContact('phone', input);
}

export async function changeEmail(input: ChangeContactInput): Promise<Flow> {
  return changeContact('email', input);
}

const KINDS = {
  phone: { kind: 'change_phone', choose: 'new_phone', confirm: 'confirm_new_phone', taken: 'phone_taken', channel: 'sms' },
  email: { kind: 'change_email', choose: 'new_email', confirm: 'confirm_new_email', taken: 'email_taken', channel: 'email' },
} as const;

async function changeContact(what: ContactKind, input: ChangeContactInput): Promise<Flow> {
  const { flowId, accountId, settings } = input;
  const k = KINDS[what];
  const flow = new FlowState(flowId, k.kind, 'code', input.expiresAt);
  // Since this patch wrong guesses are counted by the API alone (domain/limits.ts, before each guess), and a
  // change proven without a channel on file is held.
  const v11 = hasPatch(CHANGE_RULES_PATCH);
  const attempts = new AccountAttempts(v11 ? undefined : accountId);

  let identity: IdentityProof | undefined;
  let newCodes: CodeStep | undefined;
  /** The code step in progress: identity first, then the code to the new phone or email. */
  const codes = () => newCodes ?? identity!.codes!;
  let codeSent = false;
  let newValue: string | undefined;
  let newHint = '';
  let confirmed = false;
  let takenMeanwhile = false;
  /** A change proven without a channel on file waits out a hold that every channel on file can veto. */
  const hold = new Hold(flow);
  let holdView: Partial<Flow> = {};
  let holds = 0;
  const cancel = (reason: string) => {
    if (!hold.applying) flow.end('cancelled', reason); // once the change is being made, it completes
  };

  flow.serve({
    subject: () => ({ ownerAccountId: accountId, subjectAccountId: accountId, identifiers: [] }),
    cancelAt: ['code', 'security_questions', 'support', 'support_review', k.choose, k.confirm, 'hold'],
    refuseCancel: () => hold.refuseWhileApplying(),
    cancel,
  });
  setHandler(firstStepUpdate, async () => {
    await condition(() => codeSent || !flow.active);
    return flow.ok();
  });
  setHandler(supersededSignal, () => cancel('superseded')); // names no other flow
  setHandler(cancelFlowSignal, ({ reason }) => cancel(reason));
  const atCode = (..._args: unknown[]) => {
    flow.expect('code')();
    if (!codeSent) throw stepMismatch(); // the first code is still being issued
  };
  setHandler(
    submitCodeUpdate,
    async ({ codeDigest }) => {
      const result = await codes().submit(codeDigest);
      return result.ok && takenMeanwhile ? flow.fail(k.taken) : result;
    },
    { validator: atCode },
  );
  setHandler(
    resendCodeUpdate,
    async () => {
      const result = await codes().resend();
      if (!result.ok || !newCodes) return result;
      flow.deadline = Date.parse(flow.stepView.codeExpiresAt!); // the flow lives as long as the code to the new contact
      return flow.ok();
    },
    { validator: atCode },
  );

  /** A new phone or email: shown masked for the "OK"; a taken one answers 409 and the flow stays where it is. */
  const chooseNew = async (value: string): Promise<FlowResult> => {
    const { owner, hint } = await quickDb().checkNewContact({ accountId, kind: what, value });
    if (owner === 'you') return flow.fail('validation_failed', { reasons: ['same_as_current'] });
    if (owner === 'someone_else') return flow.fail(k.taken);
    if (!flow.active) return flow.ok();
    newValue = value;
    newHint = hint;
    takenMeanwhile = false;
    flow.goTo(k.confirm, { newDestinationHint: hint, ...holdView });
    return flow.ok();
  };
  const choosing = flow.expect(k.choose, k.confirm); // at the pop-up, another number replaces the one shown
  if (what === 'phone') setHandler(newPhoneUpdate, ({ phone }) => chooseNew(phone), { validator: choosing });
  else setHandler(newEmailUpdate, ({ email }) => chooseNew(email), { validator: choosing });
  setHandler(
    confirmUpdate,
    async () => {
      confirmed = true;
      await flow.movedOn(k.confirm);
      return flow.ok();
    },
    { validator: flow.expect(k.confirm) },
  );

  return flow.run(
    async () => {
      const target = await quickDb().changeContactTarget({ accountId, kind: what });
      // One pending change of each kind per account: this start supersedes the one before it.
      const { previousFlowId } = await quickDb().claimActiveFlow({ accountId, kind: k.kind, flowId });
      if (previousFlowId) await supersede(previousFlowId, flowId);

      // 1. Verify your identity: a code to the current phone (email); "not working?" → questions → support.
      identity = new IdentityProof(flow, settings, () => attempts, { purpose: 'verify_identity', supportMayNameAnotherAccount: false, keepStepWhenLeft: true });
      const first = (identity.codes = new CodeStep(
        flow,
        settings,
        { purpose: 'verify_identity', channel: target.channel, destinationHint: target.destinationHint, accountId, deliverable: true },
        settings.codeTtlMs,
        attempts,
      ));
      await first.send();
      codeSent = true;
      if (!(await identity.proven({ accountId, ...target }, first))) return;
      const held = v11 && identity.provedBy !== 'code';
      if (held) holdView = { holdSeconds: Math.round(settings.recoveryHoldMs / 1000) };

      for (;;) {
        // 2. The new phone, then the "OK" in the pop-up that shows it (both say when a hold will follow).
        confirmed = false;
        flow.goTo(k.choose, holdView);
        await flow.until(() => confirmed);

        // 3. A code to the new phone, valid one day; the flow lives as long as that code.
        newCodes = new CodeStep(
          flow,
          settings,
          { purpose: 'confirm_new_contact', channel: k.channel, destinationHint: newHint, to: newValue!, deliverable: true, view: holdView },
          input.contactCodeTtlMs,
          attempts,
        );
        flow.deadline = Date.now() + input.contactCodeTtlMs;
        await newCodes.send();
        await condition(() => newCodes!.verified || newCodes!.lapsed || !flow.active);
        if (!flow.active) throw new FlowEnded(flow.status);
        if (!newCodes.verified) {
          flow.end('expired', 'code_lapsed'); // start again
          return;
        }

        // 4. Proven by security answers or support: the hold, as a reset has. Every channel on file, the one
        //    being replaced included, is told and can veto; nothing changes before holdUntil.
        if (held) {
          const round = ++holds; // a message key of its own for each hold (a taken contact sends the user round again)
          await hold.wait(settings.recoveryHoldMs, (holdUntil) => db.startContactChangeHold({ flowId, accountId, kind: what, newHint, holdUntil, round }));
        }

        // 5. Replace it.
        hold.applying = true;
        const { outcome } = await db.applyContactChange({ flowId, accountId, kind: what, value: newValue!, sessionId: input.sessionId });
        hold.applying = false;
        if (outcome === 'applied') break;
        if (outcome === 'signed_out') {
          flow.end('cancelled', 'signed_out');
          return;
        }
        // Somebody else claimed it meanwhile: the code answers 409, and the user chooses another.
        takenMeanwhile = true;
        flow.deadline = Date.now() + settings.flowTtlMs;
      }
      flow.end('completed');
    },
    // however it ended, the account's one pending change of this kind is free again
    () => quickDb().releaseActiveFlow({ accountId, kind: k.kind, flowId }),
  );
}
