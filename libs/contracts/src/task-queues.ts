/**
 * Task-queue names. Workflows and each executor kind get their own queue so
 * shell-capable workers can be deployed apart from HTTP workers and scaled
 * independently. A deployment may prefix all of them (tests use a prefix per
 * test file so parallel suites never steal each other's tasks).
 */
export interface TaskQueues {
  workflows: string;
  shell: string;
  http: string;
}

export const QUEUE_KINDS = ['workflows', 'shell', 'http'] as const;
export type QueueKind = (typeof QUEUE_KINDS)[number];

export function taskQueues(prefix = 'task-scheduler'): TaskQueues {
  return {
    workflows: `${prefix}.workflows`,
    shell: `${prefix}.shell`,
    http: `${prefix}.http`,
  };
}
