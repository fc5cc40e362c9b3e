/** The infrastructure the app needs (Temporal, MongoDB, SMTP): started here unless given as external services. */
import fs from 'node:fs';
import path from 'node:path';
import { TOOLS_BIN } from '../tools';
import type { ManagedProcess } from './process';
import { temporalProcess } from './temporal';
import { ferretdbProcess } from './ferretdb';
import { maildevProcess } from './maildev';
import { freePort } from './wait';

export interface StackPorts {
  temporal?: number;
  temporalUi?: number;
  mongo?: number;
  smtp?: number;
  mailWeb?: number;
}

export interface StartServicesOptions {
  /** Data for the services: temporal.db, ferretdb/, maildev/, logs/ (default). */
  dataDir: string;
  /** Keep Temporal's state in <dataDir>/temporal.db (needed to kill and restart it); otherwise in memory. */
  persistent: boolean;
  /** Fixed ports; any left out is a free port. */
  ports?: StackPorts;
  /** No Temporal Web UI. */
  headless?: boolean;
  /** Remote codec endpoint the Temporal UI uses to decode payloads. */
  codecEndpoint?: string;
  /** Services that already exist: these are not started. */
  external?: { temporalAddress?: string; mongodbUri?: string; smtpUrl?: string };
  /** Database name in MONGODB_URI for the FerretDB we start; default account-recovery. */
  mongoDbName?: string;
  /** Where the services' logs go; default <dataDir>/logs. */
  logDir?: string;
  /** Binaries; default: from PATH, else .tools/bin (see scripts/tools.ts ensureTools()). */
  bin?: { temporal?: string; ferretdb?: string };
  /** Print a line per service as it becomes ready. */
  verbose?: boolean;
}

export type ServiceName = 'temporal' | 'mongo' | 'smtp';

export interface StackEnv {
  TEMPORAL_ADDRESS: string;
  MONGODB_URI: string;
  SMTP_URL: string;
  /** maildev's web UI and REST API (GET /email); only when we started maildev. */
  MAILDEV_URL?: string;
}

export interface Stack {
  env: StackEnv;
  urls: { temporal: string; temporalUi?: string; mongo: string; smtp: string; mailInbox?: string };
  ports: StackPorts;
  services: Record<ServiceName, ManagedProcess | undefined>;
  logDir: string;
  /** Stops every service we started, in reverse order. */
  stop(): Promise<void>;
}

function toolPath(name: string, given?: string): string {
  if (given) return given;
  const local = path.join(TOOLS_BIN, name);
  if (fs.existsSync(local)) return local;
  return name; // from PATH
}

/** Starts the services not given as external (in parallel) and returns how to reach all of them. */
export async function startServices(opts: StartServicesOptions): Promise<Stack> {
  const dataDir = path.resolve(opts.dataDir);
  const logDir = opts.logDir ?? path.join(dataDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const ext = opts.external ?? {};
  const ports: StackPorts = {};
  const services: Record<ServiceName, ManagedProcess | undefined> = { temporal: undefined, mongo: undefined, smtp: undefined };

  // How to make each service on fresh ports: a port we picked can be taken before the service binds it (an
  // outbound connection's ephemeral port, or the Temporal dev server's own internal ports), so a start that
  // fails on "address already in use" is tried again on new ports. Ports the caller fixed are used as given.
  const makers: Partial<Record<ServiceName, { fixed: boolean; make: () => Promise<ManagedProcess> }>> = {};
  if (!ext.temporalAddress) {
    makers.temporal = {
      fixed: !!opts.ports?.temporal,
      make: async () => {
        ports.temporal = opts.ports?.temporal ?? (await freePort());
        if (!opts.headless) ports.temporalUi = opts.ports?.temporalUi ?? (await freePort());
        return temporalProcess({
          bin: toolPath('temporal', opts.bin?.temporal),
          port: ports.temporal,
          uiPort: ports.temporalUi,
          headless: opts.headless,
          dbFile: opts.persistent ? path.join(dataDir, 'temporal.db') : undefined,
          codecEndpoint: opts.codecEndpoint,
          logFile: path.join(logDir, 'temporal.log'),
        });
      },
    };
  }
  if (!ext.mongodbUri) {
    makers.mongo = {
      fixed: !!opts.ports?.mongo,
      make: async () => {
        ports.mongo = opts.ports?.mongo ?? (await freePort());
        return ferretdbProcess({ bin: toolPath('ferretdb', opts.bin?.ferretdb), port: ports.mongo, dataDir, logFile: path.join(logDir, 'ferretdb.log') });
      },
    };
  }
  if (!ext.smtpUrl) {
    makers.smtp = {
      fixed: !!(opts.ports?.smtp || opts.ports?.mailWeb),
      make: async () => {
        ports.smtp = opts.ports?.smtp ?? (await freePort());
        ports.mailWeb = opts.ports?.mailWeb ?? (await freePort());
        return maildevProcess({ smtpPort: ports.smtp, webPort: ports.mailWeb, mailDir: path.join(dataDir, 'maildev'), logFile: path.join(logDir, 'maildev.log') });
      },
    };
  }

  const order: ServiceName[] = ['temporal', 'mongo', 'smtp'];
  const stop = async () => {
    for (const name of [...order].reverse()) await services[name]?.stop();
  };
  const results = await Promise.allSettled(
    order.map(async (name) => {
      const maker = makers[name];
      if (!maker) return;
      for (let attempt = 1; ; attempt++) {
        const proc = (services[name] = await maker.make());
        const started = Date.now();
        try {
          await proc.start();
        } catch (err) {
          if (maker.fixed || attempt >= 3 || !/address already in use|EADDRINUSE/i.test(proc.logSinceStart())) throw err;
          await proc.stop().catch(() => undefined);
          process.stderr.write(`stack: ${proc.name}: a port was taken before it could bind it; trying again on new ports\n`);
          continue;
        }
        if (opts.verbose) process.stderr.write(`stack: ${proc.name} ready (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
        return;
      }
    }),
  );
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length) {
    await stop();
    throw new Error(failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n'));
  }

  const dbName = opts.mongoDbName ?? 'account-recovery';
  const env: StackEnv = {
    TEMPORAL_ADDRESS: ext.temporalAddress ?? `127.0.0.1:${ports.temporal}`,
    MONGODB_URI: ext.mongodbUri ?? `mongodb://127.0.0.1:${ports.mongo}/${dbName}`,
    SMTP_URL: ext.smtpUrl ?? `smtp://127.0.0.1:${ports.smtp}`,
  };
  if (services.smtp) env.MAILDEV_URL = `http://127.0.0.1:${ports.mailWeb}`;
  return {
    env,
    urls: {
      temporal: env.TEMPORAL_ADDRESS,
      temporalUi: ports.temporalUi ? `http://127.0.0.1:${ports.temporalUi}` : undefined,
      mongo: env.MONGODB_URI,
      smtp: env.SMTP_URL,
      mailInbox: env.MAILDEV_URL,
    },
    ports,
    services,
    logDir,
    stop,
  };
}
