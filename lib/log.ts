/** Structured logs. Secrets are redacted by key wherever they appear. */
import pino from 'pino';
import { config } from './config';

export const REDACT = [
  'password', 'confirmation', 'answer', 'answers', 'token', 'passwordHash', 'authorization', 'body',
  '*.password', '*.confirmation', '*.answer', '*.answers', '*.token', '*.passwordHash', '*.body',
  'req.headers.authorization', 'req.headers.cookie', 'headers.authorization',
];

export const log = pino({ level: config().LOG_LEVEL, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'account-recovery', pid: process.pid } });
