/**
 * The codec server for the Temporal Web UI and CLI: decodes (and encodes) payloads with the same
 * AES-GCM keys as the worker, so an operator sees clear payloads while history stays encrypted at
 * rest. It binds to loopback (CODEC_HOST, default 127.0.0.1): only someone on the operator's machine
 * (or tunnelled to it) can decode. CORS admits only the UI's origin (CODEC_CORS_ORIGINS).
 */
import express from 'express';
import { config } from '../lib/config';
import { log } from '../lib/log';
import { EncryptionCodec, parseKeys } from '../lib/codec';
import type { Payload } from '@temporalio/common';

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

const toPayload = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: p.data === undefined ? undefined : Buffer.from(p.data, 'base64'),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: p.data ? Buffer.from(p.data).toString('base64') : undefined,
});

const LOOPBACK = /^(127(\.\d{1,3}){3}|localhost|::1|\[::1\])$/i;

export function createCodecApp(): express.Express {
  const cfg = config();
  const codec = new EncryptionCodec(parseKeys(cfg.PAYLOAD_ENCRYPTION_KEY));
  const origins = new Set(cfg.CODEC_CORS_ORIGINS.split(',').map((s) => s.trim()));
  const app = express();
  app.disable('x-powered-by');
  // Bound to loopback, it answers only requests addressed to loopback: a web page whose own domain
  // resolves to 127.0.0.1 (DNS rebinding) sends its own name as Host and is turned away.
  const guardHost = LOOPBACK.test(cfg.CODEC_HOST);
  app.use((req, res, next) => {
    if (guardHost && !LOOPBACK.test((req.headers.host ?? '').replace(/:\d+$/, ''))) {
      return res.status(421).json({ error: 'this codec server answers only to 127.0.0.1, localhost or [::1]' });
    }
    next();
  });
  app.use((req, res, next) => {
    const origin = req.header('origin');
    if (origin && origins.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'content-type, x-namespace, authorization');
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') return res.status(204).end();
    next();
  });
  app.use(express.json({ limit: '8mb' }));
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  for (const op of ['encode', 'decode'] as const) {
    app.post([`/codec/${op}`, `/${op}`], async (req, res) => {
      const payloads = (req.body?.payloads ?? []) as JsonPayload[];
      if (!Array.isArray(payloads)) return res.status(400).json({ error: 'payloads must be an array' });
      try {
        const out = await codec[op](payloads.map(toPayload));
        res.json({ payloads: out.map(toJson) });
      } catch (err) {
        res.status(400).json({ error: String((err as Error).message) });
      }
    });
  }
  return app;
}

if (require.main === module) {
  const cfg = config();
  const server = createCodecApp().listen(cfg.CODEC_PORT, cfg.CODEC_HOST, () => log.info({ host: cfg.CODEC_HOST, port: cfg.CODEC_PORT }, 'codec server started'));
  const stop = () => server.close(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
