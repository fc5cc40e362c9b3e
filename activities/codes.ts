/** Issuing and delivering one-time codes. Only the HMAC leaves this file; the code is sealed until it is sent. */
import { Account, Code } from '../db/models';
import { codeDigest, newCode, seal, unseal } from '../lib/secrets';
import type { Channel } from '../workflows/messages';
import { codeMessage } from './templates';
import { deliver } from './delivery';

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

export async function issueCode(input: IssueCodeInput): Promise<{ hmac: string }> {
  const existing = await Code.findById(input.codeId).lean();
  if (existing?.hmac) return { hmac: existing.hmac };
  let to = input.to;
  if (!to && input.accountId) {
    const account = await Account.findById(input.accountId, { email: 1, phone: 1 }).lean();
    to = (input.channel === 'sms' ? account?.phone : account?.email) ?? undefined;
  }
  if (!to) throw new Error(`no ${input.channel} address for this code`);
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
      sealed: seal(input.codeId, { code, ttlMs: input.ttlMs }),
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
  const doc = await Code.findById(codeId).lean();
  if (!doc) throw new Error(`code ${codeId} not found`);
  if (doc.deliveredAt || !doc.sealed) return;
  const { code, ttlMs } = unseal<{ code: string; ttlMs: number }>(codeId, doc.sealed);
  await deliver({
    key: `code:${codeId}`,
    channel: doc.channel as Channel,
    to: doc.to!,
    flowId: doc.flowId,
    ...codeMessage(doc.purpose as CodePurpose, code, ttlMs),
  });
  await Code.updateOne({ _id: codeId }, { $set: { deliveredAt: new Date() }, $unset: { sealed: 1 } });
}
