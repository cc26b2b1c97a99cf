import { Inject, Injectable, Logger } from '@nestjs/common';
import type { OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { AppConfig } from '@task-scheduler/config';
import { FINAL_PIPELINE_RUN_STATUSES, FINAL_RUN_STATUSES } from '@task-scheduler/contracts';
import { DataSource } from 'typeorm';
import type { QueryRunner } from 'typeorm';
import { PeriodicJob } from '../common/periodic-job';
import { APP_CONFIG } from '../infra/tokens';
import { MetricsService } from '../metrics/metrics.service';
import { RetentionArchive, passIdOf } from './retention-archive';

/** Advisory-lock key (session level, held for the pass): one API process deletes at a time. */
const RETENTION_LOCK = 0x72_65_74_6e; // 'retn'
/** Output rows deleted (and archived) per statement, at most: 200 × 64 KiB = 12.5 MiB held at once. */
const OUTPUT_CHUNKS_PER_STATEMENT = 200;
/** The directory of audit events without a tenant (platform actions) in the archive. */
const PLATFORM_DIR = '_platform';

/** Tables retention deletes from: children listed after the parent whose batch deletes them. */
export const RETENTION_TABLES = [
  'runs',
  'run_attempts',
  'run_shards',
  'run_output_chunks',
  'pipeline_runs',
  'pipeline_run_steps',
  'audit_events',
] as const;
export type RetentionTable = (typeof RETENTION_TABLES)[number];

/** Rows are deleted in batches of one of these, each batch one transaction. */
export type RetentionBatchKind = 'runs' | 'pipeline_runs' | 'audit_events';

export interface RetentionScopeReport {
  /** null: audit events without a tenant. */
  tenantId: string | null;
  slug: string;
  retentionDays: number;
  /** Rows finished (runs) or written (audit events) before this were deleted. */
  cutoff: string;
  deleted: Record<RetentionTable, number>;
  /** Transactions committed, per kind of batch. */
  batches: Record<RetentionBatchKind, number>;
  /** Why the scope stopped early (nothing of the failed batch was deleted). */
  error?: string;
}

export interface RetentionReport {
  scopes: RetentionScopeReport[];
  deleted: Record<RetentionTable, number>;
  /** Files written in this pass (RETENTION_ARCHIVE_DIR set). */
  archived: string[];
}

export interface RetentionPassOptions {
  /** Only this tenant (no platform audit events): tests share one database. */
  tenantId?: string;
  /** The pass's clock (default: now). */
  now?: Date;
  /** Rows per batch (default RETENTION_BATCH). */
  batchSize?: number;
}

/** The moment before which rows kept `days` days are old at `now`. */
export function retentionCutoff(now: Date, days: number): Date {
  return new Date(now.getTime() - days * 86_400_000);
}

const zeroTables = (): Record<RetentionTable, number> =>
  Object.fromEntries(RETENTION_TABLES.map((t) => [t, 0])) as Record<RetentionTable, number>;

interface Scope {
  tenantId: string | null;
  slug: string;
  days: number;
}

/**
 * Deletes, per tenant, finished runs (with their attempts, shards and stored output), finished pipeline runs (with
 * their steps) and audit events older than the tenant's retention (`tenants.retention_days`, else RETENTION_DAYS;
 * 0: kept forever), every RETENTION_SECONDS, in batches of RETENTION_BATCH rows, each batch its own short
 * transaction so no lock is held long and the run listings stay fast. With RETENTION_ARCHIVE_DIR set, each batch is
 * appended to gzipped JSON-lines files before its delete commits. Only runs in a final status go, never queued or
 * running ones, however old.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('RetentionService');
  private readonly job = new PeriodicJob('retention', this.logger, () => this.runOnce());

  constructor(
    private readonly db: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  onApplicationBootstrap(): void {
    this.job.start(this.config.RETENTION_SECONDS);
  }

  onApplicationShutdown(): Promise<void> {
    return this.job.stop();
  }

  /** One pass; null when another process holds the lock. */
  async runOnce(opts: RetentionPassOptions = {}): Promise<RetentionReport | null> {
    const now = opts.now ?? new Date();
    const batchSize = opts.batchSize ?? this.config.RETENTION_BATCH;
    const started = Date.now();
    // One connection for the pass: the session lock lives on it, and each batch is a transaction on it.
    const qr = this.db.createQueryRunner();
    await qr.connect();
    try {
      const [{ locked }] = await qr.query(`SELECT pg_try_advisory_lock($1) AS locked`, [RETENTION_LOCK]);
      if (!locked) return null;
      try {
        const archive = this.config.RETENTION_ARCHIVE_DIR ? new RetentionArchive(this.config.RETENTION_ARCHIVE_DIR, passIdOf(now)) : null;
        const report: RetentionReport = { scopes: [], deleted: zeroTables(), archived: [] };
        for (const scope of await this.scopes(qr, opts.tenantId)) {
          const r = await this.purgeScope(qr, scope, retentionCutoff(now, scope.days), batchSize, archive);
          report.scopes.push(r);
          for (const t of RETENTION_TABLES) report.deleted[t] += r.deleted[t];
        }
        for (const t of RETENTION_TABLES) if (report.deleted[t] > 0) this.metrics.retentionDeleted(t, report.deleted[t]);
        report.archived = [...(archive?.files ?? [])].sort();
        const errors = report.scopes.filter((s) => s.error).map((s) => ({ tenantId: s.tenantId, error: s.error }));
        this.logger[errors.length ? 'warn' : 'log'](
          {
            scopes: report.scopes.length,
            deleted: report.deleted,
            archived: report.archived.length,
            errors,
            durationMs: Date.now() - started,
          },
          'retention pass',
        );
        return report;
      } finally {
        await qr.query(`SELECT pg_advisory_unlock($1)`, [RETENTION_LOCK]);
      }
    } finally {
      await qr.release();
    }
  }

  /** Tenants whose rows expire (and, for a whole pass, audit events without a tenant). */
  private async scopes(qr: QueryRunner, tenantId: string | undefined): Promise<Scope[]> {
    const platformDays = this.config.RETENTION_DAYS;
    const rows: { id: string; slug: string; days: number }[] = await qr.query(
      `SELECT id, slug, coalesce(retention_days, $1)::int AS days FROM tenants
        WHERE ($2::uuid IS NULL OR id = $2) ORDER BY created_at, id`,
      [platformDays, tenantId ?? null],
    );
    const scopes: Scope[] = rows.filter((r) => r.days > 0).map((r) => ({ tenantId: r.id, slug: r.slug, days: r.days }));
    if (!tenantId && platformDays > 0) scopes.push({ tenantId: null, slug: PLATFORM_DIR, days: platformDays });
    return scopes;
  }

  private async purgeScope(
    qr: QueryRunner,
    scope: Scope,
    cutoff: Date,
    batchSize: number,
    archive: RetentionArchive | null,
  ): Promise<RetentionScopeReport> {
    const report: RetentionScopeReport = {
      tenantId: scope.tenantId,
      slug: scope.slug,
      retentionDays: scope.days,
      cutoff: cutoff.toISOString(),
      deleted: zeroTables(),
      batches: { runs: 0, pipeline_runs: 0, audit_events: 0 },
    };
    const ctx: BatchContext = { qr, scope, cutoff, batchSize, archive, report };
    try {
      if (scope.tenantId) {
        // Runs before pipeline runs: a pipeline run goes once none of its step runs is left.
        await this.loop(ctx, 'runs', (c, after) => this.runsBatch(c, after));
        await this.loop(ctx, 'pipeline_runs', (c, after) => this.pipelineRunsBatch(c, after));
      }
      await this.loop(ctx, 'audit_events', (c) => this.auditBatch(c));
    } catch (err) {
      report.error = (err as Error).message;
    }
    return report;
  }

  /** Batches until one comes back short; `after` is the keyset cursor past the last row looked at. */
  private async loop(
    ctx: BatchContext,
    kind: RetentionBatchKind,
    batch: (ctx: BatchContext, after: Cursor | null) => Promise<{ selected: number; last: Cursor | null }>,
  ): Promise<void> {
    let after: Cursor | null = null;
    for (;;) {
      await ctx.qr.startTransaction();
      let result: { selected: number; last: Cursor | null };
      try {
        result = await batch(ctx, after);
        await ctx.qr.commitTransaction();
      } catch (err) {
        await ctx.qr.rollbackTransaction();
        throw err;
      }
      if (result.selected === 0) return;
      ctx.report.batches[kind]++;
      if (result.selected < ctx.batchSize) return;
      after = result.last;
    }
  }

  /**
   * Deletes one batch of `rows` and archives what it deleted before the commit. `DELETE … RETURNING` gives
   * exactly the rows gone, as JSON (timestamps to the microsecond), only when they are archived.
   */
  private async deleteAndArchive(ctx: BatchContext, table: RetentionTable, sql: string, params: unknown[]): Promise<number> {
    if (!ctx.archive) {
      // Only the count comes back: a batch's rows are never held in memory when nothing is archived.
      const [{ n }]: { n: number }[] = await ctx.qr.query(`WITH d AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM d`, params);
      ctx.report.deleted[table] += n;
      return n;
    }
    const [rows]: [{ row: unknown }[], number] = await ctx.qr.query(`${sql} RETURNING to_jsonb(t) AS row`, params);
    await ctx.archive.append(
      ctx.scope.slug,
      table,
      rows.map((r) => r.row),
    );
    ctx.report.deleted[table] += rows.length;
    return rows.length;
  }

  /**
   * Runs in a final status, finished (or, never started, created) before the cutoff, oldest first. The keyset walk
   * on `runs_tenant_created_idx` (a run finishes after it is created, so `created_at < cutoff` bounds the scan)
   * steps over the old runs it keeps (queued, running, or finished late) instead of reading them every batch.
   * A step run of a pipeline run still going stays with it. Children go first, then the runs; the rows locked
   * first so no status change can slip in between the select and the delete.
   */
  private async runsBatch(ctx: BatchContext, after: Cursor | null): Promise<{ selected: number; last: Cursor | null }> {
    const picked: { id: string; created_at: string }[] = await ctx.qr.query(
      `SELECT r.id, r.created_at::text AS created_at FROM runs r
        WHERE r.tenant_id = $1 AND r.created_at < $2
          AND ($3::timestamptz IS NULL OR (r.created_at, r.id) > ($3::timestamptz, $4::uuid))
          AND r.status = ANY($5) AND coalesce(r.finished_at, r.created_at) < $2
          AND (r.pipeline_run_id IS NULL OR NOT EXISTS (
                SELECT 1 FROM pipeline_runs p WHERE p.id = r.pipeline_run_id AND p.status <> ALL($6)))
          -- A retry not finished yet still reads the run it retries.
          AND NOT EXISTS (SELECT 1 FROM runs c WHERE c.retry_of_run_id = r.id AND c.status <> ALL($5))
        ORDER BY r.created_at, r.id LIMIT $7
        FOR UPDATE OF r`,
      [
        ctx.scope.tenantId,
        ctx.cutoff,
        after?.at ?? null,
        after?.id ?? null,
        FINAL_RUN_STATUSES,
        FINAL_PIPELINE_RUN_STATUSES,
        ctx.batchSize,
      ],
    );
    if (picked.length === 0) return { selected: 0, last: null };
    const ids = picked.map((r) => r.id);
    // run_output_chunks has no foreign key to its run (docs/operations.md, "Run output"): deleted by run id here,
    // at most OUTPUT_CHUNKS_PER_STATEMENT rows (64 KiB each at most) at a time, so an archived statement's rows
    // stay small in memory however much output the batch's runs stored.
    for (;;) {
      const n = await this.deleteAndArchive(
        ctx,
        'run_output_chunks',
        `DELETE FROM run_output_chunks t WHERE (run_id, shard_index, attempt, seq) IN (
           SELECT run_id, shard_index, attempt, seq FROM run_output_chunks WHERE run_id = ANY($1) LIMIT $2)`,
        [ids, OUTPUT_CHUNKS_PER_STATEMENT],
      );
      if (n < OUTPUT_CHUNKS_PER_STATEMENT) break;
    }
    await this.deleteAndArchive(ctx, 'run_attempts', `DELETE FROM run_attempts t WHERE run_id = ANY($1)`, [ids]);
    await this.deleteAndArchive(ctx, 'run_shards', `DELETE FROM run_shards t WHERE run_id = ANY($1)`, [ids]);
    await this.deleteAndArchive(ctx, 'runs', `DELETE FROM runs t WHERE id = ANY($1)`, [ids]);
    const last = picked[picked.length - 1];
    return { selected: picked.length, last: { at: last.created_at, id: last.id } };
  }

  /** Pipeline runs in a final status, finished before the cutoff, none of whose step runs is left; steps first. */
  private async pipelineRunsBatch(ctx: BatchContext, after: Cursor | null): Promise<{ selected: number; last: Cursor | null }> {
    const picked: { id: string; created_at: string }[] = await ctx.qr.query(
      `SELECT p.id, p.created_at::text AS created_at FROM pipeline_runs p
        WHERE p.tenant_id = $1 AND p.created_at < $2
          AND ($3::timestamptz IS NULL OR (p.created_at, p.id) > ($3::timestamptz, $4::uuid))
          AND p.status = ANY($5) AND coalesce(p.finished_at, p.created_at) < $2
          AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.pipeline_run_id = p.id)
          -- A retry not finished yet reuses the steps of the pipeline run it retries.
          AND NOT EXISTS (SELECT 1 FROM pipeline_runs c WHERE c.retry_of_pipeline_run_id = p.id AND c.status <> ALL($5))
        ORDER BY p.created_at, p.id LIMIT $6
        FOR UPDATE OF p`,
      [ctx.scope.tenantId, ctx.cutoff, after?.at ?? null, after?.id ?? null, FINAL_PIPELINE_RUN_STATUSES, ctx.batchSize],
    );
    if (picked.length === 0) return { selected: 0, last: null };
    const ids = picked.map((r) => r.id);
    await this.deleteAndArchive(ctx, 'pipeline_run_steps', `DELETE FROM pipeline_run_steps t WHERE pipeline_run_id = ANY($1)`, [ids]);
    await this.deleteAndArchive(ctx, 'pipeline_runs', `DELETE FROM pipeline_runs t WHERE id = ANY($1)`, [ids]);
    const last = picked[picked.length - 1];
    return { selected: picked.length, last: { at: last.created_at, id: last.id } };
  }

  /** Audit events written before the cutoff, oldest first, on `audit_events_tenant_created_idx`. */
  private async auditBatch(ctx: BatchContext): Promise<{ selected: number; last: Cursor | null }> {
    const tenant = ctx.scope.tenantId ? `tenant_id = $1` : `tenant_id IS NULL AND $1::uuid IS NULL`;
    const selected = await this.deleteAndArchive(
      ctx,
      'audit_events',
      `DELETE FROM audit_events t WHERE id IN (
         SELECT id FROM audit_events WHERE ${tenant} AND created_at < $2 ORDER BY created_at, id LIMIT $3)`,
      [ctx.scope.tenantId, ctx.cutoff, ctx.batchSize],
    );
    return { selected, last: null };
  }
}

interface Cursor {
  /** `created_at` as PostgreSQL prints it: microseconds kept, unlike a JS Date. */
  at: string;
  id: string;
}

interface BatchContext {
  qr: QueryRunner;
  scope: Scope;
  cutoff: Date;
  batchSize: number;
  archive: RetentionArchive | null;
  report: RetentionScopeReport;
}
