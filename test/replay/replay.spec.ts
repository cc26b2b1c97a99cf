/* Stored workflow histories must replay with the current workflow code: a change that breaks
 * determinism for runs already in flight fails here, before it reaches a worker. Refresh the
 * fixtures deliberately (UPDATE_REPLAY_FIXTURES=1 npm test) only when a change is versioned.
 * The bundle includes the tracing workflow interceptors, as the production bundle does: the histories
 * were recorded without them, so this also proves that adding them keeps in-flight runs replaying. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { createWorkerTracing } from '../../apps/worker/src/tracing';

const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
const bundlePath = process.env.TEST_WORKFLOW_BUNDLE as string;

test('there is at least one stored history', () => {
  expect(files.length).toBeGreaterThan(0);
});

test('the bundle replayed has the tracing workflow interceptors', () => {
  const code = readFileSync(bundlePath, 'utf8');
  expect(code).toContain('OpenTelemetryInboundInterceptor');
  expect(code).toContain('tracing-interceptors');
});

test.each(files)('%s replays without nondeterminism', async (file) => {
  const history = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  // The sinks every worker registers (tracing off here): the interceptors call `exporter` with their spans.
  const { sinks } = createWorkerTracing({});
  await Worker.runReplayHistory({ workflowBundle: { codePath: bundlePath }, sinks }, history, file);
});
