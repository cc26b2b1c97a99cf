/** Deep link to a workflow execution in the Temporal Web UI. */
export function temporalUiUrl(baseUrl: string, namespace: string, workflowId: string, runId?: string | null): string {
  const base = baseUrl.replace(/\/+$/, '');
  const path = `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${path}/${encodeURIComponent(runId)}/history` : path;
}
