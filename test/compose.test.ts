/**
 * docker-compose.yml cannot be started here (no Docker engine), so it is checked by reading it:
 * the services exist and wait for what they need, every variable handed to the app is one that
 * lib/config.ts knows, and the production configuration it produces is accepted by loadConfig().
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { parse } from 'yaml';
import { envSchema, loadConfig } from '../lib/config';

type Env = Record<string, string>;
interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, unknown> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
  ports?: (string | { target?: number; published?: string | number; host_ip?: string })[];
}

const COMPOSE_FILE = path.join(__dirname, '..', 'docker-compose.yml');
const compose = parse(fs.readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as { services?: Record<string, Service> };
const services = compose.services ?? {};

function service(name: string): Service {
  const s = services[name];
  if (!s) throw new Error(`docker-compose.yml has no service "${name}"`);
  return s;
}

/** A service's environment as written in the file (placeholders not yet interpolated). */
function rawEnv(name: string): Env {
  const env = service(name).environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const i = entry.indexOf('=');
        return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)]));
}

function dependsOn(name: string): Record<string, string | undefined> {
  const deps = service(name).depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, undefined]));
  return Object.fromEntries(Object.entries(deps).map(([k, v]) => [k, v?.condition]));
}

const asText = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(' ') : (v ?? ''));

/** What an operator would plausibly pass for a variable the file requires with `${NAME:?...}`. */
const PLAUSIBLE: Env = {
  CODE_HMAC_SECRET: crypto.randomBytes(36).toString('base64url'),
  PAYLOAD_ENCRYPTION_KEY: `k2026:${crypto.randomBytes(32).toString('base64')}`,
  OPS_TOKEN: crypto.randomBytes(24).toString('base64url'),
  DEVICE_ATTESTATION_KEY: crypto.randomBytes(36).toString('base64url'),
  SMS_WEBHOOK_URL: 'https://sms-gateway.example.com/send',
  PUBLIC_URL: 'https://account.example.com',
};

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g;

/** Compose-style interpolation of one value: `${X:-default}` takes the default, `${X:?msg}` and `${X}` a plausible value. */
function interpolate(value: string): string {
  const escaped = value.split('$$');
  return escaped
    .map((part) =>
      part.replace(PLACEHOLDER, (_m, name: string, op: string | undefined, arg: string | undefined) => {
        if (op === ':-' || op === '-') return arg ?? '';
        const plausible = PLAUSIBLE[name];
        if (plausible === undefined) throw new Error(`the test has no plausible value for \${${name}}: add one to PLAUSIBLE`);
        return plausible;
      }),
    )
    .join('$');
}

const interpolated = (name: string): Env => Object.fromEntries(Object.entries(rawEnv(name)).map(([k, v]) => [k, interpolate(v)]));

const APP_SERVICES = ['api', 'worker'] as const;
const SECRETS = ['CODE_HMAC_SECRET', 'PAYLOAD_ENCRYPTION_KEY', 'OPS_TOKEN', 'DEVICE_ATTESTATION_KEY'] as const;
const REQUIRED_IN_PRODUCTION = [...SECRETS, 'PUBLIC_URL', 'SMS_WEBHOOK_URL'] as const;

describe('docker-compose.yml', () => {
  it('has every service the app needs', () => {
    for (const name of ['temporal', 'temporal-ui', 'postgresql', 'mongodb', 'mailpit', 'api', 'worker', 'codec', 'temporal-admin-tools']) {
      expect(Object.keys(services)).toContain(name);
    }
  });

  it('runs api, worker and codec from the Dockerfile image with their own commands', () => {
    expect(asText(service('api').command)).toMatch(/node dist\/api\/server\.js/);
    expect(asText(service('worker').command)).toMatch(/node dist\/worker\/index\.js/);
    expect(asText(service('codec').command)).toMatch(/node dist\/api\/codec-server\.js/);
    for (const name of ['api', 'worker', 'codec']) expect(service(name).build).toBeDefined();
  });

  it.each(APP_SERVICES)('starts %s only once temporal, mongodb and mailpit are healthy and search attributes exist', (name) => {
    const deps = dependsOn(name);
    expect(deps).toMatchObject({
      temporal: 'service_healthy',
      mongodb: 'service_healthy',
      mailpit: 'service_healthy',
      'temporal-admin-tools': 'service_completed_successfully',
    });
    for (const dep of ['temporal', 'mongodb', 'mailpit']) expect(service(dep).healthcheck?.test).toBeDefined();
  });

  it('runs temporal on postgres and waits for it', () => {
    expect(service('temporal').image).toMatch(/^temporalio\/auto-setup:/);
    expect(rawEnv('temporal')).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
    expect(dependsOn('temporal')).toMatchObject({ postgresql: 'service_healthy' });
    expect(asText(service('postgresql').healthcheck?.test)).toMatch(/pg_isready/);
    expect(asText(service('temporal').healthcheck?.test)).toMatch(/temporal operator cluster health|tctl .*cluster health/);
  });

  it('runs mongodb as a replica set and the app connects to it as one', () => {
    expect(asText(service('mongodb').command)).toMatch(/--replSet\s+rs0/);
    expect(asText(service('mongodb').healthcheck?.test)).toMatch(/rs\.initiate/);
    for (const name of APP_SERVICES) expect(rawEnv(name).MONGODB_URI).toMatch(/^mongodb:\/\/mongodb:27017\/[^?]+\?(.*&)?replicaSet=rs0/);
  });

  it('registers the FlowKind, FlowStep, FlowStatus and FlowStepSince search attributes in namespace default', () => {
    const admin = service('temporal-admin-tools');
    const script = `${asText(admin.entrypoint)} ${asText(admin.command)}`;
    expect(script).toMatch(/temporal operator search-attribute create/);
    expect(script).toMatch(/--namespace default/);
    const expected: Record<string, string> = { FlowKind: 'Keyword', FlowStep: 'Keyword', FlowStatus: 'Keyword', FlowStepSince: 'Datetime' };
    for (const [name, type] of Object.entries(expected)) {
      expect(script).toMatch(new RegExp(`--name\\s+${name}\\s+--type\\s+${type}\\b`));
    }
    expect(dependsOn('temporal-admin-tools')).toMatchObject({ temporal: 'service_healthy' });
  });

  it('points the Temporal UI at temporal and the codec server', () => {
    const ui = rawEnv('temporal-ui');
    expect(ui.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(ui.TEMPORAL_CODEC_ENDPOINT).toMatch(/:8234\/?$/);
    expect((service('temporal-ui').ports ?? []).map(String).some((p) => /(^|:)8233:8080$/.test(p))).toBe(true);
  });

  it('binds the codec server to the host loopback only', () => {
    const ports = (service('codec').ports ?? []).map(String);
    expect(ports.length).toBeGreaterThan(0);
    for (const p of ports) expect(p).toMatch(/^127\.0\.0\.1:/);
    expect(rawEnv('codec').CODEC_PORT).toBe('8234');
  });

  it('serves api metrics on their own port, published on the host loopback only', () => {
    const env = interpolated('api');
    expect(env.METRICS_ADDR).toBe('0.0.0.0:9464');
    expect(loadConfig(env).METRICS_ADDR).toBe('0.0.0.0:9464');
    const ports = (service('api').ports ?? []).map(String);
    expect(ports).toContain('127.0.0.1:9464:9464');
    for (const p of ports) if (/:9464$/.test(p)) expect(p).toMatch(/^127\.0\.0\.1:/);
  });

  it('checks api readiness on /readyz', () => {
    expect(asText(service('api').healthcheck?.test)).toMatch(/\/readyz/);
  });

  it.each([...APP_SERVICES, 'codec'])('sets on %s only variables that lib/config.ts declares', (name) => {
    const known = new Set(Object.keys(envSchema.shape));
    const extra = name === 'codec' ? new Set(['CODEC_PORT', 'CODEC_HOST']) : new Set<string>();
    const unknown = Object.keys(rawEnv(name)).filter((k) => !known.has(k) && !extra.has(k));
    expect(unknown).toEqual([]);
  });

  it.each(APP_SERVICES)('sets on %s every variable loadConfig requires in production', (name) => {
    const env = rawEnv(name);
    expect(env.NODE_ENV).toBe('production');
    for (const key of REQUIRED_IN_PRODUCTION) expect(env[key] ?? '').not.toBe('');
    expect(env).toMatchObject({ TEMPORAL_ADDRESS: 'temporal:7233', SMTP_URL: 'smtp://mailpit:1025', SMS_PROVIDER: 'webhook', CAPTCHA_PROVIDER: 'svg' });
  });

  it.each(APP_SERVICES)('gives the secrets on %s no default: ${X:?message}', (name) => {
    const env = rawEnv(name);
    for (const key of SECRETS) expect(env[key]).toMatch(new RegExp(`^\\$\\{${key}:\\?[^}]+\\}$`));
  });

  it.each(APP_SERVICES)('produces an environment for %s that loadConfig() accepts', (name) => {
    const env = interpolated(name);
    const cfg = loadConfig(env);
    expect(cfg.isProduction).toBe(true);
    expect(cfg.CODE_HMAC_SECRET).toBe(PLAUSIBLE.CODE_HMAC_SECRET);
    expect(cfg.PAYLOAD_ENCRYPTION_KEY).toBe(PLAUSIBLE.PAYLOAD_ENCRYPTION_KEY);
    expect(cfg.OPS_TOKEN).toBe(PLAUSIBLE.OPS_TOKEN);
    expect(cfg.DEVICE_ATTESTATION_KEY).toBe(PLAUSIBLE.DEVICE_ATTESTATION_KEY);
    expect(cfg.MONGODB_URI).toBe('mongodb://mongodb:27017/account-recovery?replicaSet=rs0');
  });

  it('refuses to run production without a secret (the placeholders carry the weight)', () => {
    for (const key of SECRETS) {
      const env = interpolated('api');
      delete env[key];
      expect(() => loadConfig(env)).toThrow(new RegExp(key));
    }
  });
});
