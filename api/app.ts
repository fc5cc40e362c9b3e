/** The Express application: security headers, JSON limits, request ids, problem+json errors, routes, docs. */
import { isDependencyUnavailable } from '../lib/unavailable';
import crypto from 'node:crypto';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import swaggerUi from 'swagger-ui-express';
import { config } from '../lib/config';
import { log } from '../lib/log';
import { Problem, problem, sendProblem } from './problem';
import { openApiDocument } from './registry';
import { metricsMiddleware } from './metrics';
import { flowsRouter } from './routes/flows';
import { accountFlowsRouter } from './routes/account-flows';
import { accountRouter } from './routes/account';
import { opsRouter } from './routes/ops';
import { devRouter } from './routes/dev';
import { mongoReady } from '../db/mongo';
import { temporalClient } from '../lib/temporal';

function trustProxy(value: string | undefined): number | string[] | false {
  if (!value) return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value.split(',').map((s) => s.trim());
}

export function createApp(): express.Express {
  const cfg = config();
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', trustProxy(cfg.TRUST_PROXY));
  app.set('etag', false);

  app.use((req, res, next) => {
    const given = req.header('x-request-id');
    const id = given && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : crypto.randomUUID();
    res.setHeader('X-Request-Id', id);
    (req as Request & { id: string }).id = id;
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      log.info({ reqId: id, method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
    });
    next();
  });
  app.use(metricsMiddleware);
  app.use(
    helmet({
      referrerPolicy: { policy: 'no-referrer' },
      hsts: { maxAge: 31_536_000, includeSubDomains: true },
      contentSecurityPolicy: { directives: { 'img-src': ["'self'", 'data:'], 'script-src': ["'self'"], 'upgrade-insecure-requests': null } },
    }),
  );

  // Answers of the API are about one person's account (tokens, flow secrets, masked contacts): never cached.
  app.use('/v1', (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });

  // JSON only, 16 KiB at most.
  app.use((req, _res, next) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method) && !req.is('application/json')) {
      return next(problem('unsupported_media_type'));
    }
    next();
  });
  app.use(express.json({ limit: '16kb', strict: true }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const [mongo, temporal] = await Promise.all([
      mongoReady(),
      temporalClient()
        .then((c) => c.connection.workflowService.getSystemInfo({}))
        .then(() => true)
        .catch(() => false),
    ]);
    const ok = mongo && temporal;
    if (!ok) {
      return sendProblem(res, problem('not_ready', `mongodb: ${mongo ? 'up' : 'down'}, temporal: ${temporal ? 'up' : 'down'}`, { checks: { mongodb: mongo, temporal } }));
    }
    res.json({ status: 'ready', checks: { mongodb: mongo, temporal } });
  });

  app.use(flowsRouter);
  app.use(accountFlowsRouter);
  app.use(accountRouter);
  app.use(opsRouter);
  if (!cfg.isProduction) app.use(devRouter);

  const doc = openApiDocument(cfg.publicUrl);
  app.get('/openapi.json', (_req, res) => {
    res.json(doc);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(doc, { customSiteTitle: 'Account recovery API' }));

  const web = path.resolve(__dirname, '..', 'web');
  app.use(express.static(web, { index: 'index.html', extensions: ['html'], maxAge: cfg.isProduction ? '1h' : 0 }));

  app.use((req, _res, next) => next(problem('not_found', `${req.method} ${req.path} is not an endpoint of this API.`)));
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return;
    sendProblem(res, toProblem(err, req));
  });
  return app;
}

function toProblem(err: unknown, req: Request): Problem {
  if (err instanceof Problem) return err;
  const e = err as { type?: string; status?: number; name?: string; message?: string };
  if (e?.type === 'entity.too.large') return problem('payload_too_large');
  if (e?.type === 'entity.parse.failed') return problem('malformed_json', 'The body is not valid JSON.');
  if (e?.type === 'charset.unsupported' || e?.type === 'encoding.unsupported') return problem('unsupported_media_type');
  if (e?.status && e.status >= 400 && e.status < 500) return problem('validation_failed', e.message);
  // A dependency that is briefly away (restarting, failing over): 503 + Retry-After, which clients retry.
  if (isDependencyUnavailable(err)) {
    log.warn({ err, reqId: (req as Request & { id?: string }).id }, 'dependency unavailable');
    return problem('temporarily_unavailable', undefined, {}, { 'Retry-After': '2' });
  }
  log.error({ err, reqId: (req as Request & { id?: string }).id }, 'unhandled error');
  return problem('internal', 'The error was logged with this request id.');
}
