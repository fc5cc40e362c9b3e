/** Structured logs. Secrets are redacted by key wherever they appear. */
import pino from 'pino';
import { config } from './config';

export const REDACT = [
  'password',
  'confirmation',
  'answer',
  'answers',
  'token',
  'passwordHash',
  'authorization',
  'body',
  '*.password',
  '*.confirmation',
  '*.answer',
  '*.answers',
  '*.token',
  '*.passwordHash',
  '*.body',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
];

/**
 * Written asynchronously: a line goes out at once when stdout is idle, and lines logged while a write is under
 * way go out together in the next one (one system call each instead of one per line; pino flushes what is left
 * on exit).
 */
export const log = pino(
  { level: config().LOG_LEVEL, redact: { paths: REDACT, censor: '[redacted]' }, base: { service: 'account-recovery', pid: process.pid } },
  pino.destination({ dest: 1, sync: false }),
);
