import { outcomeOfClosedWorkflow } from '../../apps/api/src/runs/run-reconciler';

describe('the outcome a closed workflow gives its unfinished run', () => {
  test.each([
    ['TERMINATED', null, 'by hand', { status: 'cancelled', error: 'its workflow was terminated from outside: by hand' }],
    ['TERMINATED', null, null, { status: 'cancelled', error: 'its workflow was terminated from outside' }],
    ['CANCELLED', null, null, { status: 'cancelled', error: 'its workflow was cancelled before it recorded the run' }],
    ['TIMED_OUT', null, null, { status: 'timed_out', error: expect.stringMatching(/timed out/) }],
    ['FAILED', null, null, { status: 'failed', error: 'its workflow ended failed before it recorded the run' }],
    [null, null, null, { status: 'failed', error: expect.stringMatching(/no longer exists/) }],
  ] as const)('%s → %j', (workflowStatus, result, reason, expected) => {
    expect(outcomeOfClosedWorkflow(workflowStatus, result, reason)).toEqual(expected);
  });

  test('completed: the status the workflow returned, else failed', () => {
    const base = { runId: 'r', attempts: 1, exitCode: 0 };
    expect(outcomeOfClosedWorkflow('COMPLETED', { ...base, status: 'succeeded', error: null }, null)).toEqual({
      status: 'succeeded',
      error: '',
    });
    expect(outcomeOfClosedWorkflow('COMPLETED', { ...base, status: 'failed', error: 'exit 3' }, null)).toEqual({
      status: 'failed',
      error: 'exit 3',
    });
    expect(outcomeOfClosedWorkflow('COMPLETED', { ...base, status: 'duplicate', error: null }, null).status).toBe('failed');
  });
});
