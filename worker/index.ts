/**
 * The worker: runs every workflow and activity on the task queue. Development bundles the workflow
 * code at start; production (NODE_ENV=production) loads the bundle built by `npm run build`.
 * SIGTERM/SIGINT: stop polling, let in-flight activities finish, exit.
 */
import path from 'node:path';
import fs from 'node:fs';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { config } from '../lib/config';
import { connectConfig, dataConverter } from '../lib/temporal';
import { connectMongo, disconnectMongo, sweepExpired } from '../db/mongo';
import { closeMailer } from '../domain/delivery';
import { log } from '../lib/log';
import * as activities from '../activities';

export async function createWorker(overrides: Partial<WorkerOptions> = {}): Promise<{ worker: Worker; connection: NativeConnection }> {
  const cfg = config();
  const cc = connectConfig();
  const connection = await NativeConnection.connect(cc.connectionOptions);
  // From dist/worker/index.js the prebuilt bundle is dist/workflow-bundle.js.
  const bundlePath = path.resolve(__dirname, '..', 'workflow-bundle.js');
  const workflowSource: Partial<WorkerOptions> =
    cfg.isProduction && fs.existsSync(bundlePath) ? { workflowBundle: { codePath: bundlePath } } : { workflowsPath: require.resolve('../workflows') };
  const worker = await Worker.create({
    connection,
    namespace: cc.namespace ?? cfg.TEMPORAL_NAMESPACE,
    taskQueue: cfg.TEMPORAL_TASK_QUEUE,
    activities,
    dataConverter: dataConverter(),
    shutdownGraceTime: '20s',
    // The SDK's default follows the heap limit (about 2,300 flows here, some 0.27 MiB each): flows parked at a
    // step for minutes or hours would hold 600 MiB. Past this many, the least recently used is evicted and
    // replayed from its history when its next task comes (a timer firing, a user coming back).
    maxCachedWorkflows: cfg.WORKER_MAX_CACHED_WORKFLOWS,
    ...workflowSource,
    ...overrides,
  });
  return { worker, connection };
}

async function main(): Promise<void> {
  await connectMongo();
  const { worker, connection } = await createWorker();
  log.info({ taskQueue: config().TEMPORAL_TASK_QUEUE }, 'worker started');
  const sweeper = setInterval(() => void sweepExpired().catch((err) => log.warn({ err: String(err) }, 'sweep failed')), 10 * 60_000);
  sweeper.unref();
  await worker.run(); // resolves after SIGTERM/SIGINT once in-flight work is done
  await connection.close();
  await closeMailer();
  await disconnectMongo();
  log.info('worker stopped');
}

if (require.main === module) {
  main().catch((err) => {
    log.error({ err }, 'worker failed');
    process.exit(1);
  });
}
