import fs from 'node:fs';
import path from 'node:path';

/** How our command-line scripts end: with the exit code `main` resolves to, or the error (named after the script) and exit 1. */
export function runMain(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}

export interface Counts {
  passed: number;
  failed: number;
  skipped?: number;
  /** What failed, one line each (a test's name, a drill and what it lost): printed above the closing line, which CI keeps when it cuts a long log. */
  failures?: string[];
}

/**
 * A stage's tally, for the one closing "test: N passed, N failed" line of `npm test` (CI reads a run's
 * closing line to tell whether tests ran): written to $TEST_DATA_DIR/counts-<stage>.json under `npm test`,
 * nothing otherwise.
 */
export function reportCounts(stage: string, counts: Counts, dir = process.env.TEST_DATA_DIR): void {
  if (dir) fs.writeFileSync(path.join(dir, `counts-${stage}.json`), JSON.stringify(counts));
}

/** The tallies the stages of this run reported (see reportCounts). */
export function readCounts(dir: string): Required<Counts> & { stages: string[] } {
  const total = { passed: 0, failed: 0, skipped: 0, failures: [] as string[], stages: [] as string[] };
  for (const f of fs.readdirSync(dir).filter((n) => /^counts-.+\.json$/.test(n))) {
    const c = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Counts;
    total.passed += c.passed;
    total.failed += c.failed;
    total.skipped += c.skipped ?? 0;
    total.stages.push(f.slice(7, -5));
    total.failures.push(...(c.failures ?? []).map((line) => `${f.slice(7, -5)}: ${line}`));
  }
  return total;
}
