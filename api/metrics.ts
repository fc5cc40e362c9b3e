/**
 * Prometheus metrics: process defaults plus request latency by route and status. They are served by their
 * own listener (startMetricsServer, METRICS_ADDR; default 127.0.0.1:9464), not on the public API port.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import type { NextFunction, Request, Response } from 'express';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

const httpDuration = new client.Histogram({
  name: 'http_request_duration_seconds',
  help: 'HTTP request latency',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  registers: [registry],
});

export function metricsMiddleware(req: Request, res: Response, next: NextFunction): void {
  const end = httpDuration.startTimer();
  res.on('finish', () => {
    const route = (req.route?.path as string | undefined) ?? (res.statusCode === 404 ? 'unmatched' : req.path);
    end({ method: req.method, route, status: String(res.statusCode) });
  });
  next();
}

/** The Prometheus listener: its own port (METRICS_ADDR), never the public API port. */
export interface MetricsServer {
  server: http.Server;
  /** The bound address, e.g. 127.0.0.1:9464 or [::]:9464. */
  address: string;
  /** http://host:port/metrics (a wildcard host shown as 127.0.0.1). */
  url: string;
  close(): Promise<void>;
}

/** Splits METRICS_ADDR ("host:port", ":port" for every interface, "[v6]:port"); undefined for "off". */
export function parseMetricsAddr(addr: string): { host?: string; port: number } | undefined {
  if (addr.trim().toLowerCase() === 'off') return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`METRICS_ADDR: expected host:port, :port or "off", got ${JSON.stringify(addr)}`);
  return { host: m[1] ?? (m[2] || undefined), port };
}

/**
 * Serves GET /metrics from `registry` on `addr` (METRICS_ADDR syntax; ":0" picks a free port).
 * Resolves once listening; undefined when addr is "off". Rejects when the address cannot be bound.
 */
export async function startMetricsServer(addr: string): Promise<MetricsServer | undefined> {
  const where = parseMetricsAddr(addr);
  if (!where) return undefined;
  const server = http.createServer((req, res) => {
    const pathname = (req.url ?? '/').split('?')[0];
    if (pathname !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(pathname === '/metrics' ? 405 : 404, { 'content-type': 'text/plain; charset=utf-8', ...(pathname === '/metrics' ? { allow: 'GET, HEAD' } : {}) });
      res.end(pathname === '/metrics' ? 'method not allowed\n' : 'not found; metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`metrics failed: ${String(err)}\n`);
      },
    );
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(where.port, where.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const host = bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  const wildcard = bound.address === '::' || bound.address === '0.0.0.0';
  return {
    server,
    address: `${host}:${bound.port}`,
    url: `http://${wildcard ? '127.0.0.1' : host}:${bound.port}/metrics`,
    // a scrape in progress gets a second to finish
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), 1000);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
