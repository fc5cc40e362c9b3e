/**
 * A reset's first code goes out from the API that issued it, right after the flow took the passed captcha:
 * no activity and no workflow task of the flow's in between (Kratos' courier does the same: the message is
 * queued before the answer, and sent beside it). The code's record is the queue entry: `sendBy` marks a code
 * this path sends, and is when the worker's sweep may take it over if the API's send was cut short (the API
 * killed, the SMTP relay away). Each send first moves `sendBy` past its own lease, so the API and a sweep never
 * send at once; the delivery record (claimDelivery) keeps a send that is retried from sending twice what went out.
 */
import { Code } from '../db/models';
import { unseal } from '../lib/secrets';
import { log } from '../lib/log';
import type { Channel } from '../workflows/messages';
import { codeMessage, signUpExistsMessage } from './templates';
import { claimDelivery, deliver } from './delivery';
import { config } from '../lib/config';
import { passedCaptcha } from './flow-record';
import type { CodePurpose } from '../activities/codes';

/** How long after its issue a code the API sends is the sweep's to send, and how long one send may take. */
export const COURIER_GRACE_MS = 5_000;
const LEASE_MS = 15_000;

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
  await Code.updateOne({ _id: doc._id }, { $set: { deliveredAt: new Date() }, $unset: { sealed: 1, sendBy: 1 } });
}

/**
 * Sends code `codeId` if it is the courier's and nobody is sending it now: the API's send takes a code still in its
 * grace period, the sweep's (`due`) one whose sendBy has passed; either moves sendBy past its lease first.
 */
export async function sendCode(codeId: string, due?: Date): Promise<boolean> {
  const now = Date.now();
  const free = due ?? new Date(now + COURIER_GRACE_MS); // a lease runs to now + LEASE_MS, past both
  const doc = await Code.findOneAndUpdate(
    { _id: codeId, sendBy: { $lte: free }, expiresAt: { $gt: new Date(now) } },
    { $set: { sendBy: new Date(now + LEASE_MS) } },
    { returnDocument: 'after' },
  ).lean();
  if (!doc) return false;
  await deliverCodeRecord(doc, await claimDelivery(`code:${codeId}`));
  return true;
}

/** The API's send, right after the flow took the code: not awaited by the answer, and never failing it. */
export function sendSoon(codeId: string): void {
  sendCode(codeId).catch((err: unknown) => log.warn({ err: String(err), codeId }, 'first code not sent: the sweep will send it'));
}

/**
 * The worker's sweep: sends every code of the courier's whose send was cut short, if its flow took it (the reset's
 * record says its captcha passed; an API killed before the flow took the code leaves one nobody may send).
 * Returns how many it sent.
 */
export async function sweepCourier(limit = 100): Promise<number> {
  const now = new Date();
  const due = await Code.find({ sendBy: { $lte: now }, expiresAt: { $gt: now } }, { _id: 1, flowId: 1 })
    .limit(limit)
    .lean();
  let sent = 0;
  for (const { _id, flowId } of due) {
    if (!_id) continue;
    try {
      if (!(await passedCaptcha(flowId))) await Code.updateOne({ _id, sendBy: { $lte: now } }, { $unset: { sendBy: 1 } });
      else if (await sendCode(_id, now)) sent += 1;
    } catch (err) {
      log.warn({ err: String(err), codeId: _id }, 'courier sweep: send failed, retried on the next sweep');
    }
  }
  return sent;
}
