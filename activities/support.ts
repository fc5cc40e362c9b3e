/** Support cases: the hand-over from a recovery flow to a human reviewer. */
import { Account, Device, SupportCase } from '../db/models';
import { keyedDigest } from '../lib/secrets';
import { isValidImei } from '../lib/luhn';
import { deliver } from './delivery';
import { supportExpiredMessage, supportReceivedMessage, supportRejectedMessage } from './templates';

export const imeiDigest = (imei: string) => keyedDigest('imei', imei);
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

/** The review deadline passed: the case lapses and the user is told. */
export async function expireSupportCase({ caseId }: { caseId: string }): Promise<void> {
  await SupportCase.updateOne({ _id: caseId, status: 'pending' }, { $set: { status: 'expired' } });
  const c = await SupportCase.findById(caseId).lean();
  if (c?.contactEmail) await deliver({ key: `${caseId}:expired`, channel: 'email', to: c.contactEmail, flowId: c.flowId, ...supportExpiredMessage(caseId) });
}

export async function notifySupportRejected({ caseId }: { caseId: string }): Promise<void> {
  const c = await SupportCase.findById(caseId).lean();
  if (c?.contactEmail) {
    await deliver({ key: `${caseId}:rejected`, channel: 'email', to: c.contactEmail, flowId: c.flowId, ...supportRejectedMessage(caseId, c.decision?.note ?? '') });
  }
}
