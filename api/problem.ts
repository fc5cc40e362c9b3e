/** RFC 9457 problem details: the refusals of domain/problems.ts, as the API sends them. */
import type { Response } from 'express';
import type { Problem } from '../domain/problems';

export { Problem, PROBLEMS, problem, type ProblemCode } from '../domain/problems';

export function sendProblem(res: Response, p: Problem): void {
  for (const [k, v] of Object.entries(p.headers)) res.setHeader(k, v);
  res
    .status(p.status)
    .type('application/problem+json')
    .json({ type: `about:blank#${p.code}`, title: p.title, status: p.status, detail: p.detail ?? p.title, code: p.code, ...p.extra });
}
