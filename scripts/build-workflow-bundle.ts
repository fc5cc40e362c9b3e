/** Builds the workflow bundle the production worker loads (dist/workflow-bundle.js). Runs from scripts/ (tsx) or dist/scripts/ (node). */
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

async function main(): Promise<void> {
  const { code } = await bundleWorkflowCode({ workflowsPath: require.resolve('../workflows') });
  const compiled = __dirname.endsWith(path.join('dist', 'scripts'));
  const root = path.resolve(__dirname, compiled ? '../..' : '..');
  const out = path.join(root, 'dist', 'workflow-bundle.js');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, code);
  console.log(`workflow bundle: ${out} (${(code.length / 1024).toFixed(0)} KiB)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
