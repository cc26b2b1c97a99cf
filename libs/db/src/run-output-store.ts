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
   * No NOTIFY here: NOTIFY serialises committing transactions behind one lock,
   * and chunks are written by every running attempt several times a second;
   * followers poll for chunks instead, and are notified only of an attempt's
   * start and end ({@link notify}).
   */
  async append(rows: readonly OutputChunkRow[]): Promise<void> {
    if (rows.length === 0) return;
    const values: unknown[] = [];
    const tuples = rows.map((r, i) => {
      values.push(r.runId, r.tenantId, r.shardIndex, r.attempt, r.seq, r.stream, r.text);
      const b = i * 7;
      return `($${b + 1}::uuid, $${b + 2}::uuid, $${b + 3}::int, $${b + 4}::int, $${b + 5}::int, $${b + 6}, $${b + 7})`;
    });
    await this.db.query(
      `INSERT INTO run_output_chunks (run_id, tenant_id, shard_index, attempt, seq, stream, data)
       VALUES ${tuples.join(', ')}
       ON CONFLICT (run_id, shard_index, attempt, seq) DO NOTHING`,
      values,
    );
  }

  /** Wakes followers of a run (an attempt started or ended). */
  async notify(runId: string): Promise<void> {
    await this.db.query(`SELECT pg_notify('${RUN_OUTPUT_CHANNEL}', $1::text)`, [runId]);
  }

  /**
   * Chunks of one attempt after sequence `afterSeq`, in order, up to about
   * `maxBytes` of text (always at least one chunk when there is one), and
   * whether more follow. The byte bound is applied in the query, so a read
   * never carries more than it returns.
   */
  async read(
    ref: { runId: string; shardIndex: number; attempt: number },
    afterSeq: number,
    opts: { maxBytes: number; stream?: OutputStreamName },
  ): Promise<{ chunks: OutputChunk[]; more: boolean }> {
    const rows: { seq: number; stream: OutputStreamName; data: string | null }[] = await this.db.query(
      `SELECT seq, stream, CASE WHEN before < $6 OR n = 1 THEN data END AS data
         FROM (SELECT seq, stream, data, row_number() OVER w AS n,
                      coalesce(sum(octet_length(data)) OVER w - octet_length(data), 0) AS before
                 FROM (SELECT seq, stream, data FROM run_output_chunks
                        WHERE run_id = $1 AND shard_index = $2 AND attempt = $3 AND seq > $4
                          AND ($5::text IS NULL OR stream = $5)
                        ORDER BY seq LIMIT 257) page
               WINDOW w AS (ORDER BY seq)) sized
        ORDER BY seq`,
      [ref.runId, ref.shardIndex, ref.attempt, afterSeq, opts.stream ?? null, opts.maxBytes],
    );
    const chunks: OutputChunk[] = [];
    for (const r of rows) {
      if (r.data === null || chunks.length === 256) break;
      chunks.push({ seq: r.seq, stream: r.stream, text: r.data });
    }
    return { chunks, more: rows.length > chunks.length };
  }
}
