/** The app's own processes: the codec server, the worker and the API, each a ManagedProcess running under tsx. */
import path from 'node:path';
import { ROOT } from '../tools';
import { ManagedProcess, waitForLog, type ReadyCheck } from './process';
import { freePort, waitForHttp } from './wait';

export interface StartAppOptions {
  /** Where worker.log, api.log, codec.log go. */
  logDir: string;
  /** API port; default env.PORT, else a free port. */
  apiPort?: number;
  /** Also start the codec server (api/codec-server.ts). */
  codec?: boolean;
  /** Codec server port; default env.CODEC_PORT, else a free port. */
  codecPort?: number;
  /** Start the worker / the API (default both). */
  worker?: boolean;
  api?: boolean;
  /** The Temporal UI's URL: the codec server then admits it in CORS (unless env sets CODEC_CORS_ORIGINS). */
  temporalUiUrl?: string;
  /** How long to wait for each to be ready; default 120 s (the worker bundles the workflows first). */
  readyTimeoutMs?: number;
}

export interface App {
  worker?: ManagedProcess;
  api?: ManagedProcess;
  codec?: ManagedProcess;
  /** The environment the processes were given (including PORT and CODEC_PORT). */
  env: NodeJS.ProcessEnv;
  urls: { api?: string; docs?: string; codec?: string };
  /** Stops API, worker, codec server, in that order. */
  stop(): Promise<void>;
}

const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/** Starts the codec server, the worker and the API with `env` (on top of this process's environment). */
export async function startApp(env: Record<string, string | undefined>, opts: StartAppOptions): Promise<App> {
  const apiPort = opts.apiPort ?? (env.PORT ? Number(env.PORT) : await freePort());
  const codecPort = opts.codec ? (opts.codecPort ?? (env.CODEC_PORT ? Number(env.CODEC_PORT) : await freePort())) : undefined;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, PORT: String(apiPort) };
  if (codecPort) childEnv.CODEC_PORT = String(codecPort);
  if (codecPort && opts.temporalUiUrl && !env.CODEC_CORS_ORIGINS) {
    const ui = new URL(opts.temporalUiUrl);
    childEnv.CODEC_CORS_ORIGINS = [`http://localhost:${ui.port}`, `http://127.0.0.1:${ui.port}`].join(',');
  }
  const timeout = opts.readyTimeoutMs ?? 120_000;
  const tsx = (name: string, entry: string, ready: ReadyCheck, procEnv = childEnv) =>
    new ManagedProcess({
      name,
      command: TSX,
      args: [entry],
      env: procEnv,
      cwd: ROOT,
      logFile: path.join(opts.logDir, `${name}.log`),
      ready,
      readyTimeoutMs: timeout,
      stopGraceMs: 15_000,
    });

  const app: App = { env: childEnv, urls: {}, stop: async () => undefined };
  if (codecPort) {
    app.codec = tsx('codec', 'api/codec-server.ts', (signal) => waitForHttp(`http://127.0.0.1:${codecPort}/healthz`, 200, { signal }));
    app.urls.codec = `http://127.0.0.1:${codecPort}`;
  }
  if (opts.worker !== false) {
    // Readiness is the worker's "worker started" line, logged at info: a quieter LOG_LEVEL would hide it.
    // The worker's log goes to its own file, so running it at info costs nothing.
    const quiet = ['warn', 'error', 'fatal', 'silent'].includes(childEnv.LOG_LEVEL ?? '');
    const workerEnv = quiet ? { ...childEnv, LOG_LEVEL: 'info' } : childEnv;
    app.worker = tsx('worker', 'worker/index.ts', (signal, proc) => waitForLog(proc, 'worker started', { signal }), workerEnv);
  }
  if (opts.api !== false) {
    app.api = tsx('api', 'api/server.ts', (signal) => waitForHttp(`http://127.0.0.1:${apiPort}/readyz`, 200, { signal, intervalMs: 250 }));
    app.urls.api = `http://127.0.0.1:${apiPort}`;
    app.urls.docs = `http://127.0.0.1:${apiPort}/docs`;
  }
  const order = [app.codec, app.worker, app.api].filter((p): p is ManagedProcess => !!p);
  app.stop = async () => {
    for (const p of [...order].reverse()) await p.stop();
  };
  // in parallel: each takes a few seconds to load TypeScript
  const results = await Promise.allSettled(order.map((p) => p.start()));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length) {
    await app.stop();
    throw new Error(failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n'));
  }
  return app;
}
