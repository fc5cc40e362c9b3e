/** maildev (SMTP capture with a web inbox): how it is started and when it is ready. */
import fs from 'node:fs';
import path from 'node:path';
import { ManagedProcess, serviceEnv } from './process';
import { ROOT } from '../tools';
import { waitForHttp, waitForTcp } from './wait';

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
