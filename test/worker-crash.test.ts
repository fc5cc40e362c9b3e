/**
 * A worker process killed (SIGKILL) between sending the code and the user's submit: after a new
 * worker starts, the flow continues and the same code still works. Nothing is lost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { startHarness, makeAccount, type Harness } from './support/harness';

let h: Harness;
const root = path.resolve(__dirname, '..');

function startWorkerProcess(): Promise<ChildProcess> {
  const child = spawn(path.join(root, 'node_modules/.bin/tsx'), ['worker/index.ts'], { cwd: root, env: { ...process.env, LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('worker started')) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`worker exited early (${code}): ${out.slice(-2000)}`)));
    setTimeout(() => reject(new Error(`worker did not start: ${out.slice(-2000)}`)), 90_000).unref();
  });
}

beforeAll(async () => {
  h = await startHarness('crash', {}, { worker: false });
}, 120_000);
afterAll(async () => {
  await h?.stop();
});

test('SIGKILL the worker after the code is sent; a new worker continues the flow with the same code', async () => {
  const acc = await makeAccount();
  const first = await startWorkerProcess();
  const flow = await h.api.resetToCode(acc.email);
  const { code } = await h.api.codeFor(acc.email);

  first.kill('SIGKILL');
  await new Promise((r) => first.once('exit', r));

  const second = await startWorkerProcess();
  try {
    const r = await h.api.post(`/v1/flows/${flow.flowId}/code`, { code });
    expect(r.status).toBe(200);
    expect(r.body.step).toBe('new_password');
    const done = await h.api.post(`/v1/flows/${flow.flowId}/password`, { password: 'survived a crash intact', confirmation: 'survived a crash intact' });
    expect(done.body.status).toBe('completed');
    // The crash did not make the code go out twice.
    const { body } = await h.api.get(`/v1/dev/outbox?to=${encodeURIComponent(acc.email)}`);
    expect(body.filter((m: { subject: string }) => /verification code/.test(m.subject))).toHaveLength(1);
  } finally {
    second.kill('SIGTERM');
    await new Promise((r) => second.once('exit', r));
  }
}, 180_000);
