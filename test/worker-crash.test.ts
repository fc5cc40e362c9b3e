/**
 * A worker process killed (SIGKILL) between sending the code and the user's submit: after a new
 * worker starts, the flow continues and the same code still works. Nothing is lost.
 */
import os from 'node:os';
import path from 'node:path';
import { ManagedProcess, waitForLog } from '../scripts/stack';
import { startHarness, makeAccount, type Harness } from './support/harness';

let h: Harness;
const root = path.resolve(__dirname, '..');

/** A real worker process (its own process group, so SIGKILL takes the node under tsx too). */
async function startWorkerProcess(): Promise<ManagedProcess> {
  const proc = new ManagedProcess({
    name: 'worker',
    command: path.join(root, 'node_modules/.bin/tsx'),
    args: ['worker/index.ts'],
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'info' },
    logFile: path.join(process.env.TEST_LOG_DIR ?? os.tmpdir(), `crash-worker-${process.pid}.log`),
    ready: (_signal, p) => waitForLog(p, 'worker started', { timeoutMs: 90_000 }),
    readyTimeoutMs: 90_000,
  });
  await proc.start();
  return proc;
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

  await first.kill('SIGKILL');

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
    await second.stop();
  }
}, 180_000);
