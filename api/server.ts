/**
 * The API process: connects to MongoDB, serves HTTP, shuts down cleanly on SIGTERM/SIGINT.
 * Prometheus metrics are served on their own listener (METRICS_ADDR, default 127.0.0.1:9464; "off" = none),
 * never on the public port.
 */
import { config } from '../lib/config';
import { log } from '../lib/log';
import { connectMongo, disconnectMongo } from '../db/mongo';
import { closeTemporalClient, temporalClient } from '../lib/temporal';
import { createApp } from './app';
import { startMetricsServer, type MetricsServer } from './metrics';

async function main(): Promise<void> {
  const cfg = config();
  await connectMongo();
  temporalClient().catch((err) => log.warn({ err: String(err) }, 'temporal not reachable yet; /readyz will say so'));
  const server = createApp().listen(cfg.PORT, () => log.info({ port: cfg.PORT, url: cfg.publicUrl }, 'api started'));
  server.keepAliveTimeout = 65_000;
  let metrics: MetricsServer | undefined;
  const stop = async (signal: string) => {
    log.info({ signal }, 'api stopping');
    server.close();
    server.closeIdleConnections();
    await metrics?.close().catch(() => undefined);
    await closeTemporalClient().catch(() => undefined);
    await disconnectMongo().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // Metrics are auxiliary: an address already in use (another API process on this machine) is logged, not fatal.
  if (cfg.METRICS_ADDR === 'off') log.info('metrics listener off (METRICS_ADDR=off)');
  else {
    try {
      metrics = await startMetricsServer(cfg.METRICS_ADDR);
      if (metrics) log.info({ address: metrics.address, url: metrics.url }, 'metrics listening');
    } catch (err) {
      log.error({ err: String(err), addr: cfg.METRICS_ADDR }, 'metrics listener could not start; serving the API without /metrics');
    }
  }
}

main().catch((err) => {
  log.error({ err }, 'api failed to start');
  process.exit(1);
});
