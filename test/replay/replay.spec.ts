/* Stored workflow histories must replay with the current workflow code: a change that breaks
 * determinism for runs already in flight fails here, before it reaches a worker. Refresh the
 * fixtures deliberately (UPDATE_REPLAY_FIXTURES=1 npm test) only when a change is versioned.
 * The bundle includes the tracing workflow interceptors, as the production bundle does: the histories
 * were recorded without them, so this also proves that adding them keeps in-flight runs replaying. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
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

/** The inputs of every activity a stored history scheduled (not local ones: their inputs are not in history). */
function scheduledInputs(history: any): { type: string; args: unknown[] }[] {
  return history.events
    .map((e: any) => e.activityTaskScheduledEventAttributes)
    .filter(Boolean)
    .map((a: any) => ({
      type: a.activityType.name,
      args: (a.input?.payloads ?? []).map((p: any) => JSON.parse(Buffer.from(p.data ?? '', 'base64').toString('utf8') || 'null')),
    }));
}

// Replay finds changed commands, not changed inputs: an activity scheduled with another run id (a uuid4()
// drawn differently) replays "fine" and then works on a run that does not exist. This replays each history
// with the production interceptors plus a recorder, and compares every scheduled activity's input with the
// history's. It caught the tracing interceptor drawing span ids from the workflow's own random stream.
test('replayed with the tracing interceptors, every activity is scheduled with the input the history recorded', async () => {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../../workflows/dist/index.js'),
    workflowInterceptorModules: [
      require.resolve('../../workflows/dist/tracing-interceptors.js'),
      require.resolve('../support/replay-activity-recorder.js'),
    ],
    logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} },
  });
  let compared = 0;
  for (const file of files) {
    const history = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    const seen: { type: string; args: unknown[] }[] = [];
    const { sinks } = createWorkerTracing({});
    await Worker.runReplayHistory(
      {
        workflowBundle: { code },
        sinks: {
          ...sinks,
          replayRecorder: {
            activity: { fn: (_info: unknown, type: string, args: unknown[]) => void seen.push({ type, args }), callDuringReplay: true },
          },
        },
      },
      history,
      file,
    );
    const expected = scheduledInputs(history);
    expect({ file, inputs: JSON.parse(JSON.stringify(seen)) }).toEqual({ file, inputs: expected });
    compared += expected.length;
  }
  // The histories do schedule activities (shell, HTTP, child inputs), so the comparison is not vacuous.
  expect(compared).toBeGreaterThan(5);
}, 120_000);
