/**
 * An isolated stack for the bench and the drills: its own temp dir, free ports, a Temporal dev server
 * with its state in a file (so it can be killed and restarted), FerretDB, maildev, and the app's worker
 * and API as separate processes (scripts/stack/). Everything it starts carries BENCH_RUN_DIR=<dir> in
 * its environment, so nothing is left behind even if a child outlives its parent.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureTools } from '../../scripts/tools';
import { onShutdownSignal, reapByEnv, startApp, startServices, stopAllManaged, type App, type Stack } from '../../scripts/stack';

export interface RunStack {
  dataDir: string;
  logDir: string;
  stack: Stack;
  app: App;
  /** The environment the app processes got (secrets, task queue, services). */
  appEnv: Record<string, string>;
  apiUrl: string;
  /** Stops the app and the services; removes the temp dir unless `keep` (or a failure). */
  stop(opts?: { keep?: boolean }): Promise<void>;
}

export interface RunStackOptions {
  /** Temp dir prefix, e.g. "bench". */
  name: string;
  /** Extra environment for the worker and API (on top of the defaults below). */
  appEnv?: Record<string, string>;
  /** Extra NODE_OPTIONS for the app processes (e.g. --cpu-prof). */
  nodeOptions?: string;
  log?: (msg: string) => void;
}

/** Secrets and settings shared by every app process of one run (and by the run itself, for seeding). */
export function runSecrets(): Record<string, string> {
  return {
    CODE_HMAC_SECRET: crypto.randomBytes(32).toString('base64url'),
    PAYLOAD_ENCRYPTION_KEY: `run:${crypto.randomBytes(32).toString('base64')}`,
    DEVICE_ATTESTATION_KEY: crypto.randomBytes(32).toString('base64url'),
  };
}

export async function startRunStack(opts: RunStackOptions): Promise<RunStack> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const tools = await ensureTools(['temporal', 'ferretdb']);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `account-recovery-${opts.name}-`));
  const logDir = path.join(dataDir, 'logs');
  process.env.BENCH_RUN_DIR = dataDir; // inherited by every child: reapByEnv finds them
  let stopping = false;
  const removeHandler = onShutdownSignal(async () => {
    stopping = true;
    await stopAllManaged();
    await reapByEnv('BENCH_RUN_DIR', dataDir);
    log(`${opts.name}: interrupted; data and logs kept in ${dataDir}`);
  });

  const t0 = Date.now();
  const stack = await startServices({
    dataDir: path.join(dataDir, 'stack'),
    persistent: true,
    headless: true,
    logDir,
    mongoDbName: opts.name.replace(/\W/g, '_'),
    bin: { temporal: tools.temporal, ferretdb: tools.ferretdb },
  });
  log(`${opts.name}: services up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${dataDir})`);

  const appEnv: Record<string, string> = {
    ...stack.env,
    MAILDEV_URL: stack.env.MAILDEV_URL ?? '',
    NODE_ENV: 'development',
    CAPTCHA_PROVIDER: 'test',
    RATE_LIMITS: 'off',
    LOG_LEVEL: 'info',
    // any free port: a run's APIs (the bench's parked one too) must not fight over the default 9464
    METRICS_ADDR: '127.0.0.1:0',
    DATA_DIR: path.join(dataDir, 'app'),
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: `${opts.name}-${crypto.randomBytes(3).toString('hex')}`,
    ...runSecrets(),
    ...opts.appEnv,
  };
  if (opts.nodeOptions) appEnv.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} ${opts.nodeOptions}`.trim();
  // The run's own process (seeding, checks) uses the same configuration.
  for (const [k, v] of Object.entries(appEnv)) if (k !== 'NODE_OPTIONS') process.env[k] = v;

  const t1 = Date.now();
  let app: App;
  try {
    app = await startApp(appEnv, { logDir });
  } catch (err) {
    await stack.stop();
    throw err;
  }
  log(`${opts.name}: worker and API up in ${((Date.now() - t1) / 1000).toFixed(1)} s (${app.urls.api})`);

  return {
    dataDir,
    logDir,
    stack,
    app,
    appEnv,
    apiUrl: app.urls.api!,
    stop: async ({ keep } = {}) => {
      if (stopping) return;
      await app.stop().catch(() => undefined);
      await stack.stop().catch(() => undefined);
      await stopAllManaged();
      const leaked = await reapByEnv('BENCH_RUN_DIR', dataDir);
      if (leaked.length) log(`${opts.name}: killed ${leaked.length} leftover process(es)`);
      removeHandler();
      if (keep) log(`${opts.name}: data and logs kept in ${dataDir}`);
      else fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
