/** Issuing and delivering one-time codes. Only the HMAC leaves this file; the code is sealed until it is sent. */
import { Account, Code, Contact } from '../db/models';
import { config } from '../lib/config';
import { codeDigest, newCode, seal, unseal } from '../lib/secrets';
import type { Channel } from '../workflows/messages';
import { codeMessage, signUpExistsMessage } from '../domain/templates';
import { claimDelivery, deliver } from '../domain/delivery';
import { contactKey } from '../domain/accounts';
import { takeSignUpMessage } from '../domain/limits';

export type CodePurpose = 'password_reset' | 'sign_up' | 'verify_identity' | 'confirm_new_contact';

export interface IssueCodeInput {
  flowId: string;
  codeId: string;
  purpose: CodePurpose;
  channel: Channel;
  /** Send to this account's channel on file … */
  accountId?: string;
  /** … or to this address. */
  to?: string;
  ttlMs: number;
}

/** What stays sealed on an issued code until delivery: the code, or a notice sent in its place. */
type Sealed = { code: string; ttlMs: number; notice?: undefined } | { notice: 'sign_up_exists' };

/**
 * Issues a code and returns its HMAC. A sign-up code for a phone or email that already has an
 * account is never issued: its owner gets a notice instead (delivered like a code, so the flow, its
 * answers and its timing are the same) and no HMAC comes back, so no code can ever match.
 */
export async function issueCode(input: IssueCodeInput): Promise<{ hmac?: string }> {
  const existing = await Code.findById(input.codeId).lean();
  if (existing?.hmac) return { hmac: existing.hmac };
  if (existing) return {}; // a notice issued in place of a sign-up code (below)
  let to = input.to;
  if (!to && input.accountId) {
    const account = await Account.findById(input.accountId, { email: 1, phone: 1 }).lean();
    to = (input.channel === 'sms' ? account?.phone : account?.email) ?? undefined;
  }
  if (!to) throw new Error(`no ${input.channel} address for this code`);
  if (input.purpose === 'sign_up' && !(await takeSignUpMessage(to))) {
    // The destination had its sign-up messages of the day (SMS pumping): the flow looks the same, nothing is sent.
    await Code.updateOne(
      { _id: input.codeId },
      { $setOnInsert: { flowId: input.flowId, purpose: input.purpose, channel: input.channel, to, expiresAt: new Date(Date.now() + input.ttlMs) } },
      { upsert: true },
    );
    return {};
  }
  if (input.purpose === 'sign_up' && (await Contact.exists({ _id: contactKey(input.channel === 'sms' ? 'phone' : 'email', to) }))) {
    const notice: Sealed = { notice: 'sign_up_exists' };
    await Code.updateOne(
      { _id: input.codeId },
      {
        $setOnInsert: {
          flowId: input.flowId,
          purpose: input.purpose,
          channel: input.channel,
          to,
          sealed: seal(input.codeId, notice),
          expiresAt: new Date(Date.now() + input.ttlMs),
        },
      },
      { upsert: true },
    );
    return {};
  }
  const code = newCode();
  const hmac = codeDigest(input.flowId, code);
  try {
    await Code.create({
      _id: input.codeId,
      flowId: input.flowId,
      purpose: input.purpose,
      channel: input.channel,
      to,
      hmac,
      sealed: seal(input.codeId, { code, ttlMs: input.ttlMs } satisfies Sealed),
      expiresAt: new Date(Date.now() + input.ttlMs),
    });
    return { hmac };
  } catch (err) {
    // A retry raced an earlier attempt that did store it: that one is the code.
    const again = await Code.findById(input.codeId).lean();
    if (again?.hmac) return { hmac: again.hmac };
    throw err;
  }
}

export async function deliverCode({ codeId }: { codeId: string }): Promise<void> {
  // the code, and its delivery record claimed at once (only a code's message can be keyed by its id)
  const [doc, claimed] = await Promise.all([Code.findById(codeId).lean(), claimDelivery(`code:${codeId}`)]);
  if (!doc) throw new Error(`code ${codeId} not found`);
  if (doc.deliveredAt || !doc.sealed) return;
  const sealed = unseal<Sealed>(codeId, doc.sealed);
  const to = { channel: doc.channel as Channel, to: doc.to!, flowId: doc.flowId };
  if (sealed.notice) {
    // One notice per flow, however often the code is "resent".
    await deliver({ key: `sign-up-exists:${doc.flowId}`, ...to, ...signUpExistsMessage(config().publicUrl) });
  } else {
    await deliver({ key: `code:${codeId}`, ...to, ...codeMessage(doc.purpose as CodePurpose, sealed.code, sealed.ttlMs) }, claimed);
  }
  await Code.updateOne({ _id: codeId }, { $set: { deliveredAt: new Date() }, $unset: { sealed: 1 } });
}
