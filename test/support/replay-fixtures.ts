/* Histories produced by e2e tests replay with the current workflow code; with UPDATE_REPLAY_FIXTURES=1
 * they are also stored under test/replay/histories, which future workflow code must keep replaying. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';

export async function checkReplayAndRecord(temporalAddress: string, workflowId: string, fixture: string): Promise<void> {
  const connection = await Connection.connect({ address: temporalAddress });
  try {
    const history = await new Client({ connection }).workflow.getHandle(workflowId).fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: { codePath: process.env.TEST_WORKFLOW_BUNDLE as string } }, history, workflowId);
    if (process.env.UPDATE_REPLAY_FIXTURES) writeFileSync(join(__dirname, '../replay/histories', fixture), historyToJSON(history));
  } finally {
    await connection.close();
  }
}
