/* Tenant concurrency slots (docs/execution.md, "Per-tenant slots"): shared by the worker's recorder and the
 * API's run reconciler, which both end runs. */
import type { Sql } from './alert-rules';

/** SQL: the free concurrency slots of tenant row `t` (a slot is held while a run is admitted and not final). */
export const FREE_SLOTS = `(t.max_concurrent_runs - (SELECT count(*) FROM runs a
                      WHERE a.tenant_id = t.id AND a.admitted_at IS NOT NULL AND a.status IN ('queued', 'running'))::int)`;
/** Waiting runs woken per finished run at most; the rest are found by their own periodic re-check. */
const MAX_WAKE = 20;

/**
 * The query of the runs to wake ($1 the tenant, $2 the most to wake): its runs that were refused a slot and still
 * wait, by priority and then queue time, as many as it has free slots. Read through runs_tenant_refused_idx.
 */
export const WAKE_SQL = `SELECT w.workflow_id FROM runs w
    WHERE w.tenant_id = $1 AND w.admitted_at IS NULL AND w.slot_refused_at IS NOT NULL AND w.status = 'queued'
    ORDER BY w.priority DESC, w.queued_at, w.id
    LIMIT least($2, greatest((SELECT ${FREE_SLOTS} FROM tenants t WHERE t.id = $1), 0))`;

/**
 * SQL: takes the admission lock of the tenant whose id is `tenantId` (an SQL expression) until the transaction
 * ends. It serialises taking a slot (RunRecorder.acquireSlot) against waking waiting runs. The one place the
 * lock's key is written, hashed from the uuid's canonical text, so every caller locks the same key.
 */
const admissionLock = (tenantId: string): string => `pg_advisory_xact_lock(hashtextextended((${tenantId})::uuid::text, 7))`;

/** Takes tenant `tenantId`'s admission lock until the caller's commit (see admissionLock). */
export async function lockTenantAdmission(q: Sql, tenantId: string): Promise<void> {
  await q.query(`SELECT ${admissionLock('$1')}`, [tenantId]);
}

/**
 * The workflows to signal `runSlotFreed` once run `runId` has ended (its end committed with the caller's
 * transaction): the tenant's runs that were refused a slot and still wait (WAKE_SQL). Takes the tenant's
 * admission lock until the caller's commit, so it must run inside the caller's transaction. Used by the recorder,
 * the API's run reconciler and the API's cancel of a run whose workflow is gone.
 */
export async function runsToWake(q: Sql, runId: string): Promise<string[]> {
  // The admission lock, held to the caller's commit: a run refused before it is seen refused here; one asking
  // after it sees this run's slot free. Either way none waits for its re-check.
  const rows: { tenant_id: string }[] = await q.query(`SELECT tenant_id, ${admissionLock('tenant_id')} FROM runs WHERE id = $1`, [runId]);
  return rows.length ? wake(q, rows[0].tenant_id) : [];
}

/**
 * The workflows to signal `runSlotFreed` once tenant `tenantId` has more slots (a raised `maxConcurrentRuns`,
 * committed with the caller's transaction). Inside the caller's transaction, like runsToWake.
 */
export async function tenantRunsToWake(q: Sql, tenantId: string): Promise<string[]> {
  await lockTenantAdmission(q, tenantId);
  return wake(q, tenantId);
}

async function wake(q: Sql, tenantId: string): Promise<string[]> {
  const waiting: { workflow_id: string }[] = await q.query(WAKE_SQL, [tenantId, MAX_WAKE]);
  return waiting.map((w) => w.workflow_id);
}
