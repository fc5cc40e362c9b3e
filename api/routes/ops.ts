/** Operations: stuck flows from Temporal visibility, support cases and their decisions (OPS_TOKEN). */
import { Router } from 'express';
import { z } from 'zod';
import { route, type RouteSpec } from '../registry';
import { problem } from '../problem';
import { temporalClient } from '../../lib/temporal';
import { CASE_STATUSES, CaseError, decideCase, listCases, listFlows } from '../../ops/decisions';
import { parseDuration } from '../../lib/duration';

export const opsRouter = Router();

/** A route for operators: under Operations in the docs, behind OPS_TOKEN. */
function opsRoute<B extends z.ZodType | undefined = undefined, Q extends z.ZodType | undefined = undefined>(
  spec: Omit<RouteSpec<B, Q>, 'tag' | 'auth'>,
  handler: Parameters<typeof route<B, Q>>[2],
): void {
  route(opsRouter, { ...spec, tag: 'Operations', auth: 'ops' } as RouteSpec<B, Q>, handler);
}

const FlowsQuery = z
  .object({
    kind: z.enum(['password_reset', 'sign_up', 'change_phone', 'change_email']).optional(),
    step: z
      .string()
      .regex(/^[a-z_]{2,30}$/)
      .optional(),
    stuckFor: z
      .string()
      .regex(/^\d+(\.\d+)?(ms|s|m|h|d)?$/, 'a duration such as 30m or 1h')
      .optional(),
  })
  .strict();
const FlowRowSchema = z.object({
  workflowId: z.string(),
  flowId: z.string(),
  kind: z.string().optional(),
  step: z.string().optional(),
  status: z.string().optional(),
  stepSince: z.string().optional(),
  startedAt: z.string(),
  workflowType: z.string(),
});
const CasesQuery = z.object({ status: z.enum(CASE_STATUSES).optional() }).strict();
const CaseSchema = z.object({ caseId: z.string(), flowId: z.string(), accountId: z.string().optional(), status: z.string() }).passthrough();
const DecisionBody = z.object({ reviewer: z.string().min(1).max(100), note: z.string().max(2000).default('') }).strict();

opsRoute(
  {
    method: 'get',
    path: '/v1/ops/flows',
    summary: 'Running flows, oldest step first (e.g. stuck at code for 1h)',
    query: FlowsQuery,
    ok: { status: 200, description: 'Flows', schema: z.array(FlowRowSchema) },
  },
  async (req, res, { query }) => {
    const client = await temporalClient();
    res.json(await listFlows(client, { kind: query.kind, step: query.step, stuckForMs: query.stuckFor ? parseDuration(query.stuckFor) : undefined }));
  },
);

opsRoute(
  {
    method: 'get',
    path: '/v1/ops/support-cases',
    summary: 'Support cases for reviewers',
    query: CasesQuery,
    ok: { status: 200, description: 'Cases', schema: z.array(CaseSchema) },
  },
  async (req, res, { query }) => {
    res.json(await listCases(query.status));
  },
);

for (const verdict of ['approve', 'reject'] as const) {
  opsRoute(
    {
      method: 'post',
      path: `/v1/ops/support-cases/:caseId/${verdict}`,
      summary: verdict === 'approve' ? 'Approve a case: a code goes to its contact email' : 'Reject a case: the contact email is told why',
      params: { caseId: { description: 'The case id' } },
      body: DecisionBody,
      ok: { status: 200, description: 'The case', schema: CaseSchema },
      errors: ['case_not_found', 'case_decided', ...(verdict === 'approve' ? (['case_unverifiable'] as const) : [])],
    },
    async (req, res, { body }) => {
      try {
        res.json(await decideCase(await temporalClient(), String(req.params.caseId), verdict === 'approve', body.reviewer, body.note));
      } catch (err) {
        if (err instanceof CaseError) throw problem(err.code, err.detail);
        throw err;
      }
    },
  );
}
