/**
 * `npm test [-- <jest args>]`: starts an isolated stack (fresh temp dir, free ports, headless Temporal with
 * its state in a file so drills can kill and restart it), runs the test stages against it, stops it, and
 * exits with the first failing stage's code. Safe to run while `npm start` runs in the same clone.
 *
 * Stages run in order and stop at the first failure: the type check and lint first (before any tool is
 * installed or service started), then jest, fuzzing and the failure drills. Append new ones to `stages` below. Jest arguments (e.g. `npm test -- test/foo.test.ts`) mean
 * "just these tests": stages without `runWhenFiltered` are then skipped. TEST_STAGES=jest,drills picks stages.
 *
 * Services that already exist can be used instead of local ones: TEST_TEMPORAL_ADDRESS, TEST_MONGODB_URI,
 * TEST_SMTP_URL (the plain TEMPORAL_ADDRESS etc. are ignored here on purpose: they usually point at the
 * `npm start` stack). KEEP_TEST_DATA=1 keeps the temp dir after a passing run (it is always kept on failure).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { ensureTools, ROOT, type ToolName } from './tools';
import { onShutdownSignal, reapByEnv, startServices, stopAllManaged, tailLogs, type Stack } from './stack';
import { readCounts, reportCounts, runMain } from './run-main';

export interface StageContext {
  /** The environment the tests get (this process's plus the stack's). */
  env: NodeJS.ProcessEnv;
  /** Extra CLI arguments given to `npm test --`. */
  args: string[];
  stack: Stack;
  /** The run's temp dir (TEST_DATA_DIR); logs in logDir. */
  dataDir: string;
  logDir: string;
  /** Runs a command with inherited stdio and `env`; resolves with its exit code. */
  run(command: string, args: string[], opts?: { env?: NodeJS.ProcessEnv; cwd?: string }): Promise<number>;
}

export interface Stage {
  name: string;
  /** Also run when jest arguments narrow the run (default: skipped then). */
  runWhenFiltered?: boolean;
  /** Run only when named in TEST_STAGES. */
  optIn?: boolean;
  /** Needs no services: runs before the stack starts (ctx.stack is not there yet), so it fails in seconds. */
  beforeStack?: boolean;
  /** Resolves with an exit code: 0 = passed. */
  run(ctx: StageContext): Promise<number>;
}

const bin = (name: string) => path.join(ROOT, 'node_modules', '.bin', name);

/** The lines above the closing one that name what failed (CI keeps the end of a long log). */
function whatFailed(failures: string[]): string {
  return failures.length ? `\ntest: what failed:\n${failures.map((f) => `  - ${f}`).join('\n')}\n` : '';
}

/** Jest, with a JSON summary so we can print one closing "N passed, N failed" line. */
async function runJest(ctx: StageContext): Promise<number> {
  const args = ['--runInBand', '--forceExit', ...ctx.args];
  const wantsOwnJson = ctx.args.some((a) => a === '--json' || a.startsWith('--outputFile'));
  const resultsFile = path.join(ctx.dataDir, 'jest-results.json');
  if (!wantsOwnJson) args.push('--json', `--outputFile=${resultsFile}`);
  const code = await ctx.run(bin('jest'), args);
  if (!wantsOwnJson) {
    try {
      const r = JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as {
        numPassedTests: number;
        numFailedTests: number;
        numPendingTests: number;
        numTodoTests?: number;
        testResults: { name: string; message?: string; assertionResults: { fullName: string; status: string }[] }[];
      };
      const skipped = r.numPendingTests + (r.numTodoTests ?? 0);
      const failures = r.testResults.flatMap((file) => {
        const name = path.relative(ROOT, file.name);
        const failedTests = file.assertionResults.filter((a) => a.status === 'failed').map((a) => `${name} › ${a.fullName}`);
        // a file that failed before any test ran (a syntax error, a failing beforeAll) names no test: its message's first line
        const firstLine = file.message?.trim().split('\n')[0];
        return failedTests.length || !firstLine ? failedTests : [`${name}: ${firstLine}`];
      });
      reportCounts('jest', { passed: r.numPassedTests, failed: r.numFailedTests, skipped, failures }, ctx.dataDir);
      process.stdout.write(`\njest: ${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
    } catch {
      /* jest did not get as far as writing results; its own output says why */
    }
  }
  return code;
}

/** A check that passes or fails as a whole (type check, lint), counted as one test in the closing line. */
function check(name: string, command: string, args: string[]): Stage['run'] {
  return async (ctx) => {
    const code = await ctx.run(command, args);
    reportCounts(name, { passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1, failures: code === 0 ? [] : [`exit ${code}, see its output above`] }, ctx.dataDir);
    return code;
  };
}

/** The test stages, in order. Append new ones here. */
export const stages: Stage[] = [
  // every TypeScript file, drills and bench included (tsconfig.json): a type error fails the run in seconds
  { name: 'typecheck', beforeStack: true, run: check('typecheck', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']) },
  // ESLint (eslint.config.mjs: floating promises, what workflow code may import) and Prettier's formatting
  { name: 'lint', beforeStack: true, run: check('lint', 'bash', ['-c', `"${bin('eslint')}" . && "${bin('prettier')}" --check --log-level warn .`]) },
  // Debian's Chromium for the browser tests (never a downloaded browser): installed when missing.
  {
    name: 'chromium',
    runWhenFiltered: true,
    run: (ctx) => (ctx.args.length && !ctx.args.some((a) => a.includes('browser')) ? Promise.resolve(0) : ctx.run('bash', ['scripts/ensure-chromium.sh'])),
  },
  { name: 'jest', runWhenFiltered: true, run: runJest },
  // schemathesis against a worker and API it starts on this stack (no 5xx, every answer as documented): scripts/fuzz.ts
  { name: 'fuzz', run: (ctx) => ctx.run(bin('tsx'), ['scripts/fuzz.ts']) },
  // failure drills on a stack of their own (they kill and restart its services; ~4 min): drills/run.ts
  { name: 'drills', run: (ctx) => ctx.run(bin('tsx'), ['drills/run.ts']) },
];

let current: ChildProcess | undefined;

function runChild(command: string, args: string[], env: NodeJS.ProcessEnv, cwd = ROOT): Promise<number> {
  return new Promise((resolve) => {
    // same process group as us: a terminal's Ctrl-C reaches it directly
    const child = spawn(command, args, { cwd, env, stdio: 'inherit' });
    current = child;
    child.on('error', (err) => {
      process.stderr.write(`test: could not run ${command}: ${err.message}\n`);
      resolve(127);
    });
    child.on('exit', (code, signal) => {
      if (current === child) current = undefined;
      resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1));
    });
  });
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const external = {
    temporalAddress: process.env.TEST_TEMPORAL_ADDRESS || undefined,
    mongodbUri: process.env.TEST_MONGODB_URI || undefined,
    smtpUrl: process.env.TEST_SMTP_URL || undefined,
  };

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'account-recovery-test-'));
  const only = process.env.TEST_STAGES?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const selected = (stage: Stage) => (only ? only.includes(stage.name) : !stage.optIn && (args.length === 0 || !!stage.runWhenFiltered));

  // Checks that need no services run first, before any tool is installed or service started: they fail in seconds.
  const earlyEnv: NodeJS.ProcessEnv = { ...process.env, TEST_DATA_DIR: dataDir };
  for (const stage of stages.filter((st) => st.beforeStack && selected(st))) {
    process.stderr.write(`test: stage ${stage.name}\n`);
    const code = await stage.run({
      env: earlyEnv,
      args,
      stack: undefined as never,
      dataDir,
      logDir: path.join(dataDir, 'logs'),
      run: (cmd, a, o = {}) => runChild(cmd, a, o.env ?? earlyEnv, o.cwd),
    });
    if (code !== 0) {
      const total = readCounts(dataDir);
      process.stderr.write(`\ntest: stage ${stage.name} failed (exit ${code}); data in ${dataDir}\n`);
      process.stdout.write(`${whatFailed(total.failures)}\ntest: ${total.passed} passed, ${Math.max(total.failed, 1)} failed\n`);
      return code;
    }
  }

  // the tools the local services need; the others are a convenience for tests that want them
  const required: ToolName[] = [];
  if (!external.temporalAddress) required.push('temporal');
  if (!external.mongodbUri) required.push('ferretdb');
  const tools: Partial<Record<ToolName, string>> = await ensureTools(required);
  for (const name of ['temporal', 'ferretdb'] as const) {
    if (tools[name]) continue;
    try {
      tools[name] = (await ensureTools([name]))[name];
    } catch (err) {
      process.stderr.write(`test: ${name} unavailable, tests needing it will fail: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }

  const logDir = path.join(dataDir, 'logs');
  let stack: Stack | undefined;
  let failed = false;
  let interrupted = false;
  onShutdownSignal(async (signal) => {
    interrupted = true;
    current?.kill(signal);
    await stopAllManaged();
    await reapByEnv('TEST_DATA_DIR', dataDir);
    process.stderr.write(`test: interrupted; data and logs kept in ${dataDir}\n`);
  });

  try {
    const started = Date.now();
    stack = await startServices({
      dataDir: path.join(dataDir, 'stack'),
      persistent: true,
      headless: true,
      external,
      logDir,
      mongoDbName: `test_${Date.now().toString(36)}_${crypto.randomBytes(3).toString('hex')}`,
      bin: { temporal: tools.temporal, ferretdb: tools.ferretdb },
    });
    process.stderr.write(`test: stack up in ${((Date.now() - started) / 1000).toFixed(1)} s (temp dir ${dataDir})\n`);

    const env: NodeJS.ProcessEnv = { ...process.env };
    // a developer's Temporal Cloud settings must not leak into tests against the local server
    if (!external.temporalAddress) for (const k of Object.keys(env)) if (/^TEMPORAL_(API_KEY|TLS_|NAMESPACE$)/.test(k)) delete env[k];
    Object.assign(env, {
      TEMPORAL_ADDRESS: stack.env.TEMPORAL_ADDRESS,
      MONGODB_URI: stack.env.MONGODB_URI,
      SMTP_URL: stack.env.SMTP_URL,
      MAILDEV_URL: stack.env.MAILDEV_URL ?? '',
      TEMPORAL_CLI_PATH: tools.temporal ?? '',
      FERRETDB_PATH: tools.ferretdb ?? '',
      TEST_DATA_DIR: dataDir,
      TEST_LOG_DIR: logDir,
      NODE_ENV: 'test',
      DATA_DIR: path.join(dataDir, 'app'),
      CAPTCHA_PROVIDER: 'test',
      LOG_LEVEL: 'warn',
    });

    const ctx: StageContext = { env, args, stack, dataDir, logDir, run: (cmd, a, o = {}) => runChild(cmd, a, o.env ?? env, o.cwd) };
    for (const stage of stages) {
      if (stage.beforeStack || !selected(stage)) continue;
      process.stderr.write(`test: stage ${stage.name}\n`);
      const code = await stage.run(ctx);
      if (interrupted) return code; // the signal handler cleans up and reports
      if (code !== 0) {
        failed = true;
        process.stderr.write(`\ntest: stage ${stage.name} failed (exit ${code}); stack logs:\n${tailLogs(logDir)}\n`);
        return code;
      }
    }
    return 0;
  } catch (err) {
    failed = true;
    process.stderr.write(`test: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    // the run's closing line: every stage's tests added up (CI reads it; a stage that died before counting adds a failure)
    const total = readCounts(dataDir);
    if (failed && total.failed === 0) total.failed = 1;
    const closing = `${whatFailed(total.failures)}\ntest: ${total.passed} passed, ${total.failed} failed${total.skipped ? `, ${total.skipped} skipped` : ''}\n`;
    await stack?.stop();
    await stopAllManaged(); // anything a stage started through this process and left running
    // anything the tests started and leaked (e.g. a worker orphaned when only its tsx parent was killed)
    const leaked = await reapByEnv('TEST_DATA_DIR', dataDir);
    if (leaked.length) {
      process.stderr.write(`test: WARNING: killed ${leaked.length} process(es) the tests left running (pids ${leaked.join(', ')}); a test is not cleaning up its children\n`);
    }
    if (interrupted) {
      /* the signal handler reports where the data is */
    } else if (failed || process.env.KEEP_TEST_DATA) process.stderr.write(`test: data and logs kept in ${dataDir}\n`);
    else fs.rmSync(dataDir, { recursive: true, force: true });
    if (!interrupted) process.stdout.write(closing);
  }
}

if (require.main === module) runMain('test', main);
