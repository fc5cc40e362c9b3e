#!/usr/bin/env node
// `recovery-ops` (package.json "bin"): runs ops/cli.ts through tsx, so the CLI needs no build step.
require('tsx/cjs');
const { main } = require('./cli.ts');

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`recovery-ops: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
