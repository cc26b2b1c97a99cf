/* GET /v1/workers over HTTP against the real stack: the in-process workers
 * must show up as pollers of this suite's own task queues. */
import { randomBytes } from 'node:crypto';
import { taskQueues } from '@task-scheduler/contracts';
import { startStack } from '../support/stack';
import type { TestStack } from '../support/stack';

// A unique identity proves the listed pollers are this suite's workers, not another suite's.
const IDENTITY = `workers-e2e-${randomBytes(4).toString('hex')}`;
let stack: TestStack;

beforeAll(async () => {
  stack = await startStack('workers', { env: { WORKER_IDENTITY: IDENTITY } });
});
afterAll(async () => {
  await stack?.stop();
});

type Poller = { identity: string; lastSeenAt: string | null; ratePerSecond: number; pollerType: string };
type Queue = { kind: string; name: string; pollers: Poller[] };

function ours(queue: Queue | undefined, pollerType: string): Poller | undefined {
  return queue?.pollers.find((p) => p.identity === IDENTITY && p.pollerType === pollerType);
}

/** Workers register as pollers with their first long poll, shortly after they start: ask until they are listed. */
async function listUntilPolled(timeoutMs = 20_000): Promise<Queue[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await stack.request('GET', '/v1/workers');
    expect(res.status).toBe(200);
    const queues: Queue[] = res.body.queues;
    const byKind = new Map(queues.map((q) => [q.kind, q]));
    const workflows = byKind.get('workflows');
    if ((ours(workflows, 'workflow') && ours(workflows, 'activity') && ours(byKind.get('shell'), 'activity')) || Date.now() > deadline) {
      return queues;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

test('lists each task queue of the deployment with the workers polling it', async () => {
  const started = Date.now();
  const queues = await listUntilPolled();
  const names = taskQueues(stack.config.TASK_QUEUE_PREFIX);
  expect(queues.map((q) => [q.kind, q.name])).toEqual([
    ['workflows', names.workflows],
    ['shell', names.shell],
    ['http', names.http],
  ]);
  const byKind = new Map(queues.map((q) => [q.kind, q]));

  const seen = [
    ours(byKind.get('workflows'), 'workflow'),
    ours(byKind.get('workflows'), 'activity'),
    ours(byKind.get('shell'), 'activity'),
  ];
  for (const poller of seen) {
    expect(poller).toBeDefined();
    const lastSeen = Date.parse(poller?.lastSeenAt as string);
    expect(Number.isNaN(lastSeen)).toBe(false);
    // Within the last few minutes, allowing for clock skew between the test and the dev server.
    expect(lastSeen).toBeGreaterThan(started - 5 * 60_000);
    expect(lastSeen).toBeLessThan(Date.now() + 60_000);
    expect(typeof poller?.ratePerSecond).toBe('number');
  }
  // The shell queue has no workflow-task pollers to report.
  expect(byKind.get('shell')?.pollers.every((p) => p.pollerType === 'activity')).toBe(true);
});

test('an unauthenticated request gets 401', async () => {
  const res = await stack.request('GET', '/v1/workers', { apiKey: null });
  expect(res.status).toBe(401);
  expect(res.body.error.code).toBe('UNAUTHENTICATED');
});
