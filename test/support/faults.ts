/* Harness for the fault tests (test/faults): a Temporal dev server of the test's own that can be killed and
 * started again on the same database file and port, the invariants every run record of a tenant must hold
 * after a fault, and a bounded wait. */
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { ChildProcess } from 'node:child_process';
import { SEARCH_ATTRIBUTES } from '@task-scheduler/contracts';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { DataSource } from 'typeorm';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const localStack = require('../../scripts/lib/local-stack.cjs');

/**
 * Polls `fn` until it returns a truthy value, and returns that value; fails naming `what` (and the last value)
 * once `timeoutMs` has passed. Errors thrown by `fn` count as "not yet" (a server being restarted refuses
 * connections) and the last one is reported.
 */
export async function waitFor<T>(
  fn: () => Promise<T> | T,
  opts: { timeoutMs: number; what: string; intervalMs?: number },
): Promise<NonNullable<T>> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err instanceof Error ? `${err.name}: ${err.message}` : err;
    }
    if (Date.now() > deadline) throw new Error(`${opts.what}: not reached within ${opts.timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
  }
}

export interface OwnTemporal {
  /** `127.0.0.1:<port>`: the same across restarts, so clients and workers reconnect to it. */
  address: string;
  port: number;
  dbFile: string;
  logFile: string;
  /** Whether the server process is up. */
  running(): boolean;
  /** Starts the server on the same file and port; resolves once its frontend answers. */
  start(): Promise<void>;
  /** Stops the server: SIGKILL (the default: a crash) or SIGTERM (a clean stop, SIGKILL after 10 s). */
  stop(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
}

/**
 * A Temporal dev server of the test's own, persistent in `dbFile` (SQLite) on a fixed port, headless, with the
 * product's search attributes (scripts/lib/local-stack.cjs). Started once here; `stop` and `start` again
 * to simulate a server crash or restart. The caller stops it in `afterAll`.
 */
export async function startOwnTemporal(opts: { dbFile?: string; port?: number; logFile?: string } = {}): Promise<OwnTemporal> {
  const dir = opts.dbFile && opts.logFile ? null : mkdtempSync(join(tmpdir(), 'task-scheduler-fault-temporal-'));
  const dbFile = opts.dbFile ?? join(dir!, 'temporal.db');
  const logFile = opts.logFile ?? join(dir ?? tmpdir(), 'temporal.log');
  const port: number = opts.port ?? (await localStack.freePort());
  const cli: string = localStack.resolveTemporalCli();
  let child: ChildProcess | null = null;
  const alive = () => child !== null && child.exitCode === null && child.signalCode === null;
  const own: OwnTemporal = {
    address: `127.0.0.1:${port}`,
    port,
    dbFile,
    logFile,
    running: alive,
    async start() {
      if (alive()) throw new Error('own Temporal: already running');
      const server = await localStack.startTemporalDevServer({ cli, port, dbFile, logFile });
      child = server.process;
    },
    async stop(signal = 'SIGKILL') {
      if (!child || !alive()) return;
      const c = child;
      if (signal === 'SIGTERM') {
        await localStack.stopChild(c);
        return;
      }
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGKILL');
      await exited;
    },
  };
  await own.start();
  return own;
}

/** The tenant's workflows that Temporal visibility lists (eventually consistent: poll for an expected count). */
export async function listTenantWorkflows(
  client: Client,
  tenantId: string,
): Promise<{ workflowId: string; runId: string; status: string; taskRunId: string | null }[]> {
  const out: { workflowId: string; runId: string; status: string; taskRunId: string | null }[] = [];
  for await (const wf of client.workflow.list({ query: `${SEARCH_ATTRIBUTES.tenantId} = '${tenantId}'` })) {
    const taskRunId = wf.searchAttributes?.[SEARCH_ATTRIBUTES.runId]?.[0];
    out.push({ workflowId: wf.workflowId, runId: wf.runId, status: wf.status.name, taskRunId: typeof taskRunId === 'string' ? taskRunId : null });
  }
  return out;
}

export interface RunInvariantReport {
  /** Runs of the tenant by status. */
  byStatus: Record<string, number>;
  /** Runs `queued` or `running` (their workflows were all found open). */
  unfinished: number;
  /** Slots the product counts as held: admitted runs not final (run-recorder.ts FREE_SLOTS). */
  slotsHeld: number;
  maxConcurrentRuns: number;
}

/**
 * Checks, for one tenant, what must hold after any fault, and throws listing every breach:
 * - no run `queued` or `running` whose workflow is closed or missing (each described in Temporal): such a record
 *   would hold its slot, or show a run as live, forever;
 * - the slots held — the product stores no counter: a slot is a run with `admitted_at` set and a status not final
 *   (activities/src/runs/run-recorder.ts) — equal the admitted unfinished runs whose workflow really is open, and
 *   never exceed the tenant's `max_concurrent_runs`.
 */
export async function assertRunInvariants(db: DataSource, client: Client, opts: { tenantId: string }): Promise<RunInvariantReport> {
  const byStatusRows: { status: string; n: number }[] = await db.query(
    `SELECT status, count(*)::int AS n FROM runs WHERE tenant_id = $1 GROUP BY status ORDER BY status`,
    [opts.tenantId],
  );
  const byStatus = Object.fromEntries(byStatusRows.map((r) => [r.status, r.n]));
  const unfinished: { id: string; status: string; workflow_id: string; admitted: boolean }[] = await db.query(
    `SELECT id, status, workflow_id, admitted_at IS NOT NULL AS admitted FROM runs
      WHERE tenant_id = $1 AND status IN ('queued', 'running') ORDER BY id`,
    [opts.tenantId],
  );
  const breaches: string[] = [];
  let admittedOpen = 0;
  for (let i = 0; i < unfinished.length; i += 20) {
    await Promise.all(
      unfinished.slice(i, i + 20).map(async (run) => {
        let wfStatus: string;
        try {
          wfStatus = (await client.workflow.getHandle(run.workflow_id).describe()).status.name;
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
          wfStatus = 'NOT_FOUND';
        }
        if (wfStatus !== 'RUNNING') breaches.push(`run ${run.id} is ${run.status} but its workflow ${run.workflow_id} is ${wfStatus}`);
        else if (run.admitted) admittedOpen++;
      }),
    );
  }
  const [slots]: { held: number; max: number }[] = await db.query(
    `SELECT (SELECT count(*)::int FROM runs a WHERE a.tenant_id = t.id AND a.admitted_at IS NOT NULL AND a.status IN ('queued', 'running')) AS held,
            t.max_concurrent_runs AS max
       FROM tenants t WHERE t.id = $1`,
    [opts.tenantId],
  );
  if (!slots) throw new Error(`tenant ${opts.tenantId} does not exist`);
  if (slots.held !== admittedOpen) {
    breaches.push(`tenant holds ${slots.held} slots but has ${admittedOpen} admitted runs whose workflow is open`);
  }
  if (slots.held > slots.max) breaches.push(`tenant holds ${slots.held} slots, more than its max_concurrent_runs ${slots.max}`);
  if (breaches.length) throw new Error(`run invariants broken for tenant ${opts.tenantId}:\n  ${breaches.slice(0, 30).join('\n  ')}`);
  return { byStatus, unfinished: unfinished.length, slotsHeld: slots.held, maxConcurrentRuns: slots.max };
}
