/**
 * The HTTP client of the bench and the drills: what a real client of the API does. Every request is
 * bounded in time; `retrying` retries connection errors and 503 with exponential backoff (real clients
 * do this), within a deadline.
 */
export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
  ms: number;
}

export class TransportError extends Error {}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * API v1.1: a password reset or sign-up is driven only by whoever holds the `flowSecret` its start answered
 * with; every later request of that flow sends it as `Flow-Secret` (without it: 404 flow_not_found).
 * Returns that header from a start's answer; throws when the answer carries no secret.
 */
export function flowSecretHeader(start: { body: unknown }): Record<string, string> {
  const secret = (start.body as { flowSecret?: unknown } | undefined)?.flowSecret;
  if (typeof secret !== 'string' || !secret) throw new Error(`the start answered without a flowSecret: ${JSON.stringify(start.body).slice(0, 200)}`);
  return { 'flow-secret': secret };
}

export class Client {
  constructor(
    readonly baseUrl: string,
    private readonly timeoutMs = 30_000,
  ) {}

  /** One attempt. Connection errors and timeouts throw TransportError. */
  async call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const started = performance.now();
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new TransportError(`${method} ${path}: ${(err as Error).cause ? String((err as { cause: unknown }).cause) : (err as Error).message}`);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new TransportError(`${method} ${path}: body: ${(err as Error).message}`);
    }
    const ms = performance.now() - started;
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        /* keep the text */
      }
    }
    return { status: res.status, body: parsed as T, headers: res.headers, ms };
  }

  /**
   * Retries connection errors, timeouts and 503 (and 429 with Retry-After when `retry429`) with
   * exponential backoff from 100 ms up to 2 s, until `deadlineMs` from now. `onRetry` sees each retry.
   */
  async retrying<T = any>(
    method: string,
    path: string,
    body?: unknown,
    opts: { headers?: Record<string, string>; deadlineMs?: number; onRetry?: (why: string) => void; retry429?: boolean } = {},
  ): Promise<Reply<T>> {
    const deadline = Date.now() + (opts.deadlineMs ?? 120_000);
    let delay = 100;
    for (;;) {
      let why: string;
      try {
        const r = await this.call<T>(method, path, body, opts.headers);
        if (r.status !== 503 && !(opts.retry429 && r.status === 429)) return r;
        why = `${r.status} ${(r.body as { code?: string })?.code ?? ''}`;
        const after = Number(r.headers.get('retry-after'));
        if (after > 0) delay = Math.max(delay, Math.min(after * 1000, 5000));
      } catch (err) {
        if (!(err instanceof TransportError)) throw err;
        why = err.message;
      }
      if (Date.now() + delay > deadline) throw new Error(`${method} ${path}: still failing at the deadline (${why})`);
      opts.onRetry?.(why);
      await sleep(delay * (0.75 + Math.random() / 2));
      delay = Math.min(delay * 2, 2000);
    }
  }
}
