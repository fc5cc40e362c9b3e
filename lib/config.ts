/**
 * The one place configuration is read. Every variable is validated at start; a bad or missing one
 * stops the process with a single line naming the variable and what it expects.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { z } from 'zod';
import { parseDuration } from './duration';

const duration = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `a duration such as 30s, 10m, 24h (got "${v}")` });
        return z.NEVER;
      }
      return ms;
    });

const int = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

const secret = z.string().min(32, 'at least 32 characters of secret material');

/** Every environment variable the service reads, with its default. Keep in sync with README and docker-compose.yml. */
export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(3000, 0, 65535),
  PUBLIC_URL: z.string().url().optional(),
  TRUST_PROXY: z
    .string()
    .optional()
    .refine((v) => v === undefined || (v !== 'true' && v.trim() !== ''), 'a hop count or a CIDR list, never "true"'),
  TEMPORAL_ADDRESS: z.string().default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().default('default'),
  TEMPORAL_TASK_QUEUE: z.string().default('account-recovery'),
  /** Flows the worker keeps in memory between their tasks; one that only waits on a timer is replayed when it fires. */
  WORKER_MAX_CACHED_WORKFLOWS: int(250, 2, 100_000),
  TEMPORAL_API_KEY: z.string().optional(),
  TEMPORAL_TLS_CERT_PATH: z.string().optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().optional(),
  MONGODB_URI: z
    .string()
    .regex(/^mongodb(\+srv)?:\/\//, 'a mongodb:// or mongodb+srv:// URI')
    .default('mongodb://127.0.0.1:27017/account-recovery'),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, 'an smtp:// or smtps:// URL')
    .default('smtp://127.0.0.1:1025'),
  MAIL_FROM: z.string().default('Account Recovery <no-reply@account.example>'),
  SMS_PROVIDER: z.enum(['dev', 'webhook']).default('dev'),
  SMS_WEBHOOK_URL: z.string().url().optional(),
  CAPTCHA_PROVIDER: z.enum(['svg', 'test']).default('svg'),
  CAPTCHA_TEST_ANSWER: z.string().min(1).default('test'),
  OPS_TOKEN: z.string().min(12, 'at least 12 characters').optional(),
  CODE_HMAC_SECRET: secret.optional(),
  PAYLOAD_ENCRYPTION_KEY: z
    .string()
    .regex(
      /^([A-Za-z0-9_-]+:)?[A-Za-z0-9+/=]{43,44}(,([A-Za-z0-9_-]+:)?[A-Za-z0-9+/=]{43,44})*$/,
      'base64 of 32 bytes, optionally "keyId:" before it; several comma-separated, newest first',
    )
    .optional(),
  RESET_CODE_TTL: duration('10m'),
  CHANGE_PHONE_CODE_TTL: duration('24h'),
  RESEND_COOLDOWN: duration('60s'),
  MAX_RESENDS: int(5, 0, 100),
  MAX_CODE_ATTEMPTS: int(5, 1, 100),
  MAX_ANSWER_ATTEMPTS: int(3, 1, 100),
  FLOW_TTL: duration('1h'),
  SUPPORT_REVIEW_TTL: duration('72h'),
  RECOVERY_HOLD: duration('24h'),
  PRIVILEGED_SESSION_AGE: duration('1h'),
  SESSION_TTL: duration('30d'),
  CODEC_PORT: int(8234, 0, 65535),
  CODEC_HOST: z.string().default('127.0.0.1'),
  CODEC_CORS_ORIGINS: z.string().default('http://localhost:8233,http://127.0.0.1:8233'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATA_DIR: z.string().default('.data'),
  RATE_LIMITS: z.enum(['on', 'off']).default('on'),
  ARGON2_MEMORY_KIB: int(19456, 8192, 1048576),
  ARGON2_ITERATIONS: int(2, 1, 20),
  /** The maker's key behind device attestations: base64url(HMAC-SHA256(key, imei)) proves a device binds itself. */
  DEVICE_ATTESTATION_KEY: secret.optional(),
  /** Sign-up messages per hour; past it new sign-ups show the captcha before any message is sent. */
  SIGNUP_MESSAGE_BUDGET: int(1000, 0, 10_000_000),
  /** host:port of the Prometheus listener (never the public port); "off" serves no metrics. */
  METRICS_ADDR: z
    .string()
    .default('127.0.0.1:9464')
    .refine((v) => v === 'off' || /^[^\s:]*:\d{1,5}$/.test(v) || /^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(v), 'host:port (e.g. 127.0.0.1:9464, :0 for any free port) or "off"'),
});

export type Env = z.infer<typeof envSchema>;
export type Config = Omit<Env, 'CODE_HMAC_SECRET' | 'PAYLOAD_ENCRYPTION_KEY' | 'OPS_TOKEN' | 'DEVICE_ATTESTATION_KEY'> & {
  CODE_HMAC_SECRET: string;
  DEVICE_ATTESTATION_KEY: string;
  PAYLOAD_ENCRYPTION_KEY: string;
  OPS_TOKEN: string;
  isProduction: boolean;
  publicUrl: string;
};

export class ConfigError extends Error {}

/** Secrets that, outside production, are generated once and kept under DATA_DIR. */
function devSecret(dataDir: string, name: string, make: () => string): string {
  const file = path.join(dataDir, 'secrets', name);
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const value = make();
    try {
      fs.writeFileSync(file, value + '\n', { mode: 0o600, flag: 'wx' });
      return value;
    } catch {
      // another process won the race: use what it wrote
      return fs.readFileSync(file, 'utf8').trim();
    }
  }
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(`config: ${String(issue.path[0])} must be ${issue.message}`);
  }
  const env = parsed.data;
  const isProduction = env.NODE_ENV === 'production';
  const required = ['CODE_HMAC_SECRET', 'PAYLOAD_ENCRYPTION_KEY', 'OPS_TOKEN', 'DEVICE_ATTESTATION_KEY'] as const;
  if (isProduction) {
    for (const name of required) {
      if (!env[name]) throw new ConfigError(`config: ${name} must be set when NODE_ENV=production`);
    }
    if (!env.PUBLIC_URL) throw new ConfigError('config: PUBLIC_URL must be set when NODE_ENV=production');
    if (env.SMS_PROVIDER === 'dev') throw new ConfigError('config: SMS_PROVIDER must be "webhook" when NODE_ENV=production');
    if (env.CAPTCHA_PROVIDER === 'test') throw new ConfigError('config: CAPTCHA_PROVIDER must be "svg" when NODE_ENV=production');
  }
  if (env.SMS_PROVIDER === 'webhook' && !env.SMS_WEBHOOK_URL) {
    throw new ConfigError('config: SMS_WEBHOOK_URL must be set when SMS_PROVIDER=webhook');
  }
  const dataDir = path.resolve(env.DATA_DIR);
  return {
    ...env,
    isProduction,
    CODE_HMAC_SECRET: env.CODE_HMAC_SECRET ?? devSecret(dataDir, 'code-hmac-secret', () => crypto.randomBytes(32).toString('base64url')),
    PAYLOAD_ENCRYPTION_KEY:
      env.PAYLOAD_ENCRYPTION_KEY ?? devSecret(dataDir, 'payload-encryption-key', () => `dev-${crypto.randomBytes(3).toString('hex')}:${crypto.randomBytes(32).toString('base64')}`),
    OPS_TOKEN: env.OPS_TOKEN ?? 'dev-ops-token',
    DEVICE_ATTESTATION_KEY: env.DEVICE_ATTESTATION_KEY ?? devSecret(dataDir, 'device-attestation-key', () => crypto.randomBytes(32).toString('base64url')),
    publicUrl: (env.PUBLIC_URL ?? `http://localhost:${env.PORT}`).replace(/\/$/, ''),
  };
}

let cached: Config | undefined;
/** The process-wide configuration; exits with one line when it is invalid. */
export function config(): Config {
  if (!cached) {
    try {
      cached = loadConfig();
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(err.message + '\n');
        process.exit(2);
      }
      throw err;
    }
  }
  return cached;
}
