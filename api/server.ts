/** The API process: connects to MongoDB, serves HTTP, shuts down cleanly on SIGTERM/SIGINT. */
import { config } from '../lib/config';
import { log } from '../lib/log';
import { connectMongo, disconnectMongo } from '../db/mongo';
import { closeTemporalClient, temporalClient } from '../lib/temporal';
import { createApp } from './app';

async function main(): Promise<void> {
  const cfg = config();
  await connectMongo();
  temporalClient().catch((err) => log.warn({ err: String(err) }, 'temporal not reachable yet; /readyz will say so'));
  const server = createApp().listen(cfg.PORT, () => log.info({ port: cfg.PORT, url: cfg.publicUrl }, 'api started'));
  server.keepAliveTimeout = 65_000;
  const stop = async (signal: string) => {
    log.info({ signal }, 'api stopping');
    server.close();
    server.closeIdleConnections();
    await closeTemporalClient().catch(() => undefined);
    await disconnectMongo().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  log.error({ err }, 'api failed to start');
  process.exit(1);
});
