/**
 * One child process (and its process group) with its output appended to a log file, so stop() and kill()
 * reach grandchildren too (tsx runs the real node process as a child) and nothing is left behind; plus
 * finding processes a run left (by an environment marker), and shutting down on signals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { sleep, waitFor, type WaitOptions } from './wait';

const ROOT = path.resolve(__dirname, '..', '..');

/** Whether a process with this pid exists (one of another user's counts: EPERM). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
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
export function serviceEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(TEMPORAL_|MAILDEV_|FERRETDB_)/.test(k)) env[k] = v;
  }
  return env;
}

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
