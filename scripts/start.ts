/**
 * `npm start`: the whole service on this machine, data kept in .data/ between runs.
 *
 *   Temporal dev server :7233 (UI :8233) · FerretDB :27017 · maildev SMTP :1025 (inbox :1080)
 *   seed-demo · codec server :$CODEC_PORT (8234) · worker · API :$PORT (3000)
 *
 * TEMPORAL_ADDRESS / MONGODB_URI / SMTP_URL, when set, name existing services: those are not started.
 * Ctrl-C (or SIGTERM) stops every child, newest first. Logs: .data/logs/.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ensureTools, ROOT, type ToolName } from './tools';
import { onShutdownSignal, pidAlive, portIsFree, startApp, startServices, stopAllManaged, type App, type ManagedProcess, type Stack } from './stack';

const DATA_DIR = path.join(ROOT, '.data');
const LOG_DIR = path.join(DATA_DIR, 'logs');
const RUN_FILE = path.join(DATA_DIR, 'run.json');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

const external = {
  temporalAddress: process.env.TEMPORAL_ADDRESS || undefined,
  mongodbUri: process.env.MONGODB_URI || undefined,
  smtpUrl: process.env.SMTP_URL || undefined,
};

const PORTS = {
  temporal: 7233,
  temporalUi: 8233,
  mongo: 27017,
  smtp: 1025,
  mailWeb: 1080,
  codec: Number(process.env.CODEC_PORT || 8234),
  api: Number(process.env.PORT || 3000),
};

function say(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

/** Exits with a clear message when a port we would bind is taken. */
async function checkPorts(): Promise<void> {
  const wanted: { port: number; what: string; hint: string }[] = [];
  if (!external.temporalAddress) {
    wanted.push({ port: PORTS.temporal, what: 'Temporal gRPC', hint: 'or set TEMPORAL_ADDRESS=127.0.0.1:7233 to use the server already there' });
    wanted.push({ port: PORTS.temporalUi, what: 'Temporal Web UI', hint: 'or set TEMPORAL_ADDRESS to use an existing Temporal server' });
  }
  if (!external.mongodbUri)
    wanted.push({ port: PORTS.mongo, what: 'FerretDB (MongoDB)', hint: 'or set MONGODB_URI=mongodb://127.0.0.1:27017/account-recovery to use the database already there' });
  if (!external.smtpUrl) {
    wanted.push({ port: PORTS.smtp, what: 'maildev SMTP', hint: 'or set SMTP_URL=smtp://127.0.0.1:1025 to use the SMTP server already there' });
    wanted.push({ port: PORTS.mailWeb, what: 'maildev inbox', hint: 'or set SMTP_URL to use an existing SMTP server' });
  }
  wanted.push({ port: PORTS.codec, what: 'codec server', hint: 'or set CODEC_PORT to another port' });
  wanted.push({ port: PORTS.api, what: 'API', hint: 'or set PORT to another port' });

  const taken: typeof wanted = [];
  for (const w of wanted) if (!(await portIsFree(w.port))) taken.push(w);
  if (!taken.length) return;

  let previous = '';
  try {
    const run = JSON.parse(fs.readFileSync(RUN_FILE, 'utf8')) as { pid: number };
    if (run.pid !== process.pid && pidAlive(run.pid)) {
      previous = `\nAnother \`npm start\` from this clone is running (pid ${run.pid}): stop it with Ctrl-C in its terminal, or \`kill ${run.pid}\`.`;
    }
  } catch {
    /* no previous run */
  }
  const lines = taken.map((t) => `  port ${t.port} (${t.what}) is already in use: stop what listens there (\`ss -ltnp 'sport = :${t.port}'\`), ${t.hint}`);
  process.stderr.write(`npm start: cannot start, ${taken.length === 1 ? 'a port is' : 'ports are'} taken:\n${lines.join('\n')}${previous}\n`);
  process.exit(1);
}

/** Runs scripts/seed-demo.ts once MongoDB is up; returns what it printed (shown with the URLs). */
async function seedDemo(env: NodeJS.ProcessEnv): Promise<string> {
  const script = path.join(ROOT, 'scripts', 'seed-demo.ts');
  if (!fs.existsSync(script)) return '(scripts/seed-demo.ts not found: no demo account)';
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve(out.trimEnd());
      else reject(new Error(`seed-demo failed (${code ?? signal}):\n${out.trimEnd()}`));
    });
  });
}

function table(rows: [string, string | undefined][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows
    .filter(([, v]) => v)
    .map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)
    .join('\n');
}

let stopping = false;
let stack: Stack | undefined;
let app: App | undefined;

async function shutdown(reason: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  say(`\n${reason}: stopping…`);
  await app?.stop();
  await stack?.stop();
  await stopAllManaged(); // anything still starting when the signal came
  try {
    fs.unlinkSync(RUN_FILE);
  } catch {
    /* not written yet */
  }
  say('stopped.');
}

/** A child that exits on its own takes everything down: a half-running stack only confuses. */
function watch(proc: ManagedProcess | undefined): void {
  proc?.on('exit', (info: { code: number | null; signal: string | null; expected: boolean }) => {
    if (info.expected || stopping) return;
    process.stderr.write(`\n${proc.name} exited unexpectedly (${info.code ?? info.signal}); last lines of ${proc.logFile}:\n${proc.logTail(30)}\n`);
    void shutdown(`${proc.name} died`).then(() => process.exit(1));
  });
}

async function main(): Promise<void> {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  onShutdownSignal(async (signal) => {
    await shutdown(signal);
    return 0;
  });
  await checkPorts();

  const needed: ToolName[] = [];
  if (!external.temporalAddress) needed.push('temporal');
  if (!external.mongodbUri) needed.push('ferretdb');
  const tools = await ensureTools(needed);
  if (stopping) return;

  const local = [!external.temporalAddress && 'Temporal', !external.mongodbUri && 'FerretDB', !external.smtpUrl && 'maildev'].filter(Boolean);
  if (local.length) say(`starting ${local.join(', ')} (data in .data/, logs in .data/logs/)…`);
  const codecUrl = `http://127.0.0.1:${PORTS.codec}`;
  stack = await startServices({
    dataDir: DATA_DIR,
    persistent: true,
    ports: PORTS,
    codecEndpoint: codecUrl,
    external,
    logDir: LOG_DIR,
    bin: { temporal: (tools as Partial<Record<ToolName, string>>).temporal, ferretdb: (tools as Partial<Record<ToolName, string>>).ferretdb },
    verbose: true,
  });
  if (stopping) return;
  for (const p of Object.values(stack.services)) watch(p);

  const env: Record<string, string | undefined> = { ...stack.env, CODEC_PORT: String(PORTS.codec) };
  say('seeding the demo account…');
  const seeded = await seedDemo({ ...process.env, ...env });
  if (stopping) return;

  say('starting the codec server, worker and API…');
  app = await startApp(env, { logDir: LOG_DIR, apiPort: PORTS.api, codec: true, codecPort: PORTS.codec, temporalUiUrl: stack.urls.temporalUi });
  if (stopping) return;
  for (const p of [app.codec, app.worker, app.api]) watch(p);

  fs.writeFileSync(
    RUN_FILE,
    JSON.stringify(
      {
        pid: process.pid,
        startedAt: new Date().toISOString(),
        children: Object.fromEntries([...Object.values(stack.services), app.codec, app.worker, app.api].filter((p) => p?.pid).map((p) => [p!.name, p!.pid])),
      },
      null,
      2,
    ),
  );

  say('');
  say(
    table([
      ['API', app.urls.api],
      ['API docs', app.urls.docs],
      ['Temporal UI', stack.urls.temporalUi ?? (external.temporalAddress ? '(external Temporal: its own UI)' : undefined)],
      ['Mail inbox', stack.urls.mailInbox ?? (external.smtpUrl ? '(external SMTP)' : undefined)],
      ['Codec server', app.urls.codec],
      ['Temporal', external.temporalAddress ? `${external.temporalAddress} (external)` : stack.env.TEMPORAL_ADDRESS],
      // external URIs may hold credentials: not printed
      ['MongoDB', external.mongodbUri ? 'external (MONGODB_URI)' : stack.env.MONGODB_URI],
      ['SMTP', external.smtpUrl ? 'external (SMTP_URL)' : stack.env.SMTP_URL],
      ['Logs', path.relative(process.cwd(), LOG_DIR) + '/'],
    ]),
  );
  if (seeded) say(`\n${seeded}`);
  say('\nReady. Ctrl-C stops everything; the next `npm start` keeps the data.');
}

main().catch(async (err: unknown) => {
  if (stopping) return; // a signal interrupted start-up; shutdown() reports and exits
  process.stderr.write(`\nnpm start failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await shutdown('start-up failed').catch(() => undefined);
  process.exit(1);
});
