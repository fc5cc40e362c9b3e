/** Support cases: the hand-over from a recovery flow to a human reviewer. */
import { Account, Device, SupportCase } from '../db/models';
import { keyedDigest } from '../lib/secrets';
import { isValidImei } from '../lib/luhn';
import { deliver } from '../domain/delivery';
import type { SupportDecision } from '../workflows/messages';
import { imeiDigest } from '../domain/devices';
import { supportExpiredMessage, supportReceivedMessage, supportRejectedMessage } from '../domain/templates';

/** One case per flow; the id is derived (retries open the same case) but does not reveal the flow id. */
export const caseIdOf = (flowId: string) => 'case_' + Buffer.from(keyedDigest('case', flowId), 'hex').subarray(0, 12).toString('base64url');

export interface OpenSupportCaseInput {
  flowId: string;
  subjectAccountId?: string;
  accountId: string;
  imei: string;
  contactEmail: string;
  message?: string;
}

export async function openSupportCase(input: OpenSupportCaseInput): Promise<{ caseId: string }> {
  const caseId = caseIdOf(input.flowId);
  const account = await Account.findById(input.accountId, { _id: 1 }).lean();
  const device = isValidImei(input.imei) ? await Device.findById(imeiDigest(input.imei)).lean() : null;
  await SupportCase.updateOne(
    { _id: caseId },
    {
      $setOnInsert: {
        flowId: input.flowId,
        accountId: input.accountId,
        accountExists: !!account,
        imeiLast4: input.imei.slice(-4),
        // A match marks the case; a mismatch is left for the reviewer, never decided automatically.
        deviceVerified: !!account && !!device && device.accountId === input.accountId,
        contactEmail: input.contactEmail,
        message: input.message,
        status: 'pending',
      },
    },
    { upsert: true },
  );
  await deliver({ key: `${caseId}:received`, channel: 'email', to: input.contactEmail, flowId: input.flowId, ...supportReceivedMessage(caseId) });
  return { caseId };
}

export async function supportCaseAccount({ caseId }: { caseId: string }): Promise<{ accountId?: string }> {
  const c = await SupportCase.findById(caseId, { accountId: 1, accountExists: 1 }).lean();
  return c?.accountExists && c.accountId ? { accountId: c.accountId } : {};
}

/**
 * The review deadline passed: a pending case lapses (atomically, so a reviewer deciding at the same
 * instant either wins or gets 409) and, with `notify` (the default), the user is told. A case decided
 * meanwhile stays decided: its decision comes back, so the review can still follow it.
 */
export async function expireSupportCase({ caseId, notify = true }: { caseId: string; notify?: boolean }): Promise<{ status: string; decision?: SupportDecision }> {
  await SupportCase.updateOne({ _id: caseId, status: 'pending' }, { $set: { status: 'expired' } });
  const c = await SupportCase.findById(caseId).lean();
  if (!c) return { status: 'missing' };
  if ((c.status === 'approved' || c.status === 'rejected') && c.decision?.decidedAt) {
    const { reviewer, note, decidedAt } = c.decision;
    return { status: c.status, decision: { approved: c.status === 'approved', reviewer: reviewer ?? '', note: note ?? '', decidedAt: new Date(decidedAt).toISOString() } };
  }
  if (notify && c.status === 'expired' && c.contactEmail) {
    await deliver({ key: `${caseId}:expired`, channel: 'email', to: c.contactEmail, flowId: c.flowId, ...supportExpiredMessage(caseId) });
  }
  return { status: c.status };
}

export async function notifySupportRejected({ caseId }: { caseId: string }): Promise<void> {
  const c = await SupportCase.findById(caseId).lean();
  if (c?.contactEmail) {
    await deliver({ key: `${caseId}:rejected`, channel: 'email', to: c.contactEmail, flowId: c.flowId, ...supportRejectedMessage(caseId, c.decision?.note ?? '') });
  }
}
