/* Tenant concurrency slots (docs/execution.md, "Per-tenant slots"): shared by the worker's recorder and the
 * API's run reconciler, which both end runs. */
import type { Sql } from './alert-rules';

/** SQL: the free concurrency slots of tenant row `t` (a slot is held while a run is admitted and not final). */
export const FREE_SLOTS = `(t.max_concurrent_runs - (SELECT count(*) FROM runs a
                      WHERE a.tenant_id = t.id AND a.admitted_at IS NOT NULL AND a.status IN ('queued', 'running'))::int)`;
/** Waiting runs woken per finished run at most; the rest are found by their own periodic re-check. */
const MAX_WAKE = 20;

/**
 * The workflows to signal `runSlotFreed` once run `runId` has ended (its end committed with the caller's
 * transaction): the tenant's runs that were refused a slot and still wait, by priority and then queue time, as
 * many as there are free slots now. Takes the tenant's admission lock until the caller's commit, so it must run
 * inside the caller's transaction. Used by the recorder and by the API's run reconciler.
 */
export async function runsToWake(q: Sql, runId: string): Promise<string[]> {
  // The admission lock (RunRecorder.acquireSlot), held to the caller's commit: a run refused before it is
  // seen refused here; one asking after it sees this run's slot free. Either way none waits for its re-check.
  await q.query(`SELECT pg_advisory_xact_lock(hashtextextended(tenant_id::text, 7)) FROM runs WHERE id = $1`, [runId]);
  const waiting: { workflow_id: string }[] = await q.query(
    `WITH me AS (SELECT tenant_id FROM runs WHERE id = $1),
          free AS (SELECT ${FREE_SLOTS} AS n FROM tenants t JOIN me ON t.id = me.tenant_id)
     SELECT w.workflow_id FROM runs w JOIN me ON w.tenant_id = me.tenant_id
      WHERE w.admitted_at IS NULL AND w.slot_refused_at IS NOT NULL AND w.status = 'queued' AND w.id <> $1
      ORDER BY w.priority DESC, w.queued_at, w.id
      LIMIT least($2, greatest((SELECT n FROM free), 0))`,
    [runId, MAX_WAKE],
  );
  return waiting.map((w) => w.workflow_id);
}
