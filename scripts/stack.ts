/**
 * The local stack as child processes: Temporal dev server, FerretDB (MongoDB wire protocol on SQLite),
 * maildev (SMTP capture), and the app's own processes (worker, API, codec server).
 *
 * Used by `npm start` (scripts/start.ts), `npm test` (scripts/test.ts), the benchmark and the failure drills.
 * Every child runs in its own process group with its output appended to a log file, so stop() and kill()
 * reach grandchildren too (tsx runs the real node process as a child) and nothing is left behind.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ROOT, TOOLS_BIN } from './tools';

// ---------------------------------------------------------------------------------------------------------
// Small helpers

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

/** Resolves once the process's log (since its last start) matches `pattern`. */
export function waitForLog(proc: ManagedProcess, pattern: RegExp | string, opts: WaitOptions = {}): Promise<true> {
  return waitFor(
    `"${String(pattern)}" in ${proc.logFile}`,
    () => {
      const text = proc.logSinceStart();
      return (typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text)) || undefined;
    },
    { intervalMs: 200, ...opts },
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

function tailOfFile(file: string, lines: number): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      return buf
        .toString('utf8')
        .split('\n')
        .slice(-lines - 1)
        .join('\n')
        .trimEnd();
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '(no log)';
  }
}

/** The last `lines` lines of every *.log file in `dir`, each under a header; for failure reports. */
export function tailLogs(dir: string, lines = 30): string {
  let files: string[];
  try {
    files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .sort();
  } catch {
    return `(no logs in ${dir})`;
  }
  return files.map((f) => `----- ${path.join(dir, f)} (last ${lines} lines) -----\n${tailOfFile(path.join(dir, f), lines)}`).join('\n');
}

/** The environment for infrastructure children: ours, minus variables that would reconfigure them. */
function serviceEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(TEMPORAL_|MAILDEV_|FERRETDB_)/.test(k)) env[k] = v;
  }
  return env;
}

// ---------------------------------------------------------------------------------------------------------
// ManagedProcess

/** Resolves when the process is ready; should keep retrying until `signal` aborts. */
export type ReadyCheck = (signal: AbortSignal, proc: ManagedProcess) => Promise<unknown>;

export interface ManagedProcessOptions {
  name: string;
  command: string;
  args?: string[];
  /** The child's whole environment; default: this process's. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr are appended here (directories are created). */
  logFile: string;
  ready?: ReadyCheck;
  /** How long start() waits for `ready`; default 60 s. */
  readyTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL; default 10 s. */
  stopGraceMs?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when we asked for it (stop() or kill()); false for a crash. */
  expected: boolean;
}

/** Every process group we started and have not seen gone, killed if this process exits without stopping them. */
const liveGroups = new Set<number>();
/** Every ManagedProcess started and not yet exited, in start order. */
const liveProcs = new Set<ManagedProcess>();

/**
 * Stops every ManagedProcess of this process that is still running, newest first: a catch-all for
 * shutdown paths where the Stack/App objects are not at hand (e.g. a signal arrives mid-start).
 */
export async function stopAllManaged(): Promise<void> {
  for (const p of [...liveProcs].reverse()) await p.stop();
}
process.on('exit', () => {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

/**
 * One child process (and its process group).
 * Events: 'exit' (ExitInfo) whenever the leader exits, expected or not.
 */
export class ManagedProcess extends EventEmitter {
  readonly name: string;
  readonly logFile: string;
  private readonly opts: ManagedProcessOptions;
  private child?: ChildProcess;
  private exited?: Promise<ExitInfo>;
  private expectExit = false;
  private logStart = 0;

  constructor(opts: ManagedProcessOptions) {
    super();
    this.opts = opts;
    this.name = opts.name;
    this.logFile = opts.logFile;
  }

  /** The leader's pid (also the process group id) while running. */
  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The log written since the last start(). */
  logSinceStart(): string {
    try {
      const fd = fs.openSync(this.logFile, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(Math.max(0, size - this.logStart));
        fs.readSync(fd, buf, 0, buf.length, this.logStart);
        return buf.toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return '';
    }
  }

  logTail(lines = 40): string {
    return tailOfFile(this.logFile, lines);
  }

  /** Spawns the process and resolves once it is ready; rejects (with the log's tail) if it dies or times out first. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running (pid ${this.child?.pid})`);
    const { command, args = [], cwd = ROOT, env = process.env } = this.opts;
    fs.mkdirSync(path.dirname(this.logFile), { recursive: true });
    const fd = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      fs.writeSync(fd, `\n===== ${new Date().toISOString()} starting ${this.name}: ${command} ${args.join(' ')}\n`);
      this.logStart = fs.fstatSync(fd).size;
      this.expectExit = false;
      child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', fd, fd] });
    } finally {
      fs.closeSync(fd); // the child has its own copy
    }
    this.child = child;
    const spawned = new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', resolve);
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (child.pid) liveGroups.delete(child.pid);
        if (this.child === child) liveProcs.delete(this);
        const info: ExitInfo = { code, signal, expected: this.expectExit };
        resolve(info);
        if (this.child === child) this.emit('exit', info);
      };
      child.once('exit', finish);
      child.once('error', () => finish(null, null)); // spawn failed (e.g. ENOENT): there will be no 'exit'
    });
    if (child.pid) liveGroups.add(child.pid);
    liveProcs.delete(this); // re-added at the end: start order
    liveProcs.add(this);
    const spawnError = await spawned;
    if (spawnError) throw new Error(`${this.name} could not be started: ${spawnError.message}\n  command: ${command} ${args.join(' ')}`);

    const timeoutMs = this.opts.readyTimeoutMs ?? 60_000;
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    try {
      const outcome = await Promise.race([
        (this.opts.ready ? this.opts.ready(abort.signal, this) : Promise.resolve()).then(
          () => ({ kind: 'ready' as const }),
          (err: unknown) => ({ kind: 'failed' as const, err }),
        ),
        this.exited.then((info) => ({ kind: 'exited' as const, info })),
        new Promise<{ kind: 'timeout' }>((resolve) => (timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs))),
      ]);
      if (outcome.kind === 'ready') return;
      let why: string;
      if (outcome.kind === 'failed') why = `failed its readiness check: ${outcome.err instanceof Error ? outcome.err.message : String(outcome.err)}`;
      else if (outcome.kind === 'exited') why = `exited (${outcome.info.code ?? outcome.info.signal}) before it was ready`;
      else why = `was not ready after ${Math.round(timeoutMs / 1000)} s`;
      await this.stop();
      throw new Error(`${this.name} ${why}\n  command: ${command} ${args.join(' ')}\n  log: ${this.logFile}\n${indent(this.logTail(25))}`);
    } catch (err) {
      if (this.running) await this.stop();
      throw err;
    } finally {
      clearTimeout(timer);
      abort.abort(new Error(`${this.name}: start() finished`));
    }
  }

  /** SIGTERM to the whole group, SIGKILL after the grace period; resolves when the group is gone. */
  async stop(graceMs = this.opts.stopGraceMs ?? 10_000): Promise<void> {
    const pgid = this.child?.pid;
    if (!pgid) return;
    this.expectExit = true;
    if (!this.groupAlive(pgid)) {
      await this.exited;
      return;
    }
    this.signalGroup(pgid, 'SIGTERM');
    if (!(await this.waitGroupGone(pgid, graceMs))) {
      process.stderr.write(`stack: ${this.name} did not stop within ${Math.round(graceMs / 1000)} s of SIGTERM; sending SIGKILL\n`);
      this.signalGroup(pgid, 'SIGKILL');
      await this.waitGroupGone(pgid, 10_000);
    }
    await this.exited;
    liveGroups.delete(pgid);
  }

  /**
   * Sends `signal` to the whole group, no restart (for failure drills). For SIGKILL, resolves once the
   * group is gone; for other signals (SIGTERM, SIGSTOP, SIGCONT...) right after sending: use
   * waitForExit() to wait for an exit.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const pgid = this.child?.pid;
    if (!pgid || !this.groupAlive(pgid)) return;
    if (signal !== 'SIGSTOP' && signal !== 'SIGCONT' && signal !== 'SIGTSTP') this.expectExit = true;
    this.signalGroup(pgid, signal);
    if (signal === 'SIGKILL') {
      await this.waitGroupGone(pgid, 10_000);
      await this.exited;
    }
  }

  /** Resolves with how the leader exited (immediately if it is not running); rejects after timeoutMs. */
  async waitForExit(timeoutMs = 30_000): Promise<ExitInfo> {
    if (!this.exited) throw new Error(`${this.name} was never started`);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${this.name} still running after ${timeoutMs} ms`)), timeoutMs))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  private signalGroup(pgid: number, signal: NodeJS.Signals): void {
    try {
      process.kill(-pgid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  private groupAlive(pgid: number): boolean {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }

  /** Waits until no process is left in the group (the leader reaped too). */
  private async waitGroupGone(pgid: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running && !this.groupAlive(pgid)) return true;
      await sleep(50);
    }
    return !this.running && !this.groupAlive(pgid);
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    | ${l}`)
    .join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Infrastructure services

export interface StackPorts {
  temporal?: number;
  temporalUi?: number;
  mongo?: number;
  smtp?: number;
  mailWeb?: number;
}

export interface StartServicesOptions {
  /** Data for the services: temporal.db, ferretdb/, maildev/, logs/ (default). */
  dataDir: string;
  /** Keep Temporal's state in <dataDir>/temporal.db (needed to kill and restart it); otherwise in memory. */
  persistent: boolean;
  /** Fixed ports; any left out is a free port. */
  ports?: StackPorts;
  /** No Temporal Web UI. */
  headless?: boolean;
  /** Remote codec endpoint the Temporal UI uses to decode payloads. */
  codecEndpoint?: string;
  /** Services that already exist: these are not started. */
  external?: { temporalAddress?: string; mongodbUri?: string; smtpUrl?: string };
  /** Database name in MONGODB_URI for the FerretDB we start; default account-recovery. */
  mongoDbName?: string;
  /** Where the services' logs go; default <dataDir>/logs. */
  logDir?: string;
  /** Binaries; default: from PATH, else .tools/bin (see scripts/tools.ts ensureTools()). */
  bin?: { temporal?: string; ferretdb?: string };
  /** Print a line per service as it becomes ready. */
  verbose?: boolean;
}

export type ServiceName = 'temporal' | 'mongo' | 'smtp';

export interface StackEnv {
  TEMPORAL_ADDRESS: string;
  MONGODB_URI: string;
  SMTP_URL: string;
  /** maildev's web UI and REST API (GET /email); only when we started maildev. */
  MAILDEV_URL?: string;
}

export interface Stack {
  env: StackEnv;
  urls: { temporal: string; temporalUi?: string; mongo: string; smtp: string; mailInbox?: string };
  ports: StackPorts;
  services: Record<ServiceName, ManagedProcess | undefined>;
  logDir: string;
  /** Stops every service we started, in reverse order. */
  stop(): Promise<void>;
}

/** Dynamic config for a snappy single-node dev server. */
const TEMPORAL_DYNAMIC_CONFIG = [
  // search attributes registered at start are usable at once (no 10 s cache)
  'system.forceSearchAttributesCacheRefreshOnRead=true',
  // one partition per task queue: no forwarding between partitions, tasks reach the lone worker at once
  'matching.numTaskqueueReadPartitions=1',
  'matching.numTaskqueueWritePartitions=1',
  'frontend.enableUpdateWorkflowExecution=true',
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
  // an activity a workflow task schedules goes back to the worker with that task's completion instead of
  // through a task queue poll (the SDK asks for it whenever it has a free slot): one round trip less per activity
  'system.enableActivityEagerExecution=true',
];

/** The search attributes the app's workflows upsert (registered at every start; a no-op when present). */
const SEARCH_ATTRIBUTES = ['FlowKind=Keyword', 'FlowStep=Keyword', 'FlowStatus=Keyword', 'FlowStepSince=Datetime'];

function toolPath(name: string, given?: string): string {
  if (given) return given;
  const local = path.join(TOOLS_BIN, name);
  if (fs.existsSync(local)) return local;
  return name; // from PATH
}

function runQuiet(cmd: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, env: serviceEnv() }, (err, stdout, stderr) => resolve({ ok: !err, out: `${stdout}${stderr}` }));
  });
}

export function temporalProcess(opts: {
  bin: string;
  port: number;
  uiPort?: number;
  headless?: boolean;
  dbFile?: string;
  codecEndpoint?: string;
  logFile: string;
}): ManagedProcess {
  const address = `127.0.0.1:${opts.port}`;
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--namespace', 'default', '--log-level', 'warn'];
  if (opts.headless) args.push('--headless');
  else if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  // WAL with synchronous=NORMAL: a commit is one append to the log instead of a rewritten journal and two
  // fsyncs; a killed server loses nothing committed (only a power loss can lose the last transactions)
  if (opts.dbFile) args.push('--db-filename', opts.dbFile, '--sqlite-pragma', 'journal_mode=wal', '--sqlite-pragma', 'synchronous=normal');
  if (opts.codecEndpoint && !opts.headless) args.push('--ui-codec-endpoint', opts.codecEndpoint);
  for (const sa of SEARCH_ATTRIBUTES) args.push('--search-attribute', sa);
  for (const dc of TEMPORAL_DYNAMIC_CONFIG) args.push('--dynamic-config-value', dc);
  return new ManagedProcess({
    name: 'temporal',
    command: opts.bin,
    args,
    env: serviceEnv(),
    logFile: opts.logFile,
    readyTimeoutMs: 90_000,
    stopGraceMs: 15_000,
    ready: async (signal) => {
      await waitForTcp(opts.port, { signal });
      // ready = the namespace answers and our search attributes are registered
      await waitFor(
        'Temporal namespace "default" with search attributes',
        async () => {
          const res = await runQuiet(opts.bin, ['operator', 'search-attribute', 'list', '--address', address, '--namespace', 'default', '-o', 'json'], 5000);
          return res.ok && res.out.includes('FlowStepSince');
        },
        { signal, intervalMs: 250 },
      );
    },
  });
}

/** Pings MongoDB (or FerretDB) with the driver mongoose bundles. */
export async function mongoPing(uri: string, timeoutMs = 2000): Promise<boolean> {
  const { mongo } = await import('mongoose');
  const client = new mongo.MongoClient(uri, { serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs, directConnection: true });
  try {
    await client.connect();
    const res = await client.db('admin').command({ ping: 1 });
    return res.ok === 1;
  } finally {
    await client.close().catch(() => undefined);
  }
}

export function ferretdbProcess(opts: { bin: string; port: number; dataDir: string; logFile: string }): ManagedProcess {
  const dir = path.join(opts.dataDir, 'ferretdb');
  fs.mkdirSync(dir, { recursive: true });
  return new ManagedProcess({
    name: 'ferretdb',
    command: opts.bin,
    args: [
      '--handler=sqlite',
      `--sqlite-url=file:${dir}/`,
      `--listen-addr=127.0.0.1:${opts.port}`,
      '--telemetry=disable',
      // v1.24 binds a debug/metrics HTTP server on 127.0.0.1:8088 unless told otherwise: "-" disables it,
      // so two stacks can run side by side
      `--debug-addr=${process.env.FERRETDB_DEBUG_ADDR ?? '-'}`,
      // state.json (instance UUID, telemetry state) would otherwise land in the working directory
      `--state-dir=${dir}`,
      '--log-level=warn',
    ],
    env: serviceEnv(),
    logFile: opts.logFile,
    readyTimeoutMs: 60_000,
    stopGraceMs: 10_000,
    ready: async (signal) => {
      await waitForTcp(opts.port, { signal });
      await waitFor('FerretDB ping', () => mongoPing(`mongodb://127.0.0.1:${opts.port}/`), { signal, intervalMs: 200 });
    },
  });
}

export function maildevProcess(opts: { smtpPort: number; webPort: number; mailDir?: string; logFile: string }): ManagedProcess {
  const script = path.join(ROOT, 'node_modules', 'maildev', 'bin', 'maildev');
  const args = [script, '--smtp', String(opts.smtpPort), '--web', String(opts.webPort), '--ip', '127.0.0.1'];
  if (opts.mailDir) {
    fs.mkdirSync(opts.mailDir, { recursive: true });
    args.push('--mail-directory', opts.mailDir);
  }
  return new ManagedProcess({
    name: 'maildev',
    command: process.execPath,
    args,
    env: serviceEnv(),
    logFile: opts.logFile,
    readyTimeoutMs: 30_000,
    stopGraceMs: 5_000,
    ready: async (signal) => {
      await waitForTcp(opts.smtpPort, { signal });
      await waitForHttp(`http://127.0.0.1:${opts.webPort}/email`, 200, { signal });
    },
  });
}

/** Starts the services not given as external (in parallel) and returns how to reach all of them. */
export async function startServices(opts: StartServicesOptions): Promise<Stack> {
  const dataDir = path.resolve(opts.dataDir);
  const logDir = opts.logDir ?? path.join(dataDir, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const ext = opts.external ?? {};
  const ports: StackPorts = {};
  const services: Record<ServiceName, ManagedProcess | undefined> = { temporal: undefined, mongo: undefined, smtp: undefined };

  // How to make each service on fresh ports: a port we picked can be taken before the service binds it (an
  // outbound connection's ephemeral port, or the Temporal dev server's own internal ports), so a start that
  // fails on "address already in use" is tried again on new ports. Ports the caller fixed are used as given.
  const makers: Partial<Record<ServiceName, { fixed: boolean; make: () => Promise<ManagedProcess> }>> = {};
  if (!ext.temporalAddress) {
    makers.temporal = {
      fixed: !!opts.ports?.temporal,
      make: async () => {
        ports.temporal = opts.ports?.temporal ?? (await freePort());
        if (!opts.headless) ports.temporalUi = opts.ports?.temporalUi ?? (await freePort());
        return temporalProcess({
          bin: toolPath('temporal', opts.bin?.temporal),
          port: ports.temporal,
          uiPort: ports.temporalUi,
          headless: opts.headless,
          dbFile: opts.persistent ? path.join(dataDir, 'temporal.db') : undefined,
          codecEndpoint: opts.codecEndpoint,
          logFile: path.join(logDir, 'temporal.log'),
        });
      },
    };
  }
  if (!ext.mongodbUri) {
    makers.mongo = {
      fixed: !!opts.ports?.mongo,
      make: async () => {
        ports.mongo = opts.ports?.mongo ?? (await freePort());
        return ferretdbProcess({ bin: toolPath('ferretdb', opts.bin?.ferretdb), port: ports.mongo, dataDir, logFile: path.join(logDir, 'ferretdb.log') });
      },
    };
  }
  if (!ext.smtpUrl) {
    makers.smtp = {
      fixed: !!(opts.ports?.smtp || opts.ports?.mailWeb),
      make: async () => {
        ports.smtp = opts.ports?.smtp ?? (await freePort());
        ports.mailWeb = opts.ports?.mailWeb ?? (await freePort());
        return maildevProcess({ smtpPort: ports.smtp, webPort: ports.mailWeb, mailDir: path.join(dataDir, 'maildev'), logFile: path.join(logDir, 'maildev.log') });
      },
    };
  }

  const order: ServiceName[] = ['temporal', 'mongo', 'smtp'];
  const stop = async () => {
    for (const name of [...order].reverse()) await services[name]?.stop();
  };
  const results = await Promise.allSettled(
    order.map(async (name) => {
      const maker = makers[name];
      if (!maker) return;
      for (let attempt = 1; ; attempt++) {
        const proc = (services[name] = await maker.make());
        const started = Date.now();
        try {
          await proc.start();
        } catch (err) {
          if (maker.fixed || attempt >= 3 || !/address already in use|EADDRINUSE/i.test(proc.logSinceStart())) throw err;
          await proc.stop().catch(() => undefined);
          process.stderr.write(`stack: ${proc.name}: a port was taken before it could bind it; trying again on new ports\n`);
          continue;
        }
        if (opts.verbose) process.stderr.write(`stack: ${proc.name} ready (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
        return;
      }
    }),
  );
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length) {
    await stop();
    throw new Error(failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n'));
  }

  const dbName = opts.mongoDbName ?? 'account-recovery';
  const env: StackEnv = {
    TEMPORAL_ADDRESS: ext.temporalAddress ?? `127.0.0.1:${ports.temporal}`,
    MONGODB_URI: ext.mongodbUri ?? `mongodb://127.0.0.1:${ports.mongo}/${dbName}`,
    SMTP_URL: ext.smtpUrl ?? `smtp://127.0.0.1:${ports.smtp}`,
  };
  if (services.smtp) env.MAILDEV_URL = `http://127.0.0.1:${ports.mailWeb}`;
  return {
    env,
    urls: {
      temporal: env.TEMPORAL_ADDRESS,
      temporalUi: ports.temporalUi ? `http://127.0.0.1:${ports.temporalUi}` : undefined,
      mongo: env.MONGODB_URI,
      smtp: env.SMTP_URL,
      mailInbox: env.MAILDEV_URL,
    },
    ports,
    services,
    logDir,
    stop,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The app's own processes

export interface StartAppOptions {
  /** Where worker.log, api.log, codec.log go. */
  logDir: string;
  /** API port; default env.PORT, else a free port. */
  apiPort?: number;
  /** Also start the codec server (api/codec-server.ts). */
  codec?: boolean;
  /** Codec server port; default env.CODEC_PORT, else a free port. */
  codecPort?: number;
  /** Start the worker / the API (default both). */
  worker?: boolean;
  api?: boolean;
  /** The Temporal UI's URL: the codec server then admits it in CORS (unless env sets CODEC_CORS_ORIGINS). */
  temporalUiUrl?: string;
  /** How long to wait for each to be ready; default 120 s (the worker bundles the workflows first). */
  readyTimeoutMs?: number;
}

export interface App {
  worker?: ManagedProcess;
  api?: ManagedProcess;
  codec?: ManagedProcess;
  /** The environment the processes were given (including PORT and CODEC_PORT). */
  env: NodeJS.ProcessEnv;
  urls: { api?: string; docs?: string; codec?: string };
  /** Stops API, worker, codec server, in that order. */
  stop(): Promise<void>;
}

const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/** Starts the codec server, the worker and the API with `env` (on top of this process's environment). */
export async function startApp(env: Record<string, string | undefined>, opts: StartAppOptions): Promise<App> {
  const apiPort = opts.apiPort ?? (env.PORT ? Number(env.PORT) : await freePort());
  const codecPort = opts.codec ? (opts.codecPort ?? (env.CODEC_PORT ? Number(env.CODEC_PORT) : await freePort())) : undefined;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, PORT: String(apiPort) };
  if (codecPort) childEnv.CODEC_PORT = String(codecPort);
  if (codecPort && opts.temporalUiUrl && !env.CODEC_CORS_ORIGINS) {
    const ui = new URL(opts.temporalUiUrl);
    childEnv.CODEC_CORS_ORIGINS = [`http://localhost:${ui.port}`, `http://127.0.0.1:${ui.port}`].join(',');
  }
  const timeout = opts.readyTimeoutMs ?? 120_000;
  const tsx = (name: string, entry: string, ready: ReadyCheck, procEnv = childEnv) =>
    new ManagedProcess({
      name,
      command: TSX,
      args: [entry],
      env: procEnv,
      cwd: ROOT,
      logFile: path.join(opts.logDir, `${name}.log`),
      ready,
      readyTimeoutMs: timeout,
      stopGraceMs: 15_000,
    });

  const app: App = { env: childEnv, urls: {}, stop: async () => undefined };
  if (codecPort) {
    app.codec = tsx('codec', 'api/codec-server.ts', (signal) => waitForHttp(`http://127.0.0.1:${codecPort}/healthz`, 200, { signal }));
    app.urls.codec = `http://127.0.0.1:${codecPort}`;
  }
  if (opts.worker !== false) {
    // Readiness is the worker's "worker started" line, logged at info: a quieter LOG_LEVEL would hide it.
    // The worker's log goes to its own file, so running it at info costs nothing.
    const quiet = ['warn', 'error', 'fatal', 'silent'].includes(childEnv.LOG_LEVEL ?? '');
    const workerEnv = quiet ? { ...childEnv, LOG_LEVEL: 'info' } : childEnv;
    app.worker = tsx('worker', 'worker/index.ts', (signal, proc) => waitForLog(proc, 'worker started', { signal }), workerEnv);
  }
  if (opts.api !== false) {
    app.api = tsx('api', 'api/server.ts', (signal) => waitForHttp(`http://127.0.0.1:${apiPort}/readyz`, 200, { signal, intervalMs: 250 }));
    app.urls.api = `http://127.0.0.1:${apiPort}`;
    app.urls.docs = `http://127.0.0.1:${apiPort}/docs`;
  }
  const order = [app.codec, app.worker, app.api].filter((p): p is ManagedProcess => !!p);
  app.stop = async () => {
    for (const p of [...order].reverse()) await p.stop();
  };
  // in parallel: each takes a few seconds to load TypeScript
  const results = await Promise.allSettled(order.map((p) => p.start()));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length) {
    await app.stop();
    throw new Error(failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n'));
  }
  return app;
}

// ---------------------------------------------------------------------------------------------------------
// Leftovers

/**
 * Pids of this user's processes (other than us) whose environment has NAME=value (Linux /proc; [] elsewhere).
 * Children inherit the environment, so a unique marker (e.g. TEST_DATA_DIR=<temp dir>) finds every process
 * a run started, however it was started and whoever its parent now is.
 */
export function pidsWithEnv(name: string, value: string): number[] {
  const needle = Buffer.from(`${name}=${value}\0`);
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const env = fs.readFileSync(`/proc/${pid}/environ`);
      if (env.indexOf(needle) === 0 || env.includes(Buffer.concat([Buffer.from([0]), needle]))) pids.push(pid);
    } catch {
      /* gone, or not ours */
    }
  }
  return pids;
}

/** SIGTERMs every process whose environment has NAME=value, SIGKILLs those left after graceMs; returns their pids. */
export async function reapByEnv(name: string, value: string, graceMs = 3000): Promise<number[]> {
  const found = pidsWithEnv(name, value);
  if (!found.length) return found;
  const signal = (pid: number, sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  };
  for (const pid of found) signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && pidsWithEnv(name, value).length) await sleep(100);
  for (const pid of pidsWithEnv(name, value)) signal(pid, 'SIGKILL');
  return found;
}

// ---------------------------------------------------------------------------------------------------------
// Shutdown on signals

/**
 * Runs `shutdown` once on SIGINT, SIGTERM or SIGHUP, then exits with 128+signal (or the code it returns).
 * The same signal often arrives twice at once (a terminal's Ctrl-C reaches the whole foreground group and
 * tsx relays it too), so repeats within 2 s are ignored; a later one kills every child at once and exits.
 * Returns a function that removes the handlers.
 */
export function onShutdownSignal(shutdown: (signal: NodeJS.Signals) => Promise<number | void>): () => void {
  let first = 0;
  const handler = (signal: NodeJS.Signals) => {
    if (first) {
      if (Date.now() - first < 2000) return;
      process.stderr.write(`\n${signal} again: killing everything now\n`);
      process.exit(130); // the 'exit' hook SIGKILLs every live group
    }
    first = Date.now();
    const base = signal === 'SIGINT' ? 130 : signal === 'SIGHUP' ? 129 : 143;
    shutdown(signal).then(
      (code) => process.exit(typeof code === 'number' ? code : base),
      (err: unknown) => {
        process.stderr.write(`shutdown failed: ${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
