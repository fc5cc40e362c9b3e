/**
 * A reset's first code goes out from the API that issued it, right after the flow took the passed captcha:
 * no activity and no workflow task of the flow's in between (Kratos' courier does the same: the message is
 * queued, then sent beside the answer). Once the flow took the code, the API enters it in the courier queue
 * (db/models.ts CourierQueue) with a lease and sends it; sent, the entry goes. An entry whose lease ran out
 * (the API killed mid-send, the SMTP relay away) is the worker's sweep's to send, every 2 s, for as long as the
 * code and its flow live. The lease keeps the API and a sweep, or two sweeps, from sending at once; the delivery
 * record (claimDelivery) keeps a send that is retried from sending twice what went out.
 */
import { Code, CourierQueue } from '../db/models';
import { unseal } from '../lib/secrets';
import { log } from '../lib/log';
import { config } from '../lib/config';
import type { Channel } from '../workflows/messages';
import type { CodePurpose } from '../activities/codes';
import { codeMessage, signUpExistsMessage } from './templates';
import { claimDelivery, deliver } from './delivery';
import { resetRecord } from './flow-record';

/** How long one send may take before a sweep may send the code again (well past SMTP's own timeouts: domain/delivery.ts). */
const LEASE_MS = 60_000;
/** After a failed send, the first retry; each failure more doubles it, up to LEASE_MS. */
const RETRY_MS = 2_000;

/** What stays sealed on an issued code until delivery: the code, or a notice sent in its place. */
export type Sealed = { code: string; ttlMs: number; notice?: undefined } | { notice: 'sign_up_exists' };

type CodeRecord = { _id?: string | null; flowId: string; purpose?: string | null; channel?: string | null; to?: string | null; sealed?: string | null; deliveredAt?: Date | null };

/** Sends an issued code's message (or the notice sealed in its place) once, and marks the code delivered. */
export async function deliverCodeRecord(doc: CodeRecord, claimed?: { status?: string | null; sentAt?: Date | null }): Promise<void> {
  if (doc.deliveredAt || !doc.sealed || !doc._id) return;
  const sealed = unseal<Sealed>(doc._id, doc.sealed);
  const to = { channel: doc.channel as Channel, to: doc.to!, flowId: doc.flowId };
  if (sealed.notice) {
    // One notice per flow, however often the code is "resent".
    await deliver({ key: `sign-up-exists:${doc.flowId}`, ...to, ...signUpExistsMessage(config().publicUrl) });
  } else {
    await deliver({ key: `code:${doc._id}`, ...to, ...codeMessage(doc.purpose as CodePurpose, sealed.code, sealed.ttlMs) }, claimed);
  }
  await Code.updateOne({ _id: doc._id }, { $set: { deliveredAt: new Date() }, $unset: { sealed: 1 } });
}

/**
 * Sends the code whose lease this caller holds, and takes it off the queue (also when the code can no longer be used).
 * A send that failed (the relay refused, the database away) is tried again by a sweep, sooner each time it has failed less.
 */
async function sendLeased(codeId: string): Promise<boolean> {
  try {
    const doc = await Code.findById(codeId).lean();
    if (doc && !doc.deliveredAt && doc.expiresAt && doc.expiresAt.getTime() > Date.now()) await deliverCodeRecord(doc, await claimDelivery(`code:${codeId}`));
    await CourierQueue.deleteOne({ _id: codeId });
    return !!doc?.sealed && !doc.deliveredAt;
  } catch (err) {
    const failed = await CourierQueue.findOneAndUpdate({ _id: codeId }, { $inc: { failures: 1 } }, { returnDocument: 'after' })
      .lean()
      .catch(() => null);
    const retryInMs = Math.min(RETRY_MS * 2 ** Math.max((failed?.failures ?? 1) - 1, 0), LEASE_MS);
    await CourierQueue.updateOne({ _id: codeId }, { $set: { sendBy: new Date(Date.now() + retryInMs) } }).catch(() => undefined);
    throw err;
  }
}

/**
 * The API's send, right after the flow took code `codeId` (its answer already gone): the queue entry is its lease.
 * Not awaited, never failing the request: a send cut short is the sweep's.
 */
export function sendSoon(codeId: string, flowId: string, codeExpiresAt: Date): void {
  CourierQueue.create({ _id: codeId, flowId, sendBy: new Date(Date.now() + LEASE_MS), expire: codeExpiresAt })
    .then(() => sendLeased(codeId))
    .catch((err: unknown) => log.warn({ err: String(err), codeId }, 'first code not sent: the sweep will send it'));
}

/**
 * The worker's sweep: sends each queued code whose lease ran out, while its reset is open (not ended, before its
 * deadline); a code of a reset that ended is dropped. Returns how many it sent.
 */
export async function sweepCourier(limit = 100): Promise<number> {
  const now = new Date();
  const due = await CourierQueue.find({ sendBy: { $lte: now } }, { _id: 1, flowId: 1 })
    .limit(limit)
    .lean();
  let sent = 0;
  for (const { _id, flowId } of due) {
    if (!_id) continue;
    try {
      const leased = await CourierQueue.findOneAndUpdate({ _id, sendBy: { $lte: now } }, { $set: { sendBy: new Date(Date.now() + LEASE_MS) } }).lean();
      if (!leased) continue; // another sweep has it
      if ((await resetRecord(flowId))?.open !== true) await CourierQueue.deleteOne({ _id });
      else if (await sendLeased(_id)) sent += 1;
    } catch (err) {
      log.warn({ err: String(err), codeId: _id }, 'courier sweep: send failed, retried once its lease runs out');
    }
  }
  return sent;
}
