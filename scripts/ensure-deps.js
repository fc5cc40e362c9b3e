#!/usr/bin/env node
/**
 * Makes sure node_modules matches package-lock.json before `npm start` / `npm test` run any TypeScript.
 * Plain Node on purpose: it runs before tsx (a dependency) may exist.
 *
 * Runs `npm ci` when node_modules is missing, or when package-lock.json is newer than the copy npm keeps
 * of it (node_modules/.package-lock.json, rewritten at the end of every install). Otherwise a fast no-op.
 *
 * npm 11 gates dependency install scripts by package.json "allowScripts"; nothing here needs them
 * (argon2 loads its prebuilt binary), so a plain install is enough.
 *
 * Fallback: when `npm ci` refuses the lock file as "not in sync" with package.json, `npm install` is run
 * instead (it installs the versions the lock pins). That happens when the lock lacks entries for other
 * platforms' optional binaries (e.g. @swc/core-darwin-arm64), which npm leaves out of a lock generated where
 * the registry does not serve them, yet `npm ci` demands. Any other failure stops with npm's error.
 *
 * How the refusal is recognised: npm runs with `--json`, so it reports a failure on stdout as
 * `{"error":{"code":"EUSAGE","summary":…}}` (and exits non-zero) whatever the log level. The decision uses
 * that exit code and error code only, never npm's human-readable text: under `npm -s test` / `npm run -s
 * bench` the child npm inherits `npm_config_loglevel=silent` and prints no error text at all. (npm 11: the
 * JSON error is printed even when silent; a successful install prints a JSON summary, which is swallowed.)
 * When npm fails and printed nothing itself (silent), its error summary is shown here instead.
 *
 * Native modules: argon2 ships prebuilt binaries, but its linux-x64 glibc prebuild crashes (SIGSEGV) on
 * load with this machine's Node, and its install script would pick that prebuild anyway. So after an
 * install (and once per Node version) each native module is loaded in a child process; one that fails is
 * compiled from source with npm's bundled node-gyp (needs python3, make, g++; headers from the local Node
 * install, nothing downloaded). node-gyp-build prefers that build/Release over the prebuilds.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const lockFile = path.join(root, 'package-lock.json');
const installedLock = path.join(root, 'node_modules', '.package-lock.json');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** Native modules to check by loading them; compiled from source when the load fails. */
const NATIVE_MODULES = ['argon2'];
const nativeStamp = path.join(root, 'node_modules', '.native-modules-ok');

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

function reason() {
  if (!fs.existsSync(path.join(root, 'node_modules'))) return 'node_modules is missing';
  const installed = mtime(installedLock);
  if (installed === undefined) return 'node_modules/.package-lock.json is missing';
  const wanted = mtime(lockFile);
  if (wanted !== undefined && wanted > installed) return 'package-lock.json changed since the last install';
  return undefined;
}

/** npm's `--json` report: the whole stdout, else the last top-level object in it (after other output). */
function parseJson(stdout) {
  const text = stdout.trim();
  const starts = [0];
  for (let i = text.indexOf('\n{'); i >= 0; i = text.indexOf('\n{', i + 1)) starts.push(i + 1);
  for (const at of starts.reverse()) {
    try {
      return JSON.parse(text.slice(at));
    } catch {
      /* not (only) JSON from here */
    }
  }
  return undefined;
}

/**
 * Runs `npm <args> --json`: stderr is shown live; stdout (npm's JSON report) is kept to read the error code.
 * Resolves { code: exit code, error: { code, summary, detail } | undefined, report, stderr }.
 */
function runNpm(args) {
  return new Promise((resolve) => {
    const child = spawn(npm, [...args, '--json'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      stderr += chunk.toString();
    });
    child.on('error', (err) => resolve({ code: 127, error: { code: 'ENOENT', summary: `could not run npm: ${err.message}` }, stderr: '' }));
    child.on('close', (code, signal) => {
      const exit = code ?? (signal ? 128 : 1);
      const report = parseJson(stdout);
      let error = report && typeof report === 'object' && report.error && typeof report.error === 'object' ? report.error : undefined;
      if (exit !== 0 && !error) error = { code: undefined, summary: stdout.trim() };
      resolve({ code: exit, error: exit === 0 ? undefined : error, report, stderr });
    });
  });
}

/** Shows npm's error when npm itself printed nothing (e.g. loglevel silent). */
function showError(what, res) {
  if (res.stderr.trim() || !res.error) return;
  const text = [res.error.summary, res.error.detail].filter((t) => typeof t === 'string' && t.trim()).join('\n\n');
  process.stderr.write(`ensure-deps: ${what} error${res.error.code ? ` ${res.error.code}` : ''}${text ? `:\n${text}\n` : '\n'}`);
}

/** One line instead of npm's (swallowed) JSON summary of a successful install. */
function done(what, res) {
  const added = res.report && Array.isArray(res.report.add) ? res.report.add.length : undefined;
  process.stderr.write(`ensure-deps: ${what} done${added === undefined ? '' : ` (${added} packages)`}\n`);
}

function fail(what, code) {
  process.stderr.write(`ensure-deps: ${what} failed (exit ${code}); fix the error above and retry\n`);
  process.exit(code || 1);
}

/** Whether `name` loads in a fresh Node process (a crashing prebuild kills only that process). */
function loads(name) {
  const res = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(name)})`], { cwd: root, encoding: 'utf8' });
  return res.status === 0 ? true : `${res.signal ?? `exit ${res.status}`}${res.stderr ? `: ${res.stderr.trim().split('\n')[0]}` : ''}`;
}

/** npm's own node-gyp (npm always bundles one). */
function nodeGypPath() {
  const candidates = [];
  if (process.env.npm_execpath) candidates.push(path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    try {
      const cli = fs.realpathSync(path.join(dir, 'npm'));
      candidates.push(path.join(path.dirname(cli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
    } catch {
      /* no npm here */
    }
  }
  return candidates.find((c) => fs.existsSync(c));
}

/** Node's headers: npm's nodedir setting, else the install prefix of this node (e.g. /usr). */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

function ensureNativeModules() {
  const want = `${process.version} ${process.execPath}`;
  try {
    if (fs.readFileSync(nativeStamp, 'utf8').trim() === want && mtime(nativeStamp) >= (mtime(installedLock) ?? 0)) return;
  } catch {
    /* not checked yet */
  }
  for (const name of NATIVE_MODULES) {
    const dir = path.join(root, 'node_modules', name);
    if (!fs.existsSync(dir)) continue;
    const first = loads(name);
    if (first === true) continue;
    process.stderr.write(`ensure-deps: ${name} does not load (${first}); compiling it from source\n`);
    const gyp = nodeGypPath();
    if (!gyp) {
      process.stderr.write("ensure-deps: cannot find npm's node-gyp to compile it\n");
      process.exit(1);
    }
    const args = [gyp, 'rebuild'];
    const headers = nodeDir();
    if (headers) args.push(`--nodedir=${headers}`);
    const res = spawnSync(process.execPath, args, { cwd: dir, stdio: ['ignore', 2, 2] });
    const after = res.status === 0 ? loads(name) : `node-gyp exit ${res.status ?? res.signal}`;
    if (after !== true) {
      process.stderr.write(`ensure-deps: compiling ${name} failed (${after}); it needs python3, make and a C++ compiler (Debian: apt-get install build-essential python3)\n`);
      process.exit(1);
    }
    process.stderr.write(`ensure-deps: ${name} compiled and loads\n`);
  }
  fs.writeFileSync(nativeStamp, want + '\n');
}

async function main() {
  const why = reason();
  if (!why) {
    ensureNativeModules();
    return;
  }
  process.stderr.write(`ensure-deps: ${why}; running npm ci\n`);
  const ci = await runNpm(['ci', '--no-audit', '--no-fund']);
  if (ci.code !== 0) {
    // decided on npm's exit code and its JSON error code; its text may not have been printed (loglevel silent)
    if (!ci.error || ci.error.code !== 'EUSAGE') {
      showError('npm ci', ci);
      fail(`npm ci${ci.error && ci.error.code ? ` (${ci.error.code})` : ''}`, ci.code);
    }
    const firstLine = typeof ci.error.summary === 'string' ? ci.error.summary.split('\n')[0] : '';
    process.stderr.write(
      `ensure-deps: npm ci refused package-lock.json (EUSAGE${firstLine ? `: ${firstLine}` : ''}); running npm install, which installs the versions the lock pins\n`,
    );
    const before = fs.existsSync(lockFile) ? fs.readFileSync(lockFile, 'utf8') : undefined;
    const install = await runNpm(['install', '--no-audit', '--no-fund']);
    if (install.code !== 0) {
      showError('npm install', install);
      fail(`npm install${install.error && install.error.code ? ` (${install.error.code})` : ''}`, install.code);
    }
    done('npm install', install);
    if (!fs.existsSync(lockFile) || fs.readFileSync(lockFile, 'utf8') !== before) {
      process.stderr.write('ensure-deps: WARNING: npm install rewrote package-lock.json; review `git diff package-lock.json`\n');
    }
  } else {
    done('npm ci', ci);
  }
  // mark the install as newer than the lock, so the next run is a no-op
  const now = new Date();
  if (fs.existsSync(installedLock)) fs.utimesSync(installedLock, now, now);
  ensureNativeModules();
}

main().catch((err) => {
  process.stderr.write(`ensure-deps: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
