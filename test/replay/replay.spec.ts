/* Stored workflow histories must replay with the current workflow code: a change that breaks
 * determinism for runs already in flight fails here, before it reaches a worker. Refresh the
 * fixtures deliberately (UPDATE_REPLAY_FIXTURES=1 npm test) only when a change is versioned. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';

const dir = join(__dirname, 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

test('there is at least one stored history', () => {
  expect(files.length).toBeGreaterThan(0);
});

test.each(files)('%s replays without nondeterminism', async (file) => {
  const history = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE as string } }, history, file);
});
