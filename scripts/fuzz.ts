/**
 * The `fuzz` stage of `npm test` (or `tsx scripts/fuzz.ts` against the stack in TEMPORAL_ADDRESS /
 * MONGODB_URI / SMTP_URL): property-based fuzzing of every operation in /openapi.json with schemathesis,
 * against a live worker and API started here. Every response must conform to the document (status,
 * content type, headers, body schema; every error application/problem+json), no answer may be a 5xx,
 * schema-invalid input must be refused, and authentication must not be ignorable.
 *
 * schemathesis (pinned below) is installed once into .tools/schemathesis, a Python venv. The run is
 * bounded (FUZZ_MAX_EXAMPLES cases per operation, default 12; a hard time limit) and reproducible:
 * FUZZ_SEED (default fixed) picks the cases; set FUZZ_SEED=random for new ones.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { ROOT } from './tools';
import { startApp, stopAllManaged } from './stack';
import { reportCounts, runMain } from './run-main';

const SCHEMATHESIS_VERSION = '4.32.5';
const VENV = path.join(ROOT, '.tools', 'schemathesis');
const ST = path.join(VENV, 'bin', 'st');
const TIME_LIMIT_MS = 170_000;
/** What every response is held to (schemathesis check names). */
const CHECKS = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
  'negative_data_rejection',
  'ignored_auth',
].join(',');

const log = (m: string) => process.stderr.write(`fuzz: ${m}\n`);

function installed(): boolean {
  const r = spawnSync(ST, ['--version'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes(SCHEMATHESIS_VERSION);
}

/** Idempotent: a venv with the pinned schemathesis, or nothing is done. */
export function ensureSchemathesis(): void {
  if (installed()) return;
  log(`installing schemathesis ${SCHEMATHESIS_VERSION} into ${path.relative(ROOT, VENV)}`);
  const python = process.env.PYTHON ?? 'python3';
  const steps: [string, string[]][] = [
    [python, ['-m', 'venv', '--clear', VENV]],
    [path.join(VENV, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `schemathesis==${SCHEMATHESIS_VERSION}`]],
  ];
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.error?.message})`);
  }
  if (!installed()) throw new Error('schemathesis did not install');
}

/**
 * schemathesis closes each run with pytest's ruler ("==== 1 warning in 2.01s ===="), which CI reads as a pytest
 * run that executed no test: its rulers are drawn with dashes instead (the full output is in the log dir).
 */
function unruled(chunk: string): string {
  return chunk.replace(/^=+( .* )=+$/gm, (_, text: string) => `--${text}--`);
}

function runSt(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number, logFile: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(ST, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    const out = fs.createWriteStream(logFile);
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out.write(d);
      const lines = (pending + d).split('\n');
      pending = lines.pop() ?? '';
      if (lines.length) process.stdout.write(unruled(lines.join('\n')) + '\n');
    });
    child.stdout.on('end', () => pending && process.stdout.write(unruled(pending) + '\n'));
    child.stderr.pipe(process.stderr);
    const timer = setTimeout(() => {
      log(`schemathesis still running after ${Math.round(timeoutMs / 1000)} s: stopping it`);
      child.kill('SIGTERM');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      out.end();
      resolve(code ?? (signal ? 124 : 1));
    });
    child.on('error', () => resolve(127));
  });
}

async function main(): Promise<number> {
  const started = Date.now();
  ensureSchemathesis();
  const logDir = process.env.TEST_LOG_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fuzz-'));
  const base = process.env.MONGODB_URI ?? 'mongodb://127.0.0.1:27017/account-recovery';
  const appEnv: Record<string, string> = {
    NODE_ENV: 'development', // the /v1/dev routes are in the document too
    CAPTCHA_PROVIDER: 'test',
    RATE_LIMITS: 'off',
    LOG_LEVEL: 'warn',
    ARGON2_MEMORY_KIB: '8192',
    ARGON2_ITERATIONS: '1',
    MONGODB_URI: base.replace(/\/([^/?]*)(\?|$)/, `/fuzz_${crypto.randomBytes(3).toString('hex')}$2`),
    TEMPORAL_TASK_QUEUE: `fuzz-${crypto.randomBytes(3).toString('hex')}`,
    OPS_TOKEN: `fuzz-ops-${crypto.randomBytes(12).toString('hex')}`,
    METRICS_ADDR: '127.0.0.1:0', // not the default 9464, which a running `npm start` may hold
  };
  const app = await startApp(appEnv, { logDir });
  try {
    const api = app.urls.api!;
    // A signed-in session, so that the signed-in operations are fuzzed beyond their 401.
    Object.assign(process.env, appEnv);
    const { connectMongo, disconnectMongo } = await import('../db/mongo');
    const { createAccount } = await import('../domain/accounts');
    const { hashSecret } = await import('../lib/passwords');
    await connectMongo(appEnv.MONGODB_URI);
    const password = 'fuzzing is a long password';
    const email = `fuzz-${crypto.randomBytes(3).toString('hex')}@example.com`;
    await createAccount({ email, phone: '+14155550199', passwordHash: await hashSecret(password) });
    await disconnectMongo();
    const signIn = await fetch(`${api}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identifier: email, password }) });
    const session = ((await signIn.json()) as { token?: string }).token;
    if (!session) throw new Error(`could not sign in for fuzzing (${signIn.status})`);

    const seed = process.env.FUZZ_SEED === 'random' ? String(crypto.randomInt(1, 2 ** 31)) : (process.env.FUZZ_SEED ?? '20260101');
    const maxExamples = process.env.FUZZ_MAX_EXAMPLES ?? '12';
    const reportDir = path.join(logDir, 'schemathesis');
    // One worker: with two, Hypothesis parses lambda sources (ast) in two threads at once, and Python 3.11's
    // ast is not thread-safe ("AST constructor recursion depth mismatch" failed a CI run's coverage phase).
    const common = [
      '--checks',
      CHECKS,
      '--max-examples',
      maxExamples,
      '--seed',
      seed,
      '--workers',
      '1',
      '--request-timeout',
      '20',
      '--suppress-health-check',
      'all',
      '--report',
      'junit',
      '--report-dir',
      reportDir,
      '--phases',
      'examples,coverage,fuzzing',
    ];
    const stEnv = { ...process.env, SCHEMATHESIS_HOOKS: '', NO_COLOR: '1', PYTHONUNBUFFERED: '1' };
    log(`seed ${seed}, ${maxExamples} examples per operation; signed-in operations with a session, Operations with OPS_TOKEN`);
    const budget = () => Math.max(10_000, TIME_LIMIT_MS - (Date.now() - started));
    // 413 (a body over 16 KiB) is a refusal of invalid input too: schemathesis's list lacks it.
    const baseConfig = ['[checks.negative_data_rejection]', 'expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5XX"]', ''].join('\n');
    const configFile = path.join(logDir, 'schemathesis.toml');
    fs.mkdirSync(logDir, { recursive: true });
    fs.writeFileSync(configFile, baseConfig);
    const passes: [string, string[]][] = [
      // every operation but the ops ones, signed in; flow ids are generated (so mostly unknown flows)
      ['signed-in', ['--config-file', configFile, 'run', `${api}/openapi.json`, ...common, '--exclude-tag', 'Operations', '-H', `Authorization: Bearer ${session}`]],
      ['ops', ['--config-file', configFile, 'run', `${api}/openapi.json`, ...common, '--include-tag', 'Operations', '-H', `Authorization: Bearer ${appEnv.OPS_TOKEN}`]],
    ];
    // The flow operations once more against a real flow (a reset started for the fuzz account), so that
    // the generated bodies reach the flow instead of a 404. A reset is driven only with the flowSecret its
    // start answered with (API v1.1), so that pass sends it as Flow-Secret on every request. (In the other
    // passes flows are unknown or have no secret: 404 flow_not_found, as documented.)
    const start = await fetch(`${api}/v1/flows/password-reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ identifier: email }) });
    const { flowId, flowSecret } = (await start.json()) as { flowId?: string; flowSecret?: string };
    if (flowId && !flowSecret) throw new Error(`the reset start answered without a flowSecret (${start.status})`);
    if (flowId && flowSecret) {
      const flowConfig = path.join(logDir, 'schemathesis-flow.toml');
      fs.writeFileSync(flowConfig, `${baseConfig}\n[parameters]\n"path.flowId" = "${flowId}"\n`);
      // (fuzzing only: schemathesis 4.32.5's coverage phase errors out on a fixed path parameter)
      const fuzzOnly = common.map((a, i) => (common[i - 1] === '--phases' ? 'fuzzing' : a));
      passes.push([
        'one real flow',
        [
          '--config-file',
          flowConfig,
          'run',
          `${api}/openapi.json`,
          ...fuzzOnly,
          '--include-path-regex',
          '\\{flowId\\}',
          '-H',
          `Authorization: Bearer ${session}`,
          '-H',
          `Flow-Secret: ${flowSecret}`,
        ],
      ]);
    }
    const failedPasses: string[] = [];
    for (const [name, args] of passes) {
      log(`pass: ${name}`);
      if ((await runSt(args, stEnv, budget(), path.join(logDir, `schemathesis-${name.replace(/\W+/g, '-')}.log`))) !== 0) failedPasses.push(name);
    }
    const failed = failedPasses.length;
    process.stdout.write(
      `\nfuzzing took ${((Date.now() - started) / 1000).toFixed(0)} s; JUnit reports in ${reportDir}${failed ? `; failed: ${failedPasses.join(', ')}` : ''}\nfuzz: ${passes.length - failed} passed, ${failed} failed\n`,
    );
    reportCounts('fuzz', { passed: passes.length - failed, failed, failures: failedPasses.map((p) => `${p} (JUnit reports in ${reportDir})`) });
    return failed ? 1 : 0;
  } finally {
    await app.stop();
    await stopAllManaged();
  }
}

if (require.main === module) runMain('fuzz', main);
