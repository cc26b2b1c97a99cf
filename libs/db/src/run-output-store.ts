import type { DataSource } from 'typeorm';

export type OutputStreamName = 'stdout' | 'stderr';

/** One stored piece of an attempt's output, in print order (`seq` counts from 1 per attempt, across both streams). */
export interface OutputChunk {
  seq: number;
  stream: OutputStreamName;
  text: string;
}

export interface OutputChunkRow extends OutputChunk {
  runId: string;
  tenantId: string;
  shardIndex: number;
  attempt: number;
}

/** Per stream: bytes the task printed, bytes kept in the store, and whether the store's cap cut it. */
export interface StoredStreamSummary {
  bytes: number;
  storedBytes: number;
  truncated: boolean;
}

/** What `run_attempts.output_store` holds once an attempt has ended. */
export interface OutputStoreSummary {
  stdout: StoredStreamSummary;
  stderr: StoredStreamSummary;
}

/** Channel the API listens on; the payload is the run id whose output (or attempt) changed. */
export const RUN_OUTPUT_CHANNEL = 'run_output';

/**
 * The run output store (table `run_output_chunks`): workers append chunks while
 * an attempt runs, the API reads them by attempt and sequence. Every append
 * also notifies RUN_OUTPUT_CHANNEL in the same statement, so followers on any
 * API process wake without polling; they poll as well, so a lost notification
 * (a LISTEN connection that dropped) costs latency, never lines.
 */
export class RunOutputStore {
  constructor(private readonly db: DataSource) {}

  /**
   * Appends chunks of one attempt. A chunk already stored (the same sequence,
   * after a write whose answer was lost) is kept as it was: retries converge.
   */
  async append(rows: readonly OutputChunkRow[]): Promise<void> {
    if (rows.length === 0) return;
    const values: unknown[] = [];
    const tuples = rows.map((r, i) => {
      values.push(r.runId, r.tenantId, r.shardIndex, r.attempt, r.seq, r.stream, r.text);
      const b = i * 7;
      return `($${b + 1}::uuid, $${b + 2}::uuid, $${b + 3}::int, $${b + 4}::int, $${b + 5}::int, $${b + 6}, $${b + 7})`;
    });
    const runIds = [...new Set(rows.map((r) => r.runId))];
    values.push(runIds);
    // A data-modifying CTE runs to completion whatever the outer query reads, and NOTIFY is delivered at commit.
    await this.db.query(
      `WITH ins AS (
         INSERT INTO run_output_chunks (run_id, tenant_id, shard_index, attempt, seq, stream, data)
         VALUES ${tuples.join(', ')}
         ON CONFLICT (run_id, shard_index, attempt, seq) DO NOTHING
         RETURNING 1)
       SELECT pg_notify('${RUN_OUTPUT_CHANNEL}', r::text) FROM unnest($${values.length}::uuid[]) r, (SELECT count(*) FROM ins) c`,
      values,
    );
  }

  /** Wakes followers of a run (an attempt started or ended). */
  async notify(runId: string): Promise<void> {
    await this.db.query(`SELECT pg_notify('${RUN_OUTPUT_CHANNEL}', $1::text)`, [runId]);
  }

  /**
   * Chunks of one attempt after sequence `afterSeq`, in order, up to about
   * `maxBytes` of text (always at least one chunk when there is one).
   */
  async read(
    ref: { runId: string; shardIndex: number; attempt: number },
    afterSeq: number,
    opts: { maxBytes: number; stream?: OutputStreamName },
  ): Promise<OutputChunk[]> {
    // Chunks are at most a flush's worth (bounded by the writer); 256 rows of them is one bounded read.
    const rows: { seq: number; stream: OutputStreamName; data: string }[] = await this.db.query(
      `SELECT seq, stream, data FROM run_output_chunks
        WHERE run_id = $1 AND shard_index = $2 AND attempt = $3 AND seq > $4 AND ($5::text IS NULL OR stream = $5)
        ORDER BY seq LIMIT 256`,
      [ref.runId, ref.shardIndex, ref.attempt, afterSeq, opts.stream ?? null],
    );
    const out: OutputChunk[] = [];
    let bytes = 0;
    for (const r of rows) {
      const n = Buffer.byteLength(r.data, 'utf8');
      if (out.length > 0 && bytes + n > opts.maxBytes) break;
      out.push({ seq: r.seq, stream: r.stream, text: r.data });
      bytes += n;
    }
    return out;
  }
}
