/**
 * Sending email (nodemailer over SMTP) and SMS (dev outbox or a webhook). Every message has an
 * idempotency key: a retried activity never sends the same message twice.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import { config } from '../lib/config';
import { Delivery, Outbox, OUTBOX_KEEP } from '../db/models';
import type { Channel } from '../workflows/messages';

export interface Message {
  key: string;
  channel: Channel;
  to: string;
  subject: string;
  text: string;
  flowId?: string;
}

/**
 * One pooled SMTP transport for SMTP_URL: up to 5 connections, each kept open for the next message (a new
 * connection costs a TCP and often a TLS handshake, and maildev takes 100 ms to greet one). Pooling is asked
 * for in the URL: nodemailer reads a second argument as defaults for messages, not as transport options.
 * Settings given in SMTP_URL's own query win.
 */
export function createMailer(smtpUrl: string): Transporter {
  const url = new URL(smtpUrl);
  for (const [k, v] of [
    ['pool', 'true'],
    ['maxConnections', '5'],
  ] as const)
    if (!url.searchParams.has(k)) url.searchParams.set(k, v);
  return nodemailer.createTransport(url.toString());
}

let transporter: Transporter | undefined;
function mailer(): Transporter {
  transporter ??= createMailer(config().SMTP_URL);
  return transporter;
}

export async function closeMailer(): Promise<void> {
  transporter?.close();
  transporter = undefined;
}

async function sendEmail(m: Message): Promise<string> {
  const info = await mailer().sendMail({
    from: config().MAIL_FROM,
    to: m.to,
    subject: m.subject,
    text: m.text,
    messageId: `<${m.key.replace(/[^A-Za-z0-9._-]/g, '.')}@account-recovery>`,
    headers: { 'X-Idempotency-Key': m.key },
  });
  return info.messageId;
}

async function sendSms(m: Message): Promise<string> {
  const cfg = config();
  if (cfg.SMS_PROVIDER === 'dev') return `dev-sms:${m.key}`; // the dev transport delivers into the outbox below
  const res = await fetch(cfg.SMS_WEBHOOK_URL!, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': m.key },
    body: JSON.stringify({ to: m.to, text: m.text }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`SMS webhook answered ${res.status}`);
  return res.headers.get('x-message-id') ?? m.key;
}

/** Counts an attempt at message `key`; answers its record (status 'sent' once an attempt sent it). */
export async function claimDelivery(key: string): Promise<{ status?: string | null; sentAt?: Date | null }> {
  const row = await Delivery.findOneAndUpdate({ _id: key }, { $setOnInsert: { status: 'sending' }, $inc: { attempts: 1 } }, { upsert: true, returnDocument: 'after' }).lean();
  return row ?? {};
}

/** Sends `m` once (`claimed`: its claimDelivery, when the caller made it already). Returns false when a previous attempt already sent it. */
export async function deliver(m: Message, claimed?: { status?: string | null; sentAt?: Date | null }): Promise<boolean> {
  const row = claimed ?? (await claimDelivery(m.key));
  if (row?.status === 'sent') {
    // Sent by an earlier attempt that failed afterwards (e.g. writing the outbox): finish the outbox entry.
    if (!config().isProduction) await toOutbox(m, row.sentAt ?? new Date());
    return false;
  }
  let providerId: string;
  try {
    providerId = m.channel === 'email' ? await sendEmail(m) : await sendSms(m);
  } catch (err) {
    // The failure goes into Temporal as plain text (failures are not payloads): keep addresses out of it, and
    // so no `cause` either (the provider's error quotes the recipient).
    // eslint-disable-next-line preserve-caught-error
    throw new Error(`${m.channel} delivery failed: ${withoutAddresses(String((err as Error)?.message ?? err))}`);
  }
  const sentAt = new Date();
  // Sent: from here on a failed attempt would send it again on retry, so the record of it must land, first and alone
  // (a worker killed in between sends it twice; in parallel with the outbox the gap was wider: one duplicate in a drill).
  await untilStored(() => Delivery.updateOne({ _id: m.key }, { $set: { status: 'sent', channel: m.channel, sentAt, providerId } }));
  if (!config().isProduction) await toOutbox(m, sentAt);
  return true;
}

/**
 * Retries a write for up to 15 s (the database restarting, a connection reset) instead of failing the
 * attempt: used once a message has gone out, when failing would mean sending it twice.
 */
async function untilStored<T>(write: () => Promise<T>, withinMs = 15_000): Promise<T> {
  const giveUpAt = Date.now() + withinMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
    try {
      return await write();
    } catch (err) {
      if (Date.now() + delay > giveUpAt) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Development only: files the message in its address's mailbox, once per key (see Outbox in db/models.ts). */
async function toOutbox(m: Message, sentAt: Date): Promise<void> {
  const mailbox = m.to.trim().toLowerCase();
  const notFiledYet = { _id: mailbox, 'messages.key': { $ne: m.key } };
  const push = { $push: { messages: { $each: [{ key: m.key, channel: m.channel, to: m.to, subject: m.subject, text: m.text, flowId: m.flowId, sentAt }], $slice: -OUTBOX_KEEP } } };
  try {
    // No match: a new mailbox, or this key is already in it (then the insert collides: nothing to do).
    await Outbox.updateOne(notFiledYet, push, { upsert: true });
  } catch (err) {
    if ((err as { code?: number }).code !== 11000) throw err;
    await Outbox.updateOne(notFiledYet, push); // the mailbox was created meanwhile by another message
  }
}

/** Strips email addresses and phone numbers from a provider's error text (an SMTP 550 quotes the recipient). */
export function withoutAddresses(text: string): string {
  return text.replace(/[^\s<>"'()]+@[^\s<>"'()]+/g, '<address>').replace(/\+?\d[\d\s-]{6,}\d/g, '<number>');
}

/** Development only: the messages delivered to an address, newest first (at most 100). */
export async function mailbox(address: string): Promise<{ channel: string; to: string; subject: string; text: string; flowId?: string; sentAt: string }[]> {
  const box = await Outbox.findById(address.trim().toLowerCase()).lean();
  const rows = [...(box?.messages ?? [])].sort((a, b) => (b.sentAt?.getTime() ?? 0) - (a.sentAt?.getTime() ?? 0)).slice(0, 100);
  return rows.map((r) => ({
    channel: r.channel ?? '',
    to: r.to ?? '',
    subject: r.subject ?? '',
    text: r.text ?? '',
    flowId: r.flowId ?? undefined,
    sentAt: (r.sentAt ?? new Date(0)).toISOString(),
  }));
}
