/** Waiting for things to come up: sleeps, polls, TCP and HTTP readiness, free ports. */
import net from 'node:net';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Sleeps, but wakes up (with the abort reason thrown) as soon as the signal aborts. */
function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return sleep(ms);
  signal.throwIfAborted();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export interface WaitOptions {
  /** Stop waiting (rejecting) when this aborts, e.g. because the process died. */
  signal?: AbortSignal;
  /** Give up after this long; default: wait until aborted. */
  timeoutMs?: number;
  /** Pause between attempts; default 100 ms. */
  intervalMs?: number;
}

/** Polls `check` until it returns true (or a truthy value), then returns that value. */
export async function waitFor<T>(what: string, check: () => Promise<T | false | undefined | null> | T | false | undefined | null, opts: WaitOptions = {}): Promise<T> {
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${why}`);
    }
    await abortableSleep(opts.intervalMs ?? 100, opts.signal);
  }
}

/** Whether something accepts TCP connections on host:port right now. */
export function canConnect(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Resolves once host:port accepts a TCP connection. */
export function waitForTcp(port: number, opts: WaitOptions & { host?: string } = {}): Promise<true> {
  const host = opts.host ?? '127.0.0.1';
  return waitFor(`TCP ${host}:${port}`, () => canConnect(port, host), opts);
}

/** Resolves once GET `url` answers with `okStatus` (default 200). */
export function waitForHttp(url: string, okStatus = 200, opts: WaitOptions = {}): Promise<true> {
  return waitFor(
    `HTTP ${okStatus} from ${url}`,
    async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      if (res.status !== okStatus) throw new Error(`got ${res.status}`);
      return true as const;
    },
    opts,
  );
}

const handedOut = new Set<number>();
/** A TCP port that is free on 127.0.0.1 right now (never the same one twice in this process). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.once('error', reject);
      srv.listen(0, host, () => {
        const { port } = srv.address() as net.AddressInfo;
        srv.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('could not find a free TCP port');
}

/** Whether `port` can be bound on `host` (false when something already listens there). */
export function portIsFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
