// Bundles the workflow code once at build time; workers load the bundle
// instead of running webpack at start.
import { bundleWorkflowCode } from '@temporalio/worker';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { code } = await bundleWorkflowCode({
  workflowsPath: require.resolve(join(root, 'workflows/dist/index.js')),
  // Baked into the bundle (a worker ignores interceptors.workflowModules when given a bundle).
  workflowInterceptorModules: [require.resolve(join(root, 'workflows/dist/tracing-interceptors.js'))],
  logger: { info() {}, warn: console.warn, error: console.error, debug() {}, trace() {}, log() {} },
});
const out = join(root, 'workflows/dist/workflow-bundle.js');
await mkdir(dirname(out), { recursive: true });
await writeFile(out, code);
console.log(`workflow bundle: ${out} (${(code.length / 1024).toFixed(0)} KiB)`);
