/**
 * An in-process service for one test file: the real worker (bundled once per file) and the real API
 * on a free port, against the Temporal dev server, FerretDB and SMTP capture that scripts/test.ts
 * started. Durations come in as env overrides so flows run in seconds.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import crypto from 'node:crypto';

export interface Harness {
  baseUrl: string;
  api: Api;
  stop(): Promise<void>;
  /** Stops the in-process worker (what a crash would do); `startWorker` brings one back. */
  stopWorker(): Promise<void>;
  startWorker(): Promise<void>;
}

export const FAST = {
  RESET_CODE_TTL: '20s',
  RESEND_COOLDOWN: '2s',
  MAX_RESENDS: '2',
  MAX_CODE_ATTEMPTS: '3',
  MAX_ANSWER_ATTEMPTS: '2',
  FLOW_TTL: '60s',
  SUPPORT_REVIEW_TTL: '30s',
  RECOVERY_HOLD: '3s',
  ARGON2_MEMORY_KIB: '8192',
  ARGON2_ITERATIONS: '1',
  RATE_LIMITS: 'off',
};

export async function startHarness(name: string, env: Record<string, string> = {}, opts: { worker?: boolean } = {}): Promise<Harness> {
  const base = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27017/account-recovery';
  const db = `t_${name.replace(/\W/g, '_')}_${crypto.randomBytes(3).toString('hex')}`;
  Object.assign(process.env, FAST, {
    MONGODB_URI: base.replace(/\/([^/?]*)(\?|$)/, `/${db}$2`),
    TEMPORAL_TASK_QUEUE: `test-${name}-${crypto.randomBytes(3).toString('hex')}`,
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    ...env,
  });
  const { connectMongo, disconnectMongo } = await import('../../db/mongo');
  const { createWorker } = await import('../../worker');
  const { createApp } = await import('../../api/app');
  const { closeTemporalClient } = await import('../../lib/temporal');
  const { closeMailer } = await import('../../domain/delivery');
  await connectMongo();
  const bundle = await quietWorkflowBundle();
  let running: { stop: () => Promise<void> } | undefined;
  const startWorker = async () => {
    const { worker, connection } = await createWorker({ workflowBundle: bundle, workflowsPath: undefined });
    const done = worker.run();
    running = {
      stop: async () => {
        worker.shutdown();
        await done;
        await connection.close();
      },
    };
  };
  if (opts.worker !== false) await startWorker();
  const server: Server = await new Promise((resolve) => {
    const s = createApp().listen(0, '127.0.0.1', () => resolve(s));
  });
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    baseUrl,
    api: new Api(baseUrl),
    startWorker,
    stopWorker: async () => {
      await running?.stop();
      running = undefined;
    },
    stop: async () => {
      await running?.stop();
      await new Promise((r) => server.close(r));
      server.closeAllConnections();
      await closeTemporalClient();
      await closeMailer();
      await disconnectMongo();
    },
  };
}

/**
 * The workflows bundled for this test file's worker, with the SDK's runtime logging warnings only (once per
 * process) and the bundler's chatter dropped.
 */
export async function quietWorkflowBundle() {
  const { bundleWorkflowCode, Runtime, DefaultLogger } = await import('@temporalio/worker');
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // already installed by an earlier file in this process
  }
  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} } as never;
  return bundleWorkflowCode({ workflowsPath: require.resolve('../../workflows'), logger: quiet });
}

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * A small HTTP client for the API, as a web page or an app would use it. Like a page, it keeps the
 * `flowSecret` of every flow it started and sends it as `Flow-Secret` on that flow's requests; a new
 * Api on the same base URL is a stranger who knows no secret. A `Flow-Secret` header given by the
 * caller wins (an empty one sends none).
 */
export class Api {
  readonly secrets = new Map<string, string>();
  constructor(readonly baseUrl: string) {}

  async call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const flowId = /^\/v1\/flows\/([a-z]{3}_[A-Za-z0-9_-]+)/.exec(path)?.[1];
    const all: Record<string, string> = { ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
    const known = flowId ? this.secrets.get(flowId) : undefined;
    if (known) all['flow-secret'] = known;
    for (const [k, v] of Object.entries(headers)) {
      if (k.toLowerCase() === 'flow-secret') {
        delete all['flow-secret'];
        if (v) all['flow-secret'] = v;
      } else all[k] = v;
    }
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: all,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json')) parsed = text ? JSON.parse(text) : undefined;
    const b = parsed as { flowId?: unknown; flowSecret?: unknown } | undefined;
    if (b && typeof b === 'object' && typeof b.flowId === 'string' && typeof b.flowSecret === 'string') this.secrets.set(b.flowId, b.flowSecret);
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  get = <T = any>(path: string, headers?: Record<string, string>) => this.call<T>('GET', path, undefined, headers);
  post = <T = any>(path: string, body?: unknown, headers?: Record<string, string>) => this.call<T>('POST', path, body, headers);

  /** The newest message delivered to `to` (dev outbox), optionally waiting for one newer than `after`. */
  async waitForMessage(to: string, opts: { after?: string; match?: RegExp; timeoutMs?: number } = {}): Promise<{ text: string; subject: string; sentAt: string; flowId?: string }> {
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    for (;;) {
      const { body } = await this.get(`/v1/dev/outbox?to=${encodeURIComponent(to)}`);
      const hit = (body as { text: string; subject: string; sentAt: string }[]).find((m) => (!opts.after || m.sentAt > opts.after) && (!opts.match || opts.match.test(m.text)));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no message to ${to}${opts.match ? ` matching ${opts.match}` : ''}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  async codeFor(to: string, after?: string): Promise<{ code: string; sentAt: string }> {
    const m = await this.waitForMessage(to, { after, match: /verification code is \d{6}/ });
    return { code: /\d{6}/.exec(m.text)![0], sentAt: m.sentAt };
  }

  /** Starts a reset and passes the captcha (test provider): the flow is at `code`. */
  async resetToCode(identifier: string): Promise<any> {
    const start = await this.post('/v1/flows/password-reset', { identifier });
    if (start.status !== 201) throw new Error(`start: ${start.status} ${JSON.stringify(start.body)}`);
    const id = start.body.flowId;
    await this.get(`/v1/flows/${id}/captcha`);
    const r = await this.post(`/v1/flows/${id}/captcha`, { answer: process.env.CAPTCHA_TEST_ANSWER ?? 'test' });
    if (r.status !== 200) throw new Error(`captcha: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
}

/** Phone numbers handed out in turn from a random start: random draws collided (phone_taken) in ~1 of 12 runs of a file. */
let nextPhone = crypto.randomInt(0, 10_000);

/** A fresh account with all three security questions answered "blue", created through the real code. */
export async function makeAccount(opts: { email?: string; phone?: string; password?: string; questions?: boolean } = {}) {
  const { createAccount } = await import('../../domain/accounts');
  const { hashSecret } = await import('../../lib/passwords');
  const { normalizeAnswer } = await import('../../lib/questions');
  const tag = crypto.randomBytes(4).toString('hex');
  const email = opts.email ?? `user-${tag}@example.com`;
  const phone = opts.phone ?? `+1415555${String(nextPhone++ % 10_000).padStart(4, '0')}`;
  const password = opts.password ?? 'old password is long enough';
  const ids = ['q-first-pet', 'q-birth-city', 'q-first-school'];
  const accountId = await createAccount({
    email,
    phone,
    passwordHash: await hashSecret(password),
    securityAnswers: opts.questions === false ? [] : await Promise.all(ids.map(async (questionId) => ({ questionId, hash: await hashSecret(normalizeAnswer('blue')) }))),
  });
  return { accountId, email, phone, password, answers: ids.map((questionId) => ({ questionId, answer: 'Blue ' })) };
}
