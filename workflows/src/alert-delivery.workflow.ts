import { proxyActivities } from '@temporalio/workflow';
import type { HttpActivities } from '@task-scheduler/activities';
import type { AlertDelivery } from '@task-scheduler/contracts';

/**
 * Calls an alert webhook, retried by Temporal with backoff for about an hour
 * (a receiver's outage should not lose the alert, nor delay the run's end:
 * the run starts this as an abandoned child and finishes).
 */
export async function alertDeliveryWorkflow(delivery: AlertDelivery, httpTaskQueue: string): Promise<void> {
  const { deliverAlert } = proxyActivities<HttpActivities>({
    taskQueue: httpTaskQueue,
    startToCloseTimeout: '30s',
    retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '10m', maximumAttempts: 12 },
  });
  await deliverAlert(delivery);
}
