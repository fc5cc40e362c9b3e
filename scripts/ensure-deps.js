#!/usr/bin/env node
/**
 * Makes sure node_modules matches package-lock.json before `npm start` / `npm test` run any TypeScript.
 * Plain Node on purpose: it runs before tsx (a dependency) may exist.
 *
 * Runs `npm ci` when node_modules is missing, or when package-lock.json is newer than the copy npm keeps
 * of it (node_modules/.package-lock.json, rewritten at the end of every install). Otherwise a fast no-op.
 *
 * npm 11 gates dependency install scripts by package.json "allowScripts"; nothing here needs them
 * (argon2 loads its prebuilt binary), so a plain `npm ci` is enough.
 */
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const lockFile = path.join(root, 'package-lock.json');
const installedLock = path.join(root, 'node_modules', '.package-lock.json');

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

const why = reason();
if (why) {
  process.stderr.write(`ensure-deps: ${why}; running npm ci\n`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const res = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (res.error) {
    process.stderr.write(`ensure-deps: could not run npm ci: ${res.error.message}\n`);
    process.exit(1);
  }
  if (res.status !== 0) {
    process.stderr.write(`ensure-deps: npm ci failed (exit ${res.status ?? res.signal}); fix the error above and retry\n`);
    process.exit(res.status || 1);
  }
}
