/** FerretDB (MongoDB wire protocol on SQLite, built by scripts/tools.ts): how it is started and when it is ready. */
import fs from 'node:fs';
import path from 'node:path';
import { ManagedProcess, serviceEnv } from './process';
import { waitFor, waitForTcp } from './wait';

/** Pings MongoDB (or FerretDB) with the driver mongoose bundles. */
export async function mongoPing(uri: string, timeoutMs = 2000): Promise<boolean> {
  const { mongo } = await import('mongoose');
  const client = new mongo.MongoClient(uri, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs, directConnection: true });
  try {
    await client.connect();
    const res = await client.db('admin').command({ ping: 1 });
    return res.ok === 1;
  } finally {
    await client.close().catch(() => undefined);
  }
}

export function ferretdbProcess(opts: { bin: string; port: number; dataDir: string; logFile: string }): ManagedProcess {
  const dir = path.join(opts.dataDir, 'ferretdb');
  fs.mkdirSync(dir, { recursive: true });
  return new ManagedProcess({
    name: 'ferretdb',
    command: opts.bin,
    args: [
      '--handler=sqlite',
      `--sqlite-url=file:${dir}/`,
      `--listen-addr=127.0.0.1:${opts.port}`,
      '--telemetry=disable',
      // v1.24 binds a debug/metrics HTTP server on 127.0.0.1:8088 unless told otherwise: "-" disables it,
      // so two stacks can run side by side
      `--debug-addr=${process.env.FERRETDB_DEBUG_ADDR ?? '-'}`,
      // state.json (instance UUID, telemetry state) would otherwise land in the working directory
      `--state-dir=${dir}`,
      '--log-level=warn',
    ],
    env: serviceEnv(),
    logFile: opts.logFile,
    readyTimeoutMs: 60_000,
    stopGraceMs: 10_000,
    ready: async (signal) => {
      await waitForTcp(opts.port, { signal });
      await waitFor('FerretDB ping', () => mongoPing(`mongodb://127.0.0.1:${opts.port}/`), { signal, intervalMs: 200 });
    },
  });
}
