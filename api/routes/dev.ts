/** Development only (absent when NODE_ENV=production): what the dev transports delivered. */
import { Router } from 'express';
import { z } from 'zod';
import { route } from '../registry';
import { Outbox } from '../../db/models';
import { deviceAttestationOf } from '../../lib/secrets';

export const devRouter = Router();

const OutboxQuery = z.object({ to: z.string().min(3).max(254) }).strict();
const OutboxMessage = z.object({ channel: z.enum(['sms', 'email']), to: z.string(), subject: z.string(), text: z.string(), flowId: z.string().optional(), sentAt: z.string() });

route(
  devRouter,
  { method: 'get', path: '/v1/dev/outbox', summary: 'Messages delivered to an address, newest first (development only)', tag: 'Development', query: OutboxQuery, ok: { status: 200, description: 'Messages', schema: z.array(OutboxMessage) } },
  async (_req, res, { query }) => {
    const mailbox = await Outbox.findById(query.to.trim().toLowerCase()).lean();
    const rows = [...(mailbox?.messages ?? [])].sort((a, b) => (b.sentAt?.getTime() ?? 0) - (a.sentAt?.getTime() ?? 0)).slice(0, 100);
    res.json(rows.map((r) => ({ channel: r.channel, to: r.to, subject: r.subject ?? '', text: r.text ?? '', flowId: r.flowId ?? undefined, sentAt: (r.sentAt ?? new Date(0)).toISOString() })));
  },
);

const AttestationQuery = z.object({ imei: z.string().regex(/^\d{15}$/, '15 digits') }).strict();

route(
  devRouter,
  {
    method: 'get',
    path: '/v1/dev/device-attestation',
    summary: "A device's attestation, as the phone would present it when it binds itself (development only)",
    tag: 'Development',
    query: AttestationQuery,
    ok: { status: 200, description: 'The attestation', schema: z.object({ attestation: z.string() }) },
  },
  async (_req, res, { query }) => {
    res.json({ attestation: deviceAttestationOf(query.imei) });
  },
);
