/** Development only (absent when NODE_ENV=production): what the dev transports delivered. */
import { Router } from 'express';
import { z } from 'zod';
import { route } from '../registry';
import { mailbox } from '../../domain/delivery';
import { deviceAttestationOf } from '../../lib/secrets';

export const devRouter = Router();

const OutboxQuery = z.object({ to: z.string().min(3).max(254) }).strict();
const OutboxMessage = z.object({ channel: z.enum(['sms', 'email']), to: z.string(), subject: z.string(), text: z.string(), flowId: z.string().optional(), sentAt: z.string() });

route(
  devRouter,
  {
    method: 'get',
    path: '/v1/dev/outbox',
    summary: 'Messages delivered to an address, newest first (development only)',
    tag: 'Development',
    query: OutboxQuery,
    ok: { status: 200, description: 'Messages', schema: z.array(OutboxMessage) },
  },
  async (_req, res, { query }) => {
    res.json(await mailbox(query.to));
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
