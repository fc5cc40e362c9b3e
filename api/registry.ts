/**
 * Routes are declared once: the same zod schemas validate requests and generate /openapi.json.
 */
import type { NextFunction, Request, Response, Router } from 'express';
import { z } from 'zod';
import { problem, PROBLEMS, type ProblemCode } from './problem';
import { requireOps, requireSession, type SessionInfo } from './auth';

type Method = 'get' | 'post' | 'put' | 'delete';

export interface RouteSpec<B extends z.ZodType | undefined, Q extends z.ZodType | undefined> {
  method: Method;
  path: string; // express style, e.g. /v1/flows/:flowId
  summary: string;
  tag: string;
  body?: B;
  query?: Q;
  params?: Record<string, { description: string; pattern?: string }>;
  auth?: 'session' | 'ops';
  /** status → description and schema ('svg' / 'empty' for non-JSON) */
  ok: { status: number; description: string; schema?: z.ZodType | 'svg' | 'empty' | 'text' };
  errors?: ProblemCode[];
}

export interface Parsed<B, Q> {
  body: B;
  query: Q;
  /** The signed-in session, for routes with auth: 'session'. */
  session: SessionInfo;
}

export const registry: RouteSpec<z.ZodType | undefined, z.ZodType | undefined>[] = [];

export function route<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined>(
  router: Router,
  spec: RouteSpec<B, Q>,
  handler: (req: Request, res: Response, parsed: Parsed<B extends z.ZodType ? z.infer<B> : undefined, Q extends z.ZodType ? z.infer<Q> : undefined>) => Promise<unknown> | unknown,
): void {
  registry.push(spec as RouteSpec<z.ZodType | undefined, z.ZodType | undefined>);
  router[spec.method](spec.path, async (req: Request, res: Response, next: NextFunction) => {
    try {
      // Who you are is checked before what you sent: a signed-out caller gets 401, not 422.
      const session = spec.auth === 'session' ? await requireSession(req) : undefined;
      if (spec.auth === 'ops') requireOps(req);
      const body = spec.body ? validate(spec.body, req.body ?? {}, 'body') : undefined;
      const query = spec.query ? validate(spec.query, req.query ?? {}, 'query') : undefined;
      await handler(req, res, { body, query, session } as never);
    } catch (err) {
      next(err);
    }
  });
}

function validate<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const errors = r.error.issues.slice(0, 10).map((i) => ({ path: [where, ...i.path.map(String)].join('.'), message: i.message }));
  throw problem('validation_failed', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });
}

const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
  },
  additionalProperties: true,
};

/**
 * A zod schema as an OpenAPI 3.0 schema. zod puts named schemas (`.meta({ id })`, e.g. Flow) under the
 * schema's own `definitions` with `#/definitions/<id>` references, which resolve against the document root,
 * where there is no such thing: they go to components.schemas (`named`) and the references with them.
 */
const jsonSchema = (s: z.ZodType, io: 'input' | 'output', named: Record<string, unknown>) => {
  const { $schema: _drop, definitions, $defs, ...rest } = z.toJSONSchema(s, { target: 'openapi-3.0', io, unrepresentable: 'any' }) as Record<string, unknown>;
  for (const [id, def] of Object.entries({ ...(definitions as object), ...($defs as object) })) named[id] = componentRefs(def);
  return componentRefs(rest) as Record<string, unknown>;
};

function componentRefs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(componentRefs);
  if (!v || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' ? x.replace(/^#\/(definitions|\$defs)\//, '#/components/schemas/') : componentRefs(x)]),
  );
}

/** The OpenAPI 3.0 document, built from the registry. */
export function openApiDocument(publicUrl: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const named: Record<string, unknown> = {};
  for (const spec of registry) {
    const path = spec.path.replace(/:(\w+)/g, '{$1}');
    const params = [...spec.path.matchAll(/:(\w+)/g)].map(([, name]) => ({
      name,
      in: 'path',
      required: true,
      description: spec.params?.[name!]?.description ?? name,
      schema: { type: 'string', ...(spec.params?.[name!]?.pattern ? { pattern: spec.params[name!]!.pattern } : {}) },
    }));
    if (spec.path.includes(':flowId') && !spec.path.endsWith('/veto')) {
      params.push({
        name: 'Flow-Secret',
        in: 'header',
        required: false,
        description:
          "The flowSecret its start answered with: required for a password reset or a sign-up (without it, or with a wrong one, 404 flow_not_found); change flows take the owner's session instead",
        schema: { type: 'string' },
      });
    }
    if (spec.query) {
      const q = jsonSchema(spec.query, 'input', named) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(q.properties ?? {})) {
        params.push({ name, in: 'query', required: (q.required ?? []).includes(name), description: name, schema: schema as never });
      }
    }
    const responses: Record<string, unknown> = {};
    const ok = spec.ok;
    responses[String(ok.status)] =
      ok.schema === 'empty' || ok.schema === undefined
        ? { description: ok.description }
        : ok.schema === 'svg'
          ? { description: ok.description, content: { 'image/svg+xml': { schema: { type: 'string' } } } }
          : ok.schema === 'text'
            ? { description: ok.description, content: { 'text/plain': { schema: { type: 'string' } } } }
            : { description: ok.description, content: { 'application/json': { schema: jsonSchema(ok.schema, 'output', named) } } };
    const codes = new Set<ProblemCode>([...(spec.errors ?? []), 'rate_limited', 'internal', 'temporarily_unavailable']);
    if (spec.body) ['validation_failed', 'malformed_json', 'unsupported_media_type', 'payload_too_large'].forEach((c) => codes.add(c as ProblemCode));
    if (spec.query || params.length) codes.add('validation_failed');
    if (spec.auth === 'session') codes.add('unauthorized');
    if (spec.auth === 'ops') codes.add('unauthorized');
    const byStatus = new Map<number, string[]>();
    for (const c of codes) byStatus.set(PROBLEMS[c][0], [...(byStatus.get(PROBLEMS[c][0]) ?? []), c]);
    for (const [status, list] of byStatus) {
      responses[String(status)] = { description: list.join(', '), content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
    }
    paths[path] ??= {};
    paths[path]![spec.method] = {
      summary: spec.summary,
      tags: [spec.tag],
      operationId: `${spec.method}${path.replace(/[^A-Za-z0-9]+(\w)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      parameters: params.length ? params : undefined,
      security: spec.auth ? [{ [spec.auth === 'ops' ? 'opsToken' : 'session']: [] }] : undefined,
      requestBody: spec.body ? { required: true, content: { 'application/json': { schema: jsonSchema(spec.body, 'input', named) } } } : undefined,
      responses,
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'Account recovery API', version: '1.0.0', description: 'Forgot password, sign up, change phone/email: durable flows. See README.' },
    servers: [{ url: publicUrl }],
    paths,
    components: {
      schemas: { ...named, Problem: problemSchema },
      securitySchemes: {
        session: { type: 'http', scheme: 'bearer', description: 'A session token from POST /v1/sessions' },
        opsToken: { type: 'http', scheme: 'bearer', description: 'OPS_TOKEN' },
      },
    },
  };
}
