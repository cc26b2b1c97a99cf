// The bare-Temporal baseline of `npm run bench`, in its own process like the product's worker: one SDK worker
// with the SDK's default options, a workflow bundle of bench/baseline.workflow.js and one activity that spawns
// the command (no isolation, no records). Prints `ready` once it polls; SIGTERM stops it.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { NativeConnection, Worker, Runtime, DefaultLogger, bundleWorkflowCode } = require('@temporalio/worker');

Runtime.install({ logger: new DefaultLogger('WARN') });
const { code } = await bundleWorkflowCode({ workflowsPath: join(here, 'baseline.workflow.js'), logger: new DefaultLogger('WARN') });
const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
const worker = await Worker.create({
  connection,
  taskQueue: process.env.BASELINE_QUEUE,
  workflowBundle: { code },
  activities: {
    runCommand,
  },
});
process.once('SIGTERM', () => worker.shutdown());
const running = worker.run();
process.stdout.write('ready\n');
await running;
await connection.close();
process.exit(0);
